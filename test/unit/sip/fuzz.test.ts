import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseMessage,
  parseNameAddr,
  parseUri,
  parseVia,
  parseCSeq,
  SipParseError,
} from '../../../src/telephony/embedded/sip/index.js';

const SEED = 20240611;

const SAMPLES = [
  [
    'INVITE sip:*97@demo.local;user=phone SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1;rport',
    'v: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKabc, SIP/2.0/UDP proxy.example.com',
    'Max-Forwards: 70',
    'Record-Route: <sip:proxy.example.com;lr>',
    'f: "Alice \\"A\\"" <sip:201@demo.local>;tag=abc123',
    't: <sip:*97@demo.local>',
    'i: 8f1c2e@192.0.2.10',
    'CSeq: 1 INVITE',
    'm: <sip:201@192.0.2.10:5060;transport=udp>;expires=60',
    'Require: timer',
    'c: application/sdp',
    'l: 26',
    '',
    'v=0\r\no=- 1 1 IN IP4 x\r\n',
  ].join('\r\n'),
  [
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK77;received=127.0.0.1;rport=5062',
    'From: <sip:a@b>;tag=1',
    'To: <sip:c@d>;tag=2',
    'Call-ID: x@y',
    'CSeq: 7 BYE',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
  [
    'OPTIONS sip:user@example.com SIP/2.0',
    'To: sip:user@example.com',
    'From: caller<sip:caller@example.com>;tag=323',
    'Max-Forwards: 70',
    'Call-ID: lwsdisp.1234abcd@funky.example.com',
    'CSeq: 60',
    ' OPTIONS',
    'Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw',
    'l: 0',
    '',
    '',
  ].join('\r\n'),
].map((s) => Buffer.from(s, 'utf8'));

const INTERESTING = ['\r\n', '\r\n ', ':', ';', ',', '"', '\\', '<', '>', '@', '[', ']', '%', '\x00', '\xff', ' ', '=', 'SIP/2.0', 'z9hG4bK', '999999999999', '-1', 'Content-Length: 9999\r\n', 'CSeq: 1 ACK\r\n', 'Via: \r\n'];

type Mutation =
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number; length: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...INTERESTING), fc.string({ maxLength: 8 })) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 60 }) }),
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let buf = input;
  for (const m of mutations) {
    const at = buf.length === 0 ? 0 : m.at % buf.length;
    switch (m.kind) {
      case 'flip': {
        buf = Buffer.from(buf);
        if (buf.length > 0) buf[at] = m.byte;
        break;
      }
      case 'insert':
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from(m.text, 'utf8'), buf.subarray(at)]);
        break;
      case 'delete':
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.length)]);
        break;
      case 'truncate':
        buf = buf.subarray(0, at);
        break;
      case 'duplicate':
        buf = Buffer.concat([buf.subarray(0, at + m.length), buf.subarray(at)]);
        break;
    }
  }
  return buf;
}

/** Only SipParseError, and never one that wraps an unexpected internal error. */
function expectOnlyParseErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SipParseError);
    expect((err as SipParseError).cause, (err as SipParseError).reason).toBeUndefined();
  }
}

describe('parser fuzzing (fixed seed)', () => {
  it('mutated messages: SipParseError or a message that serializes and parses again', () => {
    let parsed = 0;
    let rejected = 0;
    fc.assert(
      fc.property(fc.nat({ max: SAMPLES.length - 1 }), fc.array(mutationArb, { minLength: 1, maxLength: 6 }), fc.constantFrom<'udp' | 'tcp'>('udp', 'tcp'), (index, mutations, transport) => {
        const data = mutate(SAMPLES[index] ?? Buffer.alloc(0), mutations);
        try {
          const message = parseMessage(data, transport);
          parsed++;
          // Whatever parsed must serialize, and what we write must parse again.
          const again = parseMessage(message.serialize(), 'tcp');
          expect(again.startLine).toBe(message.startLine);
          expect(Buffer.compare(again.body, message.body)).toBe(0);
        } catch (err) {
          rejected++;
          expect(err).toBeInstanceOf(SipParseError);
          expect((err as SipParseError).cause, (err as SipParseError).reason).toBeUndefined();
        }
      }),
      { seed: SEED, numRuns: 4000 },
    );
    // The mutations must exercise both outcomes, or the test proves nothing.
    expect(parsed).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });

  it('random bytes and random text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), fc.string({ maxLength: 300 }).map((s) => Buffer.from(s))), (data) => {
        expectOnlyParseErrors(() => parseMessage(data));
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('header value parsers on arbitrary strings', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.array(fc.constantFrom('sip:', 'tel:', 'a', '@', ':', ';', '=', '<', '>', '"', '\\', '[', '::1', ']', ' ', '5060', 'tag', 'SIP/2.0/UDP', '/', ',', '%4', '%41', '?', '&'), { maxLength: 20 }).map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(text, (value) => {
        expectOnlyParseErrors(() => parseUri(value));
        expectOnlyParseErrors(() => parseVia(value));
        expectOnlyParseErrors(() => parseNameAddr(value));
        expectOnlyParseErrors(() => parseCSeq(value));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
