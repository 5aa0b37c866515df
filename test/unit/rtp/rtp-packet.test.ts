import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeRtpPacket, encodeRtpPacket, writeRtpHeader } from '../../../src/telephony/embedded/rtp/index.js';

const fields = { marker: true, payloadType: 101, sequenceNumber: 0xfffe, timestamp: 0xfffffff0, ssrc: 0x0e05384e };

describe('RTP fixed header (RFC 3550 §5.1)', () => {
  it('round-trips header fields and payload', () => {
    const packet = encodeRtpPacket(fields, Buffer.from([1, 2, 3, 4]));
    expect(packet.length).toBe(16);
    expect(packet[0]).toBe(0x80);
    expect(packet[1]).toBe(0x80 | 101);
    const decoded = decodeRtpPacket(packet);
    expect(decoded).not.toBeNull();
    expect(decoded).toMatchObject({ ...fields, padding: false, extension: false, csrcs: [] });
    expect([...decoded!.payload]).toEqual([1, 2, 3, 4]);
  });

  it('payload is a view into the datagram, not a copy', () => {
    const packet = encodeRtpPacket(fields, Buffer.from([9, 9]));
    const decoded = decodeRtpPacket(packet)!;
    packet[12] = 7;
    expect(decoded.payload[0]).toBe(7);
  });

  it('reduces values to field widths when writing', () => {
    const buffer = Buffer.alloc(12);
    writeRtpHeader(buffer, { marker: false, payloadType: 0x80 | 8, sequenceNumber: 0x1_0001, timestamp: 2 ** 32 + 5, ssrc: -1 });
    const decoded = decodeRtpPacket(buffer)!;
    expect(decoded).toMatchObject({ marker: false, payloadType: 8, sequenceNumber: 1, timestamp: 5, ssrc: 0xffffffff });
    expect(decoded.payload.length).toBe(0);
  });

  it('decodes a real packet from the sipp RFC 2833 pcap', () => {
    // Frame 1 of /usr/share/sip-tester/dtmf_2833_1.pcap (UDP payload).
    const datagram = Buffer.from('80e51f30000033e00e05384e010a0000', 'hex');
    expect(decodeRtpPacket(datagram)).toMatchObject({ marker: true, payloadType: 101, sequenceNumber: 7984, timestamp: 13280, ssrc: 0x0e05384e });
  });

  it('skips the CSRC list', () => {
    const packet = Buffer.concat([Buffer.from('82000001000000020000000300000011', 'hex'), Buffer.from('00000022', 'hex'), Buffer.from([0xaa, 0xbb])]);
    const decoded = decodeRtpPacket(packet)!;
    expect(decoded.csrcs).toEqual([0x11, 0x22]);
    expect([...decoded.payload]).toEqual([0xaa, 0xbb]);
  });

  it('skips a header extension (RFC 3550 §5.3.1) after the CSRCs', () => {
    const header = Buffer.from('91000001000000020000000300000011', 'hex'); // X=1, CC=1
    const extension = Buffer.from('bede0002' + '01020304' + '05060708', 'hex'); // 2 words
    const decoded = decodeRtpPacket(Buffer.concat([header, extension, Buffer.from([0xcc])]))!;
    expect(decoded.extension).toBe(true);
    expect([...decoded.payload]).toEqual([0xcc]);
  });

  it('strips padding; the count includes itself', () => {
    const packet = Buffer.concat([Buffer.from('a00000010000000200000003', 'hex'), Buffer.from([0x11, 0x22, 0, 0, 3])]);
    const decoded = decodeRtpPacket(packet)!;
    expect(decoded.padding).toBe(true);
    expect([...decoded.payload]).toEqual([0x11, 0x22]);
  });

  it.each([
    ['empty', ''],
    ['shorter than 12 bytes', '8000000100000002000000'],
    ['version 0', '00000001000000020000000300'],
    ['version 1', '40000001000000020000000300'],
    ['version 3', 'c0000001000000020000000300'],
    ['CSRC count past the end', '83000001000000020000000300000011'],
    ['extension header past the end', '900000010000000200000003bede'],
    ['extension length past the end', '900000010000000200000003bede000101'],
    ['padding count 0', 'a000000100000002000000031100'],
    ['padding count longer than the packet body', 'a00000010000000200000003110005'],
  ])('rejects %s', (_name, hex) => {
    expect(decodeRtpPacket(Buffer.from(hex, 'hex'))).toBeNull();
  });

  it('accepts padding that consumes the whole body', () => {
    const decoded = decodeRtpPacket(Buffer.from('a000000100000002000000030002', 'hex'));
    expect(decoded?.payload.length).toBe(0);
  });

  it('never throws on arbitrary bytes, and anything it accepts is consistent', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const datagram = Buffer.from(bytes);
        const decoded = decodeRtpPacket(datagram);
        if (decoded !== null) {
          expect(datagram[0]! >> 6).toBe(2);
          expect(decoded.payload.byteOffset - datagram.byteOffset).toBeGreaterThanOrEqual(12);
          expect(decoded.payload.byteOffset - datagram.byteOffset + decoded.payload.length).toBeLessThanOrEqual(datagram.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
