/**
 * Random mutation fuzzing of a whole running server over real UDP, with a fixed seed (so a
 * failure replays exactly): mutated INVITEs with SDP, and mutated INFO and re-INVITE requests
 * inside an established call's dialog. The server must never crash or throw (no error-level
 * log, no unhandled rejection — vitest fails the run on one), must keep answering, must let
 * every transaction it created go again, and must not keep memory per message: of two equal
 * batches, the second may add next to nothing to the heap once its transactions have ended.
 *
 * The parser alone is fuzzed in test/unit/sip/fuzz.test.ts; this goes through the whole stack:
 * transport, transactions, dialogs, SDP negotiation, router, IVR session.
 */
import { createSocket, type Socket } from 'node:dgram';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const SEED = 0x5eed_4475;
const INVITE_ITERATIONS = 2000;
const IN_DIALOG_ITERATIONS = 1000;
/**
 * Heap the second batch may add per message it sent, once everything it created has ended. What
 * a clean second batch adds is code V8 optimises along the way and GC noise (measured on this
 * machine: −260 to +230 kB for the 3000 messages); keeping even a small object per message (an
 * injected `{ at, source }` per datagram measured +670 kB, 220 B per message) goes over.
 */
const LEAK_BUDGET_BYTES_PER_MESSAGE = 128;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NASTY = ['\0', '\r', '\n', '\r\n', ' ', '\t', ';', ':', '<', '>', '"', '\\', '%', '%00', '=', ',', '@', '€', '\u{1F4DE}', '99999999999999999999', '-1', 'sip:', '\r\n\r\n'];

function mutate(text: string, rand: () => number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const pick = (n: number): number => Math.floor(rand() * n);
  let out: Buffer = bytes;
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds; r++) {
    const at = pick(out.length + 1);
    switch (pick(8)) {
      case 0: { // flip a byte
        const copy = Buffer.from(out);
        if (copy.length > 0) copy[pick(copy.length)] = pick(256);
        out = copy;
        break;
      }
      case 1: // insert a nasty token
        out = Buffer.concat([out.subarray(0, at), Buffer.from(NASTY[pick(NASTY.length)]!, 'utf8'), out.subarray(at)]);
        break;
      case 2: // delete a range
        out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + pick(40)))]);
        break;
      case 3: { // duplicate a line
        const lines = out.toString('latin1').split('\r\n');
        const i = pick(lines.length);
        lines.splice(i, 0, lines[i] ?? '');
        out = Buffer.from(lines.join('\r\n'), 'latin1');
        break;
      }
      case 4: { // drop a line
        const lines = out.toString('latin1').split('\r\n');
        lines.splice(pick(lines.length), 1);
        out = Buffer.from(lines.join('\r\n'), 'latin1');
        break;
      }
      case 5: // truncate
        out = out.subarray(0, at);
        break;
      case 6: { // a wrong Content-Length
        out = Buffer.from(out.toString('latin1').replace(/Content-Length: \d+/i, `Content-Length: ${pick(3) === 0 ? 4_294_967_296 : pick(2000)}`), 'latin1');
        break;
      }
      default: { // random bytes
        const junk = Buffer.alloc(1 + pick(64));
        for (let i = 0; i < junk.length; i++) junk[i] = pick(256);
        out = Buffer.concat([out.subarray(0, at), junk, out.subarray(at)]);
      }
    }
  }
  return out;
}

function sdp(port: number, rand: () => number): string {
  const lines = [
    'v=0', `o=fuzz ${Math.floor(rand() * 1e9)} 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${port} RTP/AVP 0 8 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16', 'a=ptime:20', 'a=sendrecv', '',
  ];
  return lines.join('\r\n');
}

function request(method: string, uri: string, headers: string[], body = ''): string {
  return [`${method} ${uri} SIP/2.0`, ...headers, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
}

async function bind(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return socket;
}

/**
 * Heap in use after full collections. `global.gc` when node runs with --expose-gc; otherwise the
 * same function, reached by turning the flag on at run time (V8 installs `gc` in contexts created
 * after that). Two passes: the first can leave objects that only a second one frees (weak
 * callbacks, finalizers).
 */
function heapAfterGc(): number {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('mutation fuzzing of a running server (fixed seed)', () => {
  let t: TestServer;
  let port: number;
  const engine = (): EmbeddedEngine => t.server.engine as EmbeddedEngine;

  beforeAll(async () => {
    t = await startTestServer('pglite', { LOG_LEVEL: 'warn', INVITE_RATE_PER_SOURCE: '0' });
    port = Number(t.sipTarget.split(':')[1]);
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** Sends and collects what comes back for `ms`. */
  async function exchange(socket: Socket, payload: Buffer | string, ms: number): Promise<string[]> {
    const got: string[] = [];
    const onMessage = (m: Buffer): void => { got.push(m.toString('latin1')); };
    socket.on('message', onMessage);
    socket.send(typeof payload === 'string' ? Buffer.from(payload) : payload, port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, ms));
    socket.off('message', onMessage);
    return got;
  }

  async function optionsAnswered(socket: Socket): Promise<boolean> {
    const local = socket.address();
    const replies = await exchange(socket, request('OPTIONS', 'sip:vmaccess@127.0.0.1', [
      `Via: SIP/2.0/UDP 127.0.0.1:${local.port};branch=z9hG4bK-opt-${Date.now()}`, 'Max-Forwards: 70',
      'From: <sip:fuzz@127.0.0.1>;tag=o1', 'To: <sip:vmaccess@127.0.0.1>', `Call-ID: opt-${Date.now()}@fuzz`, 'CSeq: 1 OPTIONS',
    ]), 300);
    return replies.some((r) => r.startsWith('SIP/2.0 200'));
  }

  /** Every transaction and dialog gone: Timer J/H/I end them up to 64·T1 = 32 s after the answer. */
  async function drained(): Promise<void> {
    await waitFor(() => {
      const s = engine().sipStats;
      return s.serverTransactions === 0 && s.clientTransactions === 0 && s.dialogs === 0;
    }, 45_000, 'every transaction and dialog gone');
    expect(engine().activeCalls).toBe(0);
    expect(engine().rtpPortsInUse).toBe(0);
  }

  /**
   * One batch: INVITE_ITERATIONS mutated INVITEs out of any dialog, then a real call with
   * IN_DIALOG_ITERATIONS mutated INFO and re-INVITEs in its dialog, hung up. The server must
   * answer OPTIONS after each part.
   */
  async function batch(socket: Socket, rand: () => number, n: number): Promise<void> {
    const local = socket.address();
    const via = (tag: string): string => `Via: SIP/2.0/UDP 127.0.0.1:${local.port};branch=z9hG4bK-b${n}-${tag};rport`;

    // Out of dialog: INVITEs to a number that does not exist, so a mutant that survives gets
    // its 404 after the SDP check and the router — every layer runs, no call is left up.
    for (let i = 0; i < INVITE_ITERATIONS; i++) {
      const base = request('INVITE', 'sip:5555@demo.local', [
        via(`i${i}`), 'Max-Forwards: 70', `From: "Fuzz" <sip:201@demo.local>;tag=f${n}-${i}`, 'To: <sip:5555@demo.local>',
        `Call-ID: fuzz-${n}-${i}@127.0.0.1`, 'CSeq: 1 INVITE', `Contact: <sip:201@127.0.0.1:${local.port}>`,
        'Content-Type: application/sdp', 'P-Asserted-Identity: <sip:201@demo.local>',
      ], sdp(30_000, rand));
      socket.send(mutate(base, rand), port, '127.0.0.1');
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20)); // let the server breathe like a network would
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(await optionsAnswered(socket)).toBe(true);

    // In a dialog: a real call to *97, then mutated INFO (DTMF) and re-INVITEs (SDP) in it.
    const callId = `fuzz-dialog-${n}@127.0.0.1`;
    const offer = sdp(30_002, rand);
    const replies = await exchange(socket, request('INVITE', 'sip:*97@demo.local', [
      via('dialog'), 'Max-Forwards: 70', `From: <sip:201@demo.local>;tag=dialog${n}`, 'To: <sip:*97@demo.local>',
      `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sip:201@127.0.0.1:${local.port}>`, 'Content-Type: application/sdp',
    ], offer), 500);
    const ok = replies.find((r) => r.startsWith('SIP/2.0 200'));
    expect(ok, replies.join('\n---\n')).toBeDefined();
    const toTag = /^To:.*;tag=([^;\r\n]+)/im.exec(ok!)?.[1];
    expect(toTag).toBeDefined();
    const dialogHeaders = (tag: string, cseq: string): string[] => [
      via(tag), 'Max-Forwards: 70', `From: <sip:201@demo.local>;tag=dialog${n}`, `To: <sip:*97@demo.local>;tag=${toTag!}`,
      `Call-ID: ${callId}`, `CSeq: ${cseq}`, `Contact: <sip:201@127.0.0.1:${local.port}>`,
    ];
    socket.send(Buffer.from(request('ACK', 'sip:vmaccess@127.0.0.1', dialogHeaders('ack', '1 ACK'))), port, '127.0.0.1');
    await waitFor(() => engine().activeCalls === 1, 5000, 'the call');

    for (let i = 0; i < IN_DIALOG_ITERATIONS; i++) {
      const cseq = 2 + i;
      const base = i % 3 === 2
        ? request('INVITE', 'sip:vmaccess@127.0.0.1', [...dialogHeaders(`r${i}`, `${cseq} INVITE`), 'Content-Type: application/sdp'], sdp(30_002, rand))
        : request('INFO', 'sip:vmaccess@127.0.0.1', [...dialogHeaders(`n${i}`, `${cseq} INFO`), `Content-Type: application/dtmf${i % 2 === 0 ? '-relay' : ''}`],
          i % 2 === 0 ? `Signal=${'0123456789*#'[i % 12]}\r\nDuration=160\r\n` : '5');
      socket.send(mutate(base, rand), port, '127.0.0.1');
      if (i % 25 === 24) await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(await optionsAnswered(socket)).toBe(true);

    // The call is still a call (or was ended cleanly by a mutant that became a valid BYE or
    // an IVR timeout) — never half torn down. Hang it up and let everything go.
    const bye = await exchange(socket, request('BYE', 'sip:vmaccess@127.0.0.1', dialogHeaders('bye', `${2 + IN_DIALOG_ITERATIONS} BYE`)), 300);
    expect(bye.some((r) => /^SIP\/2\.0 (200|481)/.test(r))).toBe(true);
    await waitFor(() => engine().activeCalls === 0 && engine().rtpPortsInUse === 0, 10_000, 'the call released');
  }

  it(`two equal batches of ${INVITE_ITERATIONS} mutated INVITEs and ${IN_DIALOG_ITERATIONS} mutated in-dialog requests: no crash, no leak, still serving`, async () => {
    const rand = prng(SEED);
    const socket = await bind();
    try {
      expect(await optionsAnswered(socket)).toBe(true);
      await drained();
      const heapStart = heapAfterGc();

      // The first batch also warms up whatever is made once and kept (compiled code, lazily
      // built tables, metric series, pools), so its growth is not a leak. The second, of the
      // same size and kind, starts from that state: whatever it adds after every transaction
      // and dialog has ended and a full GC is what each message leaves behind.
      await batch(socket, rand, 1);
      await drained();
      const heapAfterFirst = heapAfterGc();
      await batch(socket, rand, 2);
      await drained();
      const heapAfterSecond = heapAfterGc();

      const messages = INVITE_ITERATIONS + IN_DIALOG_ITERATIONS;
      const first = heapAfterFirst - heapStart;
      const second = heapAfterSecond - heapAfterFirst;
      const report = `heap growth: first batch ${(first / 1e3).toFixed(0)} kB, second ${(second / 1e3).toFixed(0)} kB (${(second / messages).toFixed(0)} B per message)`;
      // A leak of even a few hundred bytes per message (a parsed request, a transaction, a
      // timer closure, a map entry kept per Call-ID) shows as hundreds of kB here; what is left
      // below is allocator and GC noise.
      expect(second, report).toBeLessThan(messages * LEAK_BUDGET_BYTES_PER_MESSAGE);
      const errors = t.logs.records().filter((r) => Number(r.level) >= 50);
      expect(errors.map((r) => JSON.stringify(r).slice(0, 600))).toEqual([]);
    } finally {
      socket.close();
    }
  }, 180_000);
});
