/**
 * The test UA against a scripted fake UAS built from plain dgram sockets, so the e2e tests can
 * trust what the UA sends and records.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeRtpPacket, decodeTelephoneEventPayload, encodeG711, encodeRtpPacket,
} from '../../../src/telephony/embedded/rtp/index.js';
import {
  TestUa, TestUaCallRejectedError, frameEnergy, headerValue, headerValues, ipv4HostPortOf,
  parseSdpAudio, parseSipMessage, tagOf, uriOf, type TestSipMessage,
} from '../../support/test-ua.js';

interface Datagram {
  data: Buffer;
  rinfo: RemoteInfo;
}

/** A UDP socket with an awaitable queue of what arrives. */
class Endpoint {
  private readonly queue: Datagram[] = [];
  private readonly waiters: Array<(d: Datagram) => void> = [];
  readonly all: Datagram[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('message', (data, rinfo) => {
      const d = { data, rinfo };
      this.all.push(d);
      const waiter = this.waiters.shift();
      if (waiter) waiter(d);
      else this.queue.push(d);
    });
  }

  static async open(): Promise<Endpoint> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new Endpoint(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  next(timeoutMs = 3000): Promise<Datagram> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        reject(new Error('nothing arrived'));
      }, timeoutMs);
      const waiter = (d: Datagram): void => {
        clearTimeout(timer);
        resolve(d);
      };
      this.waiters.push(waiter);
    });
  }

  async nextSip(timeoutMs = 3000): Promise<{ message: TestSipMessage; rinfo: RemoteInfo; text: string }> {
    const d = await this.next(timeoutMs);
    const text = d.data.toString('utf8');
    const message = parseSipMessage(text);
    if (message === null) throw new Error(`not SIP: ${text}`);
    return { message, rinfo: d.rinfo, text };
  }

  send(text: string | Buffer, to: { address: string; port: number }): void {
    this.socket.send(text, to.port, to.address);
  }

  close(): void {
    this.socket.close();
  }
}

const CRLF = '\r\n';

function response(request: TestSipMessage, status: string, extra: string[] = [], body = ''): string {
  return [
    `SIP/2.0 ${status}`,
    ...headerValues(request, 'via').map((v) => `Via: ${v}`),
    `From: ${headerValue(request, 'from')}`,
    `To: ${headerValue(request, 'to')}${status.startsWith('100') ? '' : ';tag=uas-tag-1'}`,
    `Call-ID: ${headerValue(request, 'call-id')}`,
    `CSeq: ${headerValue(request, 'cseq')}`,
    ...extra,
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join(CRLF);
}

function answerSdp(rtpPort: number, formats = '0 101'): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${rtpPort} RTP/AVP ${formats}`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16', ''].join(CRLF);
}

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

async function fakeUas(): Promise<{ sip: Endpoint; rtp: Endpoint }> {
  const sip = await Endpoint.open();
  const rtp = await Endpoint.open();
  open.push(sip, rtp);
  return { sip, rtp };
}

function track(ua: TestUa): TestUa {
  open.push(ua);
  return ua;
}

/** Answers the UA's INVITE (after letting the first copy go unanswered) and returns the pieces. */
async function establish(codec: 'PCMU' | 'PCMA' = 'PCMU') {
  const { sip, rtp } = await fakeUas();
  const calling = TestUa.call({
    target: { address: '127.0.0.1', port: sip.port },
    requestUri: 'sip:*97@demo.local',
    from: 'sip:201@demo.local',
    codec,
  });
  const first = await sip.nextSip();
  // Not answered: the UA must retransmit the same INVITE (RFC 3261 §17.1.1.2 Timer A).
  const second = await sip.nextSip();
  expect(second.text).toBe(first.text);
  const invite = first.message;
  sip.send(response(invite, '100 Trying'), first.rinfo);
  sip.send(response(invite, '180 Ringing', [`Contact: <sip:uas@127.0.0.1:${sip.port}>`]), first.rinfo);
  const ok = response(invite, '200 OK',
    [`Contact: <sip:uas@127.0.0.1:${sip.port};transport=udp>`, 'Content-Type: application/sdp'], answerSdp(rtp.port));
  sip.send(ok, first.rinfo);
  const ua = track(await calling);
  const ack = await sip.nextSip();
  return { sip, rtp, ua, invite, inviteRinfo: first.rinfo, ok, ack: ack.message };
}

describe('SIP helpers', () => {
  it('parses requests with compact headers, folding and Content-Length', () => {
    const text = ['BYE sip:201@127.0.0.1:5999 SIP/2.0', 'v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc',
      'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdef, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKghi',
      'f: <sip:*97@demo.local>;tag=s1', 't: "Alice, A." <sip:201@demo.local;tag=uri>;tag=c1',
      'i: abc@host', 'CSeq: 7', ' BYE', 'l: 4', '', 'bodyEXTRA'].join(CRLF);
    const m = parseSipMessage(text)!;
    expect(m.method).toBe('BYE');
    expect(m.requestUri).toBe('sip:201@127.0.0.1:5999');
    expect(headerValue(m, 'call-id')).toBe('abc@host');
    expect(headerValue(m, 'CSeq')).toBe('7 BYE');
    expect(headerValues(m, 'via')).toHaveLength(3);
    expect(tagOf(headerValue(m, 'to')!)).toBe('c1');
    expect(tagOf(headerValue(m, 'from')!)).toBe('s1');
    expect(m.body).toBe('body');
  });

  it('parses responses, URIs and SDP answers', () => {
    const m = parseSipMessage(`SIP/2.0 486 Busy Here${CRLF}Content-Length: 0${CRLF}${CRLF}`)!;
    expect([m.status, m.reason, m.method]).toEqual([486, 'Busy Here', null]);
    expect(parseSipMessage('garbage')).toBeNull();
    expect(uriOf('"x" <sip:a@1.2.3.4:5070;transport=udp>;expires=3')).toBe('sip:a@1.2.3.4:5070;transport=udp');
    expect(uriOf('sip:a@b;tag=1')).toBe('sip:a@b');
    expect(ipv4HostPortOf('sip:a@1.2.3.4:5070;transport=udp')).toEqual({ address: '1.2.3.4', port: 5070 });
    expect(ipv4HostPortOf('sip:1.2.3.4')).toEqual({ address: '1.2.3.4', port: 5060 });
    expect(ipv4HostPortOf('sip:a@example.com')).toBeNull();
    const sdp = parseSdpAudio(answerSdp(40000, '8 101').replace('c=IN IP4 127.0.0.1\r\n', 'c=IN IP4 10.0.0.9\r\n'));
    expect(sdp).toMatchObject({ address: '10.0.0.9', port: 40000, payloadTypes: [8, 101] });
    expect(sdp?.rtpmap.get(101)).toBe('TELEPHONE-EVENT');
    expect(parseSdpAudio('v=0\r\nm=video 1 RTP/AVP 96\r\n')).toBeNull();
  });

  it('frameEnergy gives one RMS per full 20 ms frame', () => {
    const pcm = new Int16Array(160 * 2 + 50);
    for (let i = 160; i < 320; i++) pcm[i] = i % 2 === 0 ? 1000 : -1000;
    expect(frameEnergy(pcm)).toEqual([0, 1000]);
  });
});

describe('TestUa against a fake UAS', () => {
  it('sends an INVITE with a G.711 + telephone-event offer and ACKs the 200 to its Contact', async () => {
    const { invite, ack, ua, sip, rtp } = await establish();
    expect(invite.requestUri).toBe('sip:*97@demo.local');
    expect(headerValue(invite, 'from')).toMatch(/^<sip:201@demo\.local>;tag=\S+$/);
    expect(headerValue(invite, 'cseq')).toBe('1 INVITE');
    expect(headerValue(invite, 'via')).toMatch(/^SIP\/2\.0\/UDP 127\.0\.0\.1:\d+;branch=z9hG4bK\w+;rport$/);
    const offer = parseSdpAudio(invite.body)!;
    expect(offer.payloadTypes).toEqual([0, 101]);
    expect(offer.port % 2).toBe(0);
    expect(offer.port).toBe(ua.localRtpPort);

    expect(ack.method).toBe('ACK');
    expect(ack.requestUri).toBe(`sip:uas@127.0.0.1:${sip.port};transport=udp`);
    expect(tagOf(headerValue(ack, 'to')!)).toBe('uas-tag-1');
    expect(headerValue(ack, 'cseq')).toBe('1 ACK');
    expect(headerValue(ack, 'call-id')).toBe(ua.callId);
    expect(headerValue(ack, 'via')).not.toBe(headerValue(invite, 'via')); // new branch (§13.2.2.4)
    expect(ua.remoteRtp).toEqual({ address: '127.0.0.1', port: rtp.port });
    expect(ua.answeredTelephoneEventPayloadType).toBe(101);
    expect(ua.answeredAtMs).toBeGreaterThan(0);
  });

  it('ACKs a retransmitted 200 again and ignores stray messages', async () => {
    const { sip, ok, inviteRinfo, ack } = await establish();
    sip.send('\r\n\r\n', inviteRinfo);
    sip.send('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKnope\r\nCSeq: 9 OPTIONS\r\n\r\n', inviteRinfo);
    sip.send(ok, inviteRinfo);
    const again = await sip.nextSip();
    expect(again.message.method).toBe('ACK');
    expect(headerValue(again.message, 'via')).toBe(headerValue(ack, 'via'));
  });

  it('records received RTP and decodes the audio', async () => {
    const { rtp, ua } = await establish();
    const pcm = new Int16Array(320);
    for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000));
    const g711 = encodeG711('PCMU', pcm);
    const to = { address: '127.0.0.1', port: ua.localRtpPort };
    rtp.send(encodeRtpPacket({ marker: true, payloadType: 0, sequenceNumber: 65535, timestamp: 1000, ssrc: 42 }, g711.subarray(0, 160)), to);
    rtp.send(encodeRtpPacket({ marker: false, payloadType: 0, sequenceNumber: 0, timestamp: 1160, ssrc: 42 }, g711.subarray(160)), to);
    rtp.send(Buffer.from('not rtp'), to);
    await expect.poll(() => ua.received.length).toBe(2);
    expect(ua.received.map((p) => [p.seq, p.timestamp, p.marker, p.payloadType, p.ssrc])).toEqual([
      [65535, 1000, true, 0, 42], [0, 1160, false, 0, 42],
    ]);
    const decoded = ua.audioSince(0);
    expect(decoded.length).toBe(320);
    for (let i = 0; i < pcm.length; i++) expect(Math.abs(decoded[i]! - pcm[i]!)).toBeLessThan(300);
    expect(ua.audioSince(ua.received[1]!.arrivalMs).length).toBe(0);
    const energy = frameEnergy(decoded);
    expect(energy[0]).toBeGreaterThan(5000);
  });

  it('presses keys as RFC 4733 events: one timestamp per key, marker first, three end packets', async () => {
    const { rtp, ua } = await establish();
    await ua.pressKeys('4#', { gapMs: 10, durationMs: 60 });
    await expect.poll(() => rtp.all.length).toBe(12);
    const packets = rtp.all.map((d) => decodeRtpPacket(d.data)!);
    expect(new Set(packets.map((p) => p.ssrc)).size).toBe(1);
    expect(packets.every((p) => p.payloadType === 101)).toBe(true);
    for (let i = 1; i < packets.length; i++) {
      expect(packets[i]!.sequenceNumber).toBe((packets[i - 1]!.sequenceNumber + 1) & 0xffff);
    }
    const keys = [packets.slice(0, 6), packets.slice(6)];
    expect(keys[0]![0]!.timestamp).not.toBe(keys[1]![0]!.timestamp);
    for (const [k, code] of [[0, 4], [1, 11]] as const) {
      const press = keys[k]!;
      expect(new Set(press.map((p) => p.timestamp)).size).toBe(1);
      expect(press.map((p) => p.marker)).toEqual([true, false, false, false, false, false]);
      const events = press.map((p) => decodeTelephoneEventPayload(p.payload)!);
      expect(events.every((e) => e.event === code)).toBe(true);
      expect(events.map((e) => e.end)).toEqual([false, false, false, true, true, true]);
      expect(events.map((e) => e.duration)).toEqual([160, 320, 480, 480, 480, 480]);
    }
    // Sent from the RTP socket we offered (symmetric RTP).
    expect(rtp.all[0]!.rinfo.port).toBe(ua.localRtpPort);
  });

  it('sends SIP INFO dtmf-relay in the dialog and returns the status', async () => {
    const { sip, ua } = await establish();
    const status = ua.sendInfo('5');
    const info = await sip.nextSip();
    expect(info.message.method).toBe('INFO');
    expect(info.message.requestUri).toBe(`sip:uas@127.0.0.1:${sip.port};transport=udp`);
    expect(headerValue(info.message, 'content-type')).toBe('application/dtmf-relay');
    expect(info.message.body).toBe('Signal=5\r\nDuration=160\r\n');
    expect(headerValue(info.message, 'cseq')).toBe('2 INFO');
    expect(tagOf(headerValue(info.message, 'to')!)).toBe('uas-tag-1');
    sip.send(response(info.message, '415 Unsupported Media Type'), info.rinfo);
    expect(await status).toBe(415);
  });

  it('answers the server BYE with 200 and resolves waitForBye', async () => {
    const { sip, ua, inviteRinfo, invite } = await establish();
    const waiting = ua.waitForBye(3000);
    const bye = [`BYE sip:201@127.0.0.1:${ua.localSipPort} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${sip.port};branch=z9hG4bKbye1`,
      `From: ${headerValue(invite, 'to')};tag=uas-tag-1`, `To: ${headerValue(invite, 'from')}`,
      `Call-ID: ${ua.callId}`, 'CSeq: 1 BYE', 'Content-Length: 0', '', ''].join(CRLF);
    sip.send(bye, inviteRinfo);
    await waiting;
    const ok = await sip.nextSip();
    expect(ok.message.status).toBe(200);
    expect(headerValue(ok.message, 'cseq')).toBe('1 BYE');
    expect(headerValue(ok.message, 'via')).toContain('branch=z9hG4bKbye1');
    expect(ua.byeReceived).toBe(true);
    expect(await ua.hangup()).toBe(0); // already ended: nothing sent
    // A BYE for another call is refused.
    sip.send(bye.replace(ua.callId, 'other@x'), inviteRinfo);
    expect((await sip.nextSip()).message.status).toBe(481);
  });

  it('hangs up with BYE (retransmitted until answered)', async () => {
    const { sip, ua } = await establish();
    const hangingUp = ua.hangup();
    const bye = await sip.nextSip();
    const again = await sip.nextSip();
    expect(again.text).toBe(bye.text);
    expect(bye.message.method).toBe('BYE');
    expect(headerValue(bye.message, 'cseq')).toBe('2 BYE');
    sip.send(response(bye.message, '200 OK'), bye.rinfo);
    expect(await hangingUp).toBe(200);
  });

  it('rejects on a final >= 300, ACKing it in the INVITE transaction', async () => {
    const { sip } = await fakeUas();
    const calling = TestUa.call({
      target: { address: '127.0.0.1', port: sip.port }, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local',
      codec: 'PCMA', telephoneEventPayloadType: null,
    });
    const rejected = calling.then(() => null, (e: unknown) => e);
    const invite = await sip.nextSip();
    expect(parseSdpAudio(invite.message.body)?.payloadTypes).toEqual([8]);
    expect(invite.message.body).toContain('a=rtpmap:8 PCMA/8000');
    sip.send(response(invite.message, '488 Not Acceptable Here'), invite.rinfo);
    const error = await rejected;
    expect(error).toBeInstanceOf(TestUaCallRejectedError);
    expect((error as TestUaCallRejectedError).status).toBe(488);
    const ack = await sip.nextSip();
    expect(ack.message.method).toBe('ACK');
    expect(ack.message.requestUri).toBe('sip:*97@demo.local');
    expect(headerValue(ack.message, 'via')).toBe(headerValue(invite.message, 'via'));
    expect(tagOf(headerValue(ack.message, 'to')!)).toBe('uas-tag-1');
    expect(headerValue(ack.message, 'cseq')).toBe('1 ACK');
  });

  it('gives up after transactionTimeoutMs when nothing answers', async () => {
    const { sip } = await fakeUas();
    const error = await TestUa.call({
      target: { address: '127.0.0.1', port: sip.port }, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local',
      transactionTimeoutMs: 1200,
    }).then(() => null, (e: unknown) => e);
    expect(String(error)).toMatch(/INVITE timed out/);
    expect(sip.all.length).toBeGreaterThanOrEqual(2); // sent at 0 and T1
  });
});
