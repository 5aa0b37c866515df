/**
 * RTP fixed header (RFC 3550 §5.1) encode/decode.
 *
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |V=2|P|X|  CC   |M|     PT      |       sequence number         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                           timestamp                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           synchronization source (SSRC) identifier            |
 * +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
 * |            contributing source (CSRC) identifiers             |
 * |                             ....                              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Decoding never throws: anything that is not a well-formed RTP packet yields null, because
 * the RTP port is reachable by anyone on the network.
 */

export const RTP_VERSION = 2;
/** Size of the fixed header without CSRC list or extension (RFC 3550 §5.1). */
export const RTP_FIXED_HEADER_SIZE = 12;

export interface RtpHeader {
  /** P bit: the payload is followed by padding (RFC 3550 §5.1). */
  padding: boolean;
  /** X bit: a header extension follows the CSRC list (RFC 3550 §5.3.1). */
  extension: boolean;
  /** M bit: for audio, the first packet of a talkspurt (RFC 3551 §4.1). */
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcs: readonly number[];
}

export interface RtpPacket extends RtpHeader {
  /** A view into the datagram (no copy): header, CSRCs, extension and padding stripped. */
  payload: Buffer;
}

/**
 * Parses one RTP datagram. Returns null for anything malformed (RFC 3550 §A.1 lists the
 * validity checks a receiver applies): shorter than the fixed header, version not 2, CSRC list
 * or extension running past the end, or a padding count of 0 or longer than what follows
 * the header.
 */
export function decodeRtpPacket(datagram: Buffer): RtpPacket | null {
  const length = datagram.length;
  if (length < RTP_FIXED_HEADER_SIZE) return null;

  const b0 = datagram[0]!;
  const b1 = datagram[1]!;
  if (b0 >> 6 !== RTP_VERSION) return null;
  const padding = (b0 & 0x20) !== 0;
  const extension = (b0 & 0x10) !== 0;
  const csrcCount = b0 & 0x0f;

  let offset = RTP_FIXED_HEADER_SIZE + csrcCount * 4;
  if (offset > length) return null;
  const csrcs: number[] = [];
  for (let i = 0; i < csrcCount; i++) csrcs.push(datagram.readUInt32BE(RTP_FIXED_HEADER_SIZE + i * 4));

  if (extension) {
    // RFC 3550 §5.3.1: 16-bit profile-defined field, 16-bit length in 32-bit words
    // (not counting the 4-byte extension header itself). Skipped, never interpreted.
    if (offset + 4 > length) return null;
    const words = datagram.readUInt16BE(offset + 2);
    offset += 4 + words * 4;
    if (offset > length) return null;
  }

  let end = length;
  if (padding) {
    // RFC 3550 §5.1: "The last octet of the padding contains a count of how many padding
    // octets should be ignored, including itself" — so 0 is bogus, and it cannot reach
    // into the header.
    const count = datagram[length - 1]!;
    if (count === 0 || count > length - offset) return null;
    end = length - count;
  }

  return {
    padding,
    extension,
    marker: (b1 & 0x80) !== 0,
    payloadType: b1 & 0x7f,
    sequenceNumber: datagram.readUInt16BE(2),
    timestamp: datagram.readUInt32BE(4),
    ssrc: datagram.readUInt32BE(8),
    csrcs,
    payload: datagram.subarray(offset, end),
  };
}

export interface RtpHeaderFields {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
}

/**
 * Writes a 12-byte fixed header (V=2, no padding, no extension, no CSRCs) into `target` at
 * `offset`. Used by the send path on a pre-allocated buffer, so it allocates nothing.
 * Values are reduced to their field widths (seq mod 2^16, timestamp/SSRC mod 2^32).
 */
export function writeRtpHeader(target: Buffer, fields: RtpHeaderFields, offset = 0): number {
  target[offset] = RTP_VERSION << 6;
  target[offset + 1] = (fields.marker ? 0x80 : 0) | (fields.payloadType & 0x7f);
  target.writeUInt16BE(fields.sequenceNumber & 0xffff, offset + 2);
  target.writeUInt32BE(fields.timestamp >>> 0, offset + 4);
  target.writeUInt32BE(fields.ssrc >>> 0, offset + 8);
  return offset + RTP_FIXED_HEADER_SIZE;
}

/** Builds a complete packet in a new Buffer: for tests and non-hot paths. */
export function encodeRtpPacket(fields: RtpHeaderFields, payload: Uint8Array): Buffer {
  const packet = Buffer.allocUnsafe(RTP_FIXED_HEADER_SIZE + payload.length);
  writeRtpHeader(packet, fields, 0);
  packet.set(payload, RTP_FIXED_HEADER_SIZE);
  return packet;
}
