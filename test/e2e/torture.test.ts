/**
 * RFC 4475 ("SIP Torture Test Messages") against a whole vmaccess server (embedded engine, demo
 * tenant, PGlite): every test message of §3.1 – §3.4, from test/support/rfc4475-fixtures.ts (which
 * test/unit/sip/rfc4475.test.ts holds to the parser), sent over real UDP from a socket of its own.
 *
 * Each fixture puts that socket's address in its top Via sent-by, over UDP (and keeps whatever
 * torture the Via itself is about), so a response comes back to it (RFC 3261 §18.2.2). The
 * answer expected is the one a UAS gives — never a proxy's — and exactly what this server gives:
 * where the RFC lets a message be dropped (only responses: a stray or unreadable one), the test
 * proves the server saw it (its debug log says why it dropped it) and sent nothing; every invalid
 * request whose Via and CSeq can be read is answered. After the lot the server must still answer
 * OPTIONS, end every transaction within its timers (Timer I = T4 once our ACK confirms an INVITE's non-2xx, Timer J = 64*T1 =
 * 32 s for non-INVITE over UDP, §17.2), hold no call, and have logged no error.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { DEFAULT_TIMERS, parseMessage, SipRequest, SipResponse } from '../../src/telephony/embedded/sip/index.js';
import {
  badaspec, badbranch, baddate, baddn, badinv01, badvers, bcast, bext01, bigcode, clerr, cparam01, cparam02,
  cparamRegister, dblreq, esc01, esc02, escnull, escruri, insuf, intmeth, inv2543, invut, longreq, ltgtruri,
  lwsdisp, lwsruri, lwsstart, mcl01, mismatch01, mismatch02, mpart01, multi01, ncl, noreason, novelsc, quotbal,
  regaut01, regbadct, REGESCRT_CONTACT, scalar02, scalarlg, sdp01, semiuri, sip, transports, trws, unkscm, unksm2,
  unreason, wsinv, zeromf, type CparamOptions, type StartLineOptions,
} from '../support/rfc4475-fixtures.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { sleep, waitFor } from '../support/wait.js';

// ---- what comes back -----------------------------------------------------------------------------

interface Reply {
  readonly raw: Buffer;
  readonly status: number;
  /** Header lines as the server wrote them (it does not fold), names as written. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Parsed, when our own parser takes it: a 400 that copies a malformed header verbatim is not. */
  readonly message: SipResponse | undefined;
}

function toReply(raw: Buffer): Reply {
  const text = raw.toString('utf8');
  const [start = '', ...lines] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
  const status = Number(/^SIP\/2\.0 (\d{3}) /.exec(start)?.[1] ?? NaN);
  const headers = lines.map((l): [string, string] => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
  let message: SipResponse | undefined;
  try {
    const parsed = parseMessage(raw, 'udp');
    if (parsed instanceof SipResponse) message = parsed;
  } catch {
    message = undefined;
  }
  return { raw, status, headers, message };
}

/** Every value the server wrote for one header name (it writes long forms, RFC 3261 §7.3.3). */
function values(reply: Reply, name: string): string[] {
  return reply.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

/** A value of a header line of the message we sent (first line of that name, long or compact). */
function sentHeader(sent: Buffer, ...names: string[]): string | undefined {
  const lines = sent.toString('utf8').split('\r\n\r\n')[0]?.split('\r\n') ?? [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0 && names.some((n) => line.slice(0, colon).trim().toLowerCase() === n.toLowerCase())) return line.slice(colon + 1).trim();
  }
  return undefined;
}

/** One UDP socket on 127.0.0.1 standing in for one RFC 4475 sender. */
class Peer {
  readonly replies: Reply[] = [];

  private constructor(private readonly socket: Socket, readonly port: number) {
    socket.on('message', (buf) => this.replies.push(toReply(buf)));
  }

  static open(): Promise<Peer> {
    const socket = createSocket('udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve(new Peer(socket, socket.address().port)));
    });
  }

  get sentBy(): string {
    return `127.0.0.1:${this.port}`;
  }

  send(data: Buffer, target: { address: string; port: number }): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(data, target.port, target.address, (err) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/**
 * "The ACK MUST contain a single Via header field, and this MUST be equal to the top Via header
 * field of the original request" with the To of the response (§17.1.1.3): ends the INVITE
 * server transaction's Completed state (Timer G, H) so it goes after Timer I. Only for an INVITE
 * the server could read: one it could not was answered statelessly, with no transaction to end.
 */
function ackFor(sent: Buffer, final: Reply): Buffer | undefined {
  let request: SipRequest;
  try {
    const parsed = parseMessage(sent, 'udp');
    if (!(parsed instanceof SipRequest) || parsed.method !== 'INVITE') return undefined;
    request = parsed;
  } catch {
    return undefined;
  }
  const to = final.message?.get('to');
  if (to === undefined || final.status < 300) return undefined;
  return sip([
    `ACK ${request.uri} SIP/2.0`,
    `Via: ${request.get('via') ?? ''}`,
    `From: ${request.get('from') ?? ''}`,
    `To: ${to}`,
    `Call-ID: ${request.callId}`,
    `CSeq: ${request.cseq.seq} ACK`,
    'Max-Forwards: 70',
    'Content-Length: 0',
  ]);
}

// ---- the fixtures --------------------------------------------------------------------------------

/** What the server does with a fixture: a final status, or nothing at all (logged as `dropLog`). */
type Outcome =
  | { readonly status: number; readonly check?: (final: Reply, all: readonly Reply[]) => void; readonly lingerMs?: number }
  | { readonly dropLog: string };

interface Torture {
  readonly name: string;
  /** The message, with `v` (our socket's host:port) as the top Via sent-by. */
  readonly build: (v: string) => Buffer;
  readonly outcome: Outcome;
}

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, SUBSCRIBE';
const DROPPED_REQUEST = 'dropped unparseable SIP message';
const STRAY_RESPONSE = 'response matches no transaction';

const expectAllow = (final: Reply): void => {
  expect(values(final, 'Allow')).toEqual([ALLOW]);
};

/**
 * A 400 for a broken request line: the reason names the fault, the CSeq and From come back as
 * sent, and the INVITE ones got no 100 Trying — they never reached a transaction (§17.2.1 sends
 * 100 from the INVITE server transaction only).
 */
const expectStatelessRequestLine = (method: string, reason: string) => (final: Reply, all: readonly Reply[]): void => {
  expect(final.message?.reason).toBe(reason);
  expect(values(final, 'CSeq')).toEqual([`1 ${method}`]);
  expect(values(final, 'From')).toEqual(['sip:caller@example.net;tag=rl']);
  expect(all.map((r) => r.status)).toEqual([400]);
};

/** The Call-ID and CSeq method of the four broken request lines (§3.1.2.7 – §3.1.2.10). */
const startLine = (v: string, method: string): StartLineOptions => ({ sentBy: v, cseqMethod: method, callId: `startline.${method}.2kq9v@192.0.2.5` });

/** The ids of the §3.3.12 – §3.3.14 registrations (this UAS is no registrar). */
const registered = (v: string, id: string): CparamOptions => ({ sentBy: v, branch: `z9hG4bK${id}`, tag: id, callId: `${id}.70710@saturn.example.com` });

const TORTURES: readonly Torture[] = [
  // ---- §3.1.1 valid messages: each gets the answer its method and target call for.
  {
    name: '§3.1.1.1 wsinv: tortuous whitespace, folding and compact forms; To-tagged, so 481 (§12.2.2)',
    build: (v) => wsinv({ sentBy: v }),
    // A To tag names a dialog we do not have: "it MUST respond to the request with a 481" (§12.2.2).
    outcome: {
      status: 481,
      check: (final) => {
        expect(final.message?.to.tag).toBe('4475wsinv9x');
        expect(final.message?.cseq).toEqual({ seq: 44, method: 'INVITE' });
        expect(final.message?.vias).toHaveLength(3);
      },
    },
  },
  {
    // The same torture as a new INVITE (no To tag): routed like any other, and "vivekg" is no
    // access number of demo.local (the DEFAULT_DOMAIN every unknown host falls back to).
    name: '§3.1.1.1 wsinv, without its To tag: the same tortuous INVITE as a new call → 404',
    build: (v) => wsinv({ sentBy: v, toParam: 'unknownparam    = 4475', callId: 'wsinv.untagged.3kq0vd@192.0.2.7' }),
    outcome: { status: 404, check: (final) => expect(final.message?.to.params['unknownparam']).toBe('4475') },
  },
  {
    name: '§3.1.1.2 intmeth: an unknown method of every token character → 501 with Allow (§8.2.1)',
    build: (v) => intmeth({ sentBy: v }),
    outcome: {
      status: 501,
      check: (final) => {
        expectAllow(final);
        expect(final.message?.cseq.method).toBe("!weird-Method9876543210_*+`.%really'~");
        expect(final.message?.callId).toBe('intmeth.w%ZZ-!.*_+\'@w`~)(><:\\/"][?}{');
        // The quoted control characters are copied back as they came (§8.2.6.2).
        expect(final.message?.to.displayName).toBe('BEL:\x07 NUL:\x00 DEL:\x7f');
      },
    },
  },
  {
    name: '§3.1.1.3 esc01: %HEX escapes in user parts and URI parameters → 404 for the decoded user',
    build: (v) => esc01({ sentBy: v }),
    // No known domain, so DEFAULT_DOMAIN (demo.local), where "sips:other@example.com" is no access number.
    outcome: { status: 404 },
  },
  {
    name: '§3.1.1.4 escnull: %00 in user parts of a REGISTER → 405 (no registrar here), with Allow',
    build: (v) => escnull({ sentBy: v }),
    outcome: {
      status: 405,
      check: (final) => {
        expectAllow(final);
        // The NUL stays inside the copied To, escaped as it came.
        expect(values(final, 'To')[0]).toMatch(/^sip:nul-%00-nul@example\.com;tag=/);
      },
    },
  },
  {
    name: '§3.1.1.5 esc02: RE%47IST%45R is not REGISTER → 501 (§21.5.2)',
    build: (v) => esc02({ sentBy: v, transport: 'UDP' }),
    outcome: { status: 501, check: expectAllow },
  },
  {
    name: '§3.1.1.6 lwsdisp: no LWS before "<" → OPTIONS answered 200 (§11.2)',
    build: (v) => lwsdisp({ sentBy: v }),
    outcome: {
      status: 200,
      check: (final) => {
        expectAllow(final);
        expect(values(final, 'From')).toEqual(['caller<sip:caller@example.com>;tag=lw6']);
      },
    },
  },
  {
    name: '§3.1.1.7 longreq: very long values and 34 Vias → 404, every Via copied back in order',
    build: (v) => longreq({ sentBy: v, transport: 'UDP' }),
    outcome: {
      status: 404,
      check: (final) => {
        const vias = final.message?.vias ?? [];
        expect(vias).toHaveLength(34);
        expect(vias[1]?.host).toBe('sip32.example.com');
        expect(vias[33]?.host).toBe('host.example.com');
      },
    },
  },
  {
    name: '§3.1.1.8 dblreq: REGISTER then INVITE-looking noise in one datagram → 405 only; the INVITE is never seen',
    build: (v) => dblreq({ sentBy: v, inviteSentBy: v }),
    outcome: {
      status: 405,
      // Long enough for the 100 Trying an INVITE would have had at once.
      lingerMs: 500,
      check: (_final, all) => {
        expect(all.map((r) => values(r, 'Call-ID')[0])).toEqual(['dblreq.first.77kq2']);
      },
    },
  },
  {
    name: '§3.1.1.9 semiuri: ";" and an escaped "@" in the user part → OPTIONS 200',
    build: (v) => semiuri({ sentBy: v }),
    outcome: { status: 200 },
  },
  {
    name: '§3.1.1.10 transports: Vias over SCTP, TLS, UNKNOWN and TCP below ours → OPTIONS 200, all five copied',
    build: (v) => transports({ sentBy: v }),
    outcome: {
      status: 200,
      check: (final) => {
        expect(final.message?.vias.map((via) => via.transport)).toEqual(['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
      },
    },
  },
  {
    name: '§3.1.1.11 mpart01: a binary multipart MESSAGE framed by Content-Length → 405 (MESSAGE not taken)',
    build: (v) => mpart01({ sentBy: v }),
    outcome: {
      status: 405,
      check: (final) => {
        expectAllow(final);
        // rport (RFC 3581 §4) filled in with the port it came from.
        expect(final.message?.topVia.rport).toBeGreaterThan(0);
      },
    },
  },
  {
    name: '§3.1.1.12 unreason: a 200 with a UTF-8 reason phrase, for no transaction of ours → dropped (§18.1.2)',
    build: (v) => unreason({ sentBy: v }),
    outcome: { dropLog: STRAY_RESPONSE },
  },
  {
    name: '§3.1.1.13 noreason: "SIP/2.0 100 " with no reason phrase → parsed, matches nothing, dropped',
    build: (v) => noreason({ sentBy: v }),
    outcome: { dropLog: STRAY_RESPONSE },
  },

  // ---- §3.1.2 invalid messages: 400 (or the RFC's code), or nothing where the RFC allows it.
  {
    name: '§3.1.2.1 badinv01: empty Via and Contact parameters → 400, sent to the source (the Via is unreadable)',
    build: (v) => badinv01({ sentBy: v }),
    outcome: {
      status: 400,
      check: (final) => {
        // The Via values are copied as they came (§8.2.6.2), so the answer is as unreadable as they are.
        expect(values(final, 'Via')).toEqual([expect.stringMatching(/^SIP\/2\.0\/UDP 127\.0\.0\.1:\d+;;$/), ';']);
        expect(values(final, 'Call-ID')).toEqual(['badinv01.29vkq0']);
      },
    },
  },
  {
    name: '§3.1.2.2 clerr: Content-Length larger than the body → 400 (§18.3)',
    build: (v) => clerr({ sentBy: v }),
    outcome: { status: 400, check: (final) => expect(final.message?.reason).toBe('body shorter than Content-Length') },
  },
  {
    name: '§3.1.2.3 ncl: negative Content-Length → 400',
    build: (v) => ncl({ sentBy: v }),
    outcome: { status: 400, check: (final) => expect(final.message?.reason).toMatch(/Content-Length/) },
  },
  {
    name: '§3.1.2.4 scalar02: overlarge CSeq, Max-Forwards and Expires → 400, the CSeq copied as it came',
    build: (v) => scalar02({ sentBy: v, transport: 'UDP' }),
    outcome: {
      status: 400,
      check: (final) => {
        expect(values(final, 'CSeq')).toEqual(['36893488147419103232 REGISTER']);
        expect(values(final, 'Call-ID')).toEqual(['scalar02.0vkq29']);
      },
    },
  },
  {
    name: '§3.1.2.5 scalarlg: a response with overlarge CSeq, Retry-After and Warning code → dropped',
    build: (v) => scalarlg({ sentBy: v, transport: 'UDP' }),
    outcome: { dropLog: DROPPED_REQUEST },
  },
  {
    name: '§3.1.2.6 quotbal: unterminated quoted display name in To → 400, that To copied untouched',
    build: (v) => quotbal({ sentBy: v }),
    outcome: {
      status: 400,
      // A tag appended to it would land inside the open quote: it is left as it came.
      check: (final) => expect(values(final, 'To')).toEqual(['"Mr. J. User <sip:j.user@example.com>']),
    },
  },
  // The four broken request lines: the RFC has ltgtruri and lwsruri answered 400 ("should") and
  // finds rejecting lwsstart and trws "acceptable". Their headers are intact, so the server answers
  // statelessly from them (user-agent.ts answerStatelessly) — no transaction, so nothing to ACK.
  {
    name: '§3.1.2.7 ltgtruri: Request-URI in "<>" → 400 from the intact headers',
    build: (v) => ltgtruri(startLine(v, 'INVITE')),
    outcome: { status: 400, check: expectStatelessRequestLine('INVITE', 'bad Request-URI') },
  },
  {
    name: '§3.1.2.8 lwsruri: LWS in the Request-URI → 400',
    build: (v) => lwsruri(startLine(v, 'INVITE')),
    outcome: { status: 400, check: expectStatelessRequestLine('INVITE', 'bad request line') },
  },
  {
    name: '§3.1.2.9 lwsstart: several SP between request-line elements → 400 ("acceptable to reject")',
    build: (v) => lwsstart(startLine(v, 'INVITE')),
    outcome: { status: 400, check: expectStatelessRequestLine('INVITE', 'bad request line') },
  },
  {
    name: '§3.1.2.10 trws: SP after SIP/2.0 → 400 ("acceptable to reject")',
    build: (v) => trws(startLine(v, 'OPTIONS')),
    outcome: { status: 400, check: expectStatelessRequestLine('OPTIONS', 'bad request line') },
  },
  {
    name: '§3.1.2.11 escruri: escaped headers in the Request-URI are ignored ("liberal") → 404 for "user"',
    build: (v) => escruri({ sentBy: v }),
    outcome: { status: 404, check: (final) => expect(values(final, 'Route')).toEqual([]) },
  },
  {
    name: '§3.1.2.12 baddate: a non-GMT Date nobody reads → 404 for "user"',
    build: (v) => baddate({ sentBy: v }),
    outcome: { status: 404 },
  },
  {
    name: '§3.1.2.13 regbadct: unbracketed Contact URI with a header in a REGISTER → 405 (the Contact is never read)',
    build: (v) => regbadct({ sentBy: v }),
    outcome: { status: 405, check: expectAllow },
  },
  {
    name: '§3.1.2.14 badaspec: spaces inside "<>" in To → 400',
    build: (v) => badaspec({ sentBy: v }),
    outcome: { status: 400, check: (final) => expect(values(final, 'Call-ID')).toEqual(['badaspec.0vkq2n']) },
  },
  {
    name: '§3.1.2.15 baddn: unquoted display names with "," → 400',
    build: (v) => baddn({ sentBy: v }),
    outcome: { status: 400, check: (final) => expect(values(final, 'From')).toEqual(['Bell, Alexander <sip:a.g.bell@example.com>;tag=bd15']) },
  },
  {
    name: '§3.1.2.16 badvers: SIP/7.0 in the request line and the Via → 505 (§21.5.6)',
    build: (v) => badvers({ sentBy: v }),
    outcome: {
      status: 505,
      check: (final) => {
        expect(values(final, 'CSeq')).toEqual(['1 OPTIONS']);
        expect(values(final, 'Call-ID')).toEqual(['badvers.16180@c.example.com']);
      },
    },
  },
  {
    name: '§3.1.2.17 mismatch01: OPTIONS with a CSeq for INVITE → 400',
    build: (v) => mismatch01({ sentBy: v }),
    outcome: { status: 400, check: (final) => expect(final.message?.reason).toBe('CSeq method mismatch') },
  },
  {
    name: '§3.1.2.18 mismatch02: an unknown method with a CSeq for INVITE → 400 (the RFC allows it; 501 preferred)',
    build: (v) => mismatch02({ sentBy: v }),
    outcome: { status: 400, check: (final) => expect(final.message?.reason).toBe('CSeq method mismatch') },
  },
  {
    name: '§3.1.2.19 bigcode: status code 4294967301 → dropped',
    build: (v) => bigcode({ sentBy: v }),
    outcome: { dropLog: DROPPED_REQUEST },
  },

  // ---- §3.2 transaction layer.
  {
    name: '§3.2.1 badbranch: branch "z9hG4bK" with no identifier → OPTIONS 200 (matched as an RFC 3261 branch, §17.2.3)',
    build: (v) => badbranch({ sentBy: v }),
    outcome: { status: 200 },
  },

  // ---- §3.3 application layer.
  {
    name: '§3.3.1 insuf: no From, To, Call-ID or Max-Forwards → 400 from the Via and CSeq alone, nothing invented',
    build: (v) => insuf({ sentBy: v }),
    outcome: {
      status: 400,
      check: (final) => {
        expect(values(final, 'CSeq')).toEqual(['193942 INVITE']);
        for (const name of ['From', 'To', 'Call-ID']) expect(values(final, name), name).toEqual([]);
      },
    },
  },
  {
    name: '§3.3.2 unkscm: Request-URI of an unknown scheme → 416 (§8.2.2.1), never routed by the To',
    build: (v) => unkscm({ sentBy: v, transport: 'UDP', tag: 'uk332', callId: 'unkscm.0vkq29', branch: 'z9hG4bKunkscm' }),
    outcome: { status: 416 },
  },
  {
    name: '§3.3.3 novelsc: a registered scheme a UAS never serves (soap.beep) → 416',
    build: (v) => novelsc({ sentBy: v, transport: 'UDP', tag: 'nv333', callId: 'novelsc.2vkq0', branch: 'z9hG4bKnovelsc' }),
    outcome: { status: 416 },
  },
  {
    name: '§3.3.4 unksm2: isbn:, http: and name: URIs in To, From and Contact of a REGISTER → 405',
    build: (v) => unksm2({ sentBy: v }),
    outcome: { status: 405, check: expectAllow },
  },
  {
    name: '§3.3.5 bext01: unknown Require tags → 420 with Unsupported naming them (not the Proxy-Require ones)',
    build: (v) => bext01({ sentBy: v, transport: 'UDP' }),
    outcome: {
      status: 420,
      check: (final) => expect(final.message?.getAll('unsupported')).toEqual(['nothingSupportsThis', 'nothingSupportsThisEither']),
    },
  },
  {
    name: '§3.3.6 invut: INVITE with a body of an unknown type → 415 with Accept (§8.2.3)',
    build: (v) => invut({ sentBy: v }),
    outcome: { status: 415, check: (final) => expect(values(final, 'Accept')).toEqual(['application/sdp']) },
  },
  {
    name: '§3.3.7 regaut01: REGISTER with an Authorization of an unknown scheme → 405 ("appropriate" for a non-registrar)',
    build: (v) => regaut01({ sentBy: v, transport: 'UDP' }),
    outcome: { status: 405, check: expectAllow },
  },
  {
    name: '§3.3.8 multi01: two Call-IDs, Tos, Froms, CSeqs and Max-Forwards → 400',
    build: (v) => multi01({ sentBy: v }),
    outcome: { status: 400, check: (final) => expect(final.message?.reason).toMatch(/^multiple /) },
  },
  {
    name: '§3.3.9 mcl01: two different Content-Length values → 400',
    build: (v) => mcl01({ sentBy: v }),
    outcome: { status: 400, check: (final) => expect(final.message?.reason).toBe('multiple Content-Length') },
  },
  {
    name: '§3.3.10 bcast: a 200 whose second Via is 255.255.255.255 → dropped as a stray response ("should simply discard it")',
    build: (v) => bcast({ sentBy: v }),
    outcome: { dropLog: STRAY_RESPONSE },
  },
  {
    // RFC 4475: "An endpoint should process the request as if the Max-Forwards field value were
    // still positive": 200 for this OPTIONS (483 is a proxy's answer, RFC 3261 §16.3).
    name: '§3.3.11 zeromf: OPTIONS with Max-Forwards 0 → 200 (a UAS goes on)',
    build: (v) => zeromf({ sentBy: v }),
    outcome: { status: 200 },
  },
  {
    name: '§3.3.12 cparam01: REGISTER with a Contact header parameter → 405',
    build: (v) => cparam01(registered(v, 'cparam01')),
    outcome: { status: 405, check: expectAllow },
  },
  {
    name: '§3.3.13 cparam02: REGISTER with a Contact URI parameter → 405',
    build: (v) => cparam02(registered(v, 'cparam02')),
    outcome: { status: 405, check: expectAllow },
  },
  {
    name: '§3.3.14 regescrt: REGISTER with an escaped header in a bracketed Contact → 405',
    build: (v) => cparamRegister(REGESCRT_CONTACT, registered(v, 'regescrt')),
    outcome: { status: 405, check: expectAllow },
  },
  {
    name: '§3.3.15 sdp01: INVITE accepting only text/nobodyKnowsThis → 404 for "user" (no body, so no Accept conflict)',
    build: (v) => sdp01({ sentBy: v }),
    outcome: { status: 404, check: (final) => expect(final.message?.body).toHaveLength(0) },
  },

  // ---- §3.4 backward compatibility.
  {
    name: '§3.4.1 inv2543: RFC 2543 INVITE (no branch, From tag, Max-Forwards, Content-Length, Contact) → 100, then 400 Missing Contact',
    build: (v) => inv2543({ sentBy: v }),
    // Read by the RFC 2543 rules (§17.2.3 without the cookie) into a transaction of its own; the
    // missing Contact is the one thing RFC 3261 cannot do without (§8.1.1.8: the remote target).
    outcome: {
      status: 400,
      check: (final, all) => {
        expect(all.map((r) => r.status)).toEqual([100, 400]);
        expect(final.message?.reason).toBe('Missing Contact');
      },
    },
  },
];

// ---- the run -------------------------------------------------------------------------------------

describe('RFC 4475 torture messages against a running server [pglite]', () => {
  let t: TestServer;
  let target: { address: string; port: number };
  const engine = (): EmbeddedEngine => t.server.engine as EmbeddedEngine;
  /** Every reply any fixture got, for the checks at the end. */
  const everything: Reply[] = [];

  beforeAll(async () => {
    t = await startTestServer('pglite');
    const [address, port] = t.sipTarget.split(':');
    target = { address: address!, port: Number(port) };
  });
  afterAll(async () => {
    await t?.stop();
  });

  /** Whether the server logged that it dropped what `peer` sent (drop records name the source port or the Call-ID). */
  const loggedDrop = (msg: string, peer: Peer, callId: string | undefined): boolean =>
    t.logs.records().some((r) => {
      if (r['msg'] !== msg) return false;
      const source = r['source'] as { port?: number } | undefined;
      return source?.port === peer.port || (callId !== undefined && r['callId'] === callId);
    });

  for (const torture of TORTURES) {
    it(torture.name, async () => {
      const peer = await Peer.open();
      try {
        const sent = torture.build(peer.sentBy);
        await peer.send(sent, target);
        const { outcome } = torture;
        if ('dropLog' in outcome) {
          const callId = sentHeader(sent, 'Call-ID', 'i');
          await waitFor(() => loggedDrop(outcome.dropLog, peer, callId), 3000, `"${outcome.dropLog}" in the log`);
          // Anything the server would send back goes out as it handles the datagram; give it time to arrive.
          await sleep(250);
          expect(peer.replies.map((r) => r.status)).toEqual([]);
          return;
        }
        await waitFor(() => peer.replies.some((r) => r.status >= 200), 5000, `a final response (${outcome.status})`);
        if (outcome.lingerMs !== undefined) await sleep(outcome.lingerMs);
        everything.push(...peer.replies);
        const finals = peer.replies.filter((r) => r.status >= 200);
        const final = finals[0]!;
        const ack = ackFor(sent, final);
        if (ack) {
          await peer.send(ack, target);
          // The ACK found the INVITE server transaction: Completed → Confirmed, so it ends after
          // Timer I rather than retransmitting until Timer H (§17.2.1).
          await waitFor(() => t.logs.records().some((r) => r['msg'] === 'INVITE server transaction state change'
            && r['to'] === 'Confirmed' && String(r['transaction']).includes(peer.sentBy)), 2000, 'the ACK to confirm the INVITE transaction');
        }

        expect(final.status, final.raw.toString('utf8')).toBe(outcome.status);
        expect(finals).toHaveLength(1);
        // Provisional responses only for an INVITE, and only 100 Trying from this UAS (§17.2.1).
        for (const r of peer.replies.filter((reply) => reply.status < 200)) expect(r.status).toBe(100);
        // It came to the socket our Via named, and carries that Via back (§8.2.6.2, §18.2.2).
        expect(values(final, 'Via')[0]).toContain(peer.sentBy);
        // Whatever the request's Call-ID, it is copied back unchanged.
        const callId = sentHeader(sent, 'Call-ID', 'i');
        if (callId !== undefined) expect(values(final, 'Call-ID')[0]).toBe(callId);
        outcome.check?.(final, peer.replies);
      } finally {
        await peer.close();
      }
    });
  }

  it('after all of it: still answers OPTIONS 200, has no call up, never answered 500, logged no error', async () => {
    const peer = await Peer.open();
    try {
      await peer.send(sip([
        'OPTIONS sip:demo.local SIP/2.0',
        `Via: SIP/2.0/UDP ${peer.sentBy};branch=z9hG4bKafter4475`,
        'Max-Forwards: 70',
        'To: <sip:demo.local>',
        'From: <sip:probe@example.com>;tag=after',
        'Call-ID: after-torture@127.0.0.1',
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
      ]), target);
      await waitFor(() => peer.replies.some((r) => r.status >= 200), 5000, 'the answer to OPTIONS');
      expect(peer.replies.map((r) => r.status)).toEqual([200]);
    } finally {
      await peer.close();
    }
    expect(engine().activeCalls).toBe(0);
    // The only 5xx any fixture calls for are 501 (unknown method) and 505 (SIP/7.0): never a 500.
    expect(everything.filter((r) => r.status >= 500 && r.status !== 501 && r.status !== 505).map((r) => r.raw.toString('utf8'))).toEqual([]);
    // pino level 50 is "error": the stack must never have thrown or failed on any of it.
    const errors = t.logs.records().filter((r) => Number(r['level']) >= 50);
    expect(errors).toEqual([]);
  });

  it('every transaction and dialog ends within its timers: nothing leaks', async () => {
    // The last non-INVITE transaction (the OPTIONS just above) ends by Timer J, 64*T1 after its
    // 200 (§17.2.2); INVITE ones by Timer I, T4 after our ACK (§17.2.1). A leak stays past both.
    const timerJ = 64 * DEFAULT_TIMERS.T1;
    await waitFor(() => {
      const stats = engine().sipStats;
      return stats.serverTransactions === 0 && stats.clientTransactions === 0 && stats.dialogs === 0;
    }, timerJ + 8000, 'sipStats to drain to 0');
    expect(engine().sipStats).toEqual({ serverTransactions: 0, clientTransactions: 0, dialogs: 0 });
    expect(engine().activeCalls).toBe(0);
    expect(engine().rtpPortsInUse).toBe(0);
    expect(t.logs.records().filter((r) => Number(r['level']) >= 50)).toEqual([]);
  }, 64 * DEFAULT_TIMERS.T1 + 15_000);
});
