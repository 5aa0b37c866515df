/**
 * RFC 4475 ("Session Initiation Protocol (SIP) Torture Test Messages") against the parser
 * (message.ts) and the UAS request checks (request-checks.ts).
 *
 * The fixtures are in test/support/rfc4475-fixtures.ts (shared with test/e2e/torture.test.ts,
 * which sends the same messages to a whole server): each one re-creates the construct a test of
 * the RFC is about (the folding, the escapes, the broken Content-Length...) in its own message
 * text, and is named after that test. Valid messages must parse and read back the fields the
 * construct is about; invalid ones must throw SipParseError (status 400, or the RFC's code) or,
 * where the RFC says the flaw only matters to whoever uses that field, parse — and then the test
 * says what the UAS does with the message.
 */
import { describe, expect, it } from 'vitest';
import {
  checkRequest,
  createResponse,
  decodePercent,
  DEFAULT_ALLOWED_METHODS,
  parseMessage,
  parseNameAddr,
  parseUri,
  SipParseError,
  SipRequest,
  SipResponse,
  type RequestPolicy,
} from '../../../src/telephony/embedded/sip/index.js';
import {
  badaspec, badbranch, baddate, baddn, badinv01, badvers, bcast, bext01, bigcode, clerr, cparamRegister, dblreq,
  esc01, esc02, escnull, escruri, insuf, INTMETH, intmeth, inv2543, INV2543_BODY, invut, INVUT_BODY, longreq,
  LONGREQ, ltgtruri, lwsdisp, lwsruri, lwsstart, mcl01, mismatch01, mismatch02, mpart01, mpart01Body, multi01,
  ncl, noreason, novelsc, quotbal, regaut01, regbadct, regescrt, scalar02, scalar02Single, scalarlg, sdp, sdp01,
  semiuri, transports, trws, unkscm, unksm2, unreason, UNREASON_PHRASE, wsinv, zeromf,
} from '../../support/rfc4475-fixtures.js';

function request(data: Buffer): SipRequest {
  const message = parseMessage(data, 'udp');
  expect(message).toBeInstanceOf(SipRequest);
  return message as SipRequest;
}

function response(data: Buffer): SipResponse {
  const message = parseMessage(data, 'udp');
  expect(message).toBeInstanceOf(SipResponse);
  return message as SipResponse;
}

function rejected(data: Buffer): SipParseError {
  try {
    parseMessage(data, 'udp');
  } catch (err) {
    expect(err).toBeInstanceOf(SipParseError);
    // Never an internal error dressed up as a parse error.
    expect((err as SipParseError).cause).toBeUndefined();
    return err as SipParseError;
  }
  throw new Error('expected a SipParseError');
}

/** What the embedded engine's endpoint allows (it is built without option tags). */
const UAS_POLICY: RequestPolicy = { allowedMethods: DEFAULT_ALLOWED_METHODS, supportedExtensions: [] };

// ---- §3.1.1 valid messages ----------------------------------------------------------------------

describe('RFC 4475 §3.1.1: valid messages parse, and their odd fields read back right', () => {
  it('§3.1.1.1 wsinv: folding everywhere, LWS around every separator, compact and odd-case names', () => {
    const body = sdp('192.0.2.7');
    const m = request(wsinv());

    expect(m.method).toBe('INVITE');
    expect(m.uri).toBe('sip:vivekg@chair-dnrc.example.com;unknownparam');
    expect(parseUri(m.uri).params['unknownparam']).toBeNull();
    expect(m.to).toMatchObject({ uri: 'sip:vivekg@chair-dnrc.example.com', tag: '4475wsinv9x' });
    expect(m.from).toMatchObject({ displayName: 'Torture "Tester" \\', uri: 'sip:tester@example.com', tag: 'ws11ab' });
    // Leading zeros in integer fields (RFC 3261 §25.1 1*DIGIT).
    expect(m.maxForwards).toBe(69);
    expect(m.cseq).toEqual({ seq: 44, method: 'INVITE' });
    expect(m.callId).toBe('wsinv.3kq0vd@192.0.2.7');
    // A Via header line and a compact "v" line holding two comma-separated values: three, in order.
    const vias = m.vias;
    expect(vias.map((v) => [v.transport, v.host, v.branch])).toEqual([
      ['UDP', '192.0.2.7', '4475wsinvnocookie'],
      ['TCP', 'spindle.example.com', 'z9hG4bKws2nd'],
      ['UDP', '192.168.255.111', 'z9hG4bKws3rd'],
    ]);
    expect(m.get('subject')).toBe('');
    // Folding is equivalent to one SP (§7.3.1).
    expect(m.get('newfangledheader')).toBe('a new value that keeps going on the next line');
    // An unknown header is one opaque value: not split at its commas, not read as parameters.
    expect(m.getAll('unknownheaderwithunusualvalue')).toEqual([';;,,;;,;']);
    expect(parseNameAddr(m.get('route') ?? '').uri).toBe('sip:services.example.com;lr;unknownwith=value;unknown-no-value');
    const contact = parseNameAddr(m.get('contact') ?? '');
    expect(contact.displayName).toBe('Quoted string ""');
    expect({ ...contact.params }).toEqual({ newparam: 'newvalue', secondparam: null, q: '0.33' });
    expect(m.mediaType).toBe('application/sdp');
    expect(m.body.toString('utf8')).toBe(body);
  });

  it('§3.1.1.2 intmeth: every token character in a method, branch, tag and header name; quoted control characters', () => {
    const { method, user, password } = INTMETH;
    const m = request(intmeth());

    // "%" is no escape in a method: this is not INVITE, nor any method we know (→ 501).
    expect(m.method).toBe(method);
    expect(m.cseq).toEqual({ seq: 7734, method });
    const uri = parseUri(m.uri);
    expect(uri).toMatchObject({ user, password, host: 'example.com' });
    expect(m.topVia.branch).toBe("z9hG4bK-.!%77*_+`'~");
    expect(m.to.displayName).toBe('BEL:\x07 NUL:\x00 DEL:\x7f');
    expect(parseUri(m.to.uri).user).toBe(user);
    expect(m.from.displayName).toBe("tok1~` tok2'+_ tok3*%!.-");
    expect(m.from.tag).toBe("_tag~2'+`*%!-.");
    expect(m.from.params["fromparam''~+*_!.-%"]).toBe('"τεστ ещё"');
    // In a Call-ID, % escapes nothing and quotes and brackets need no partner.
    expect(m.callId).toBe('intmeth.w%ZZ-!.*_+\'@w`~)(><:\\/"][?}{');
    expect(m.maxForwards).toBe(255);
    // The value keeps its leading U+FEFF: trimming removes LWS only.
    expect(m.get("exthEADER-!.%*+_`'~")).toBe('\uFEFFñandú 雷');
    expect(checkRequest(m, UAS_POLICY)).toMatchObject({ status: 501, headers: { Allow: DEFAULT_ALLOWED_METHODS.join(', ') } });
  });

  it('§3.1.1.3 esc01: %HEX escapes in user parts and URI parameters, decoded once and only there', () => {
    const m = request(esc01());

    expect(parseUri(m.uri)).toMatchObject({ user: 'sips:other@example.com', host: 'example.net' });
    expect(parseUri(m.to.uri).user).toBe('bob');
    expect(parseUri(m.from.uri).user).toBe('With Two Spaces');
    expect(m.callId).toBe('esc01.77akq2-0f');
    expect(m.mediaType).toBe('application/sdp');
    const contact = parseUri(parseNameAddr(m.get('contact') ?? '').uri);
    expect(contact.user).toBe('caller');
    // "%6C%72" is the parameter "lr"; the value of "n%61me" decodes to "value%41", never "valueA" (RFC 3986 §2.4).
    expect(contact.params['lr']).toBeNull();
    expect(contact.params['name']).toBe('v%61lue%25%34%31');
    expect(decodePercent(contact.params['name'] ?? '')).toBe('value%41');
  });

  it('§3.1.1.4 escnull: %00 in user parts neither ends nor shortens them', () => {
    const m = request(escnull());

    const aor = parseUri(m.to.uri).user;
    expect(aor).toBe('nul-\u0000-nul');
    expect(aor).toHaveLength(9);
    expect(parseUri(m.from.uri).user).toBe('nul-\u0000-nul');
    // Two distinct contacts.
    expect(m.getAll('contact').map((c) => parseUri(parseNameAddr(c).uri).user)).toEqual(['\u0000', '\u0000\u0000']);
    // We are no registrar: REGISTER is a method we know and do not take (§8.2.1 → 405).
    expect(checkRequest(m, UAS_POLICY)?.status).toBe(405);
  });

  it('§3.1.1.5 esc02: % is no escape in a method, a display name, a branch or a header name', () => {
    const m = request(esc02());

    expect(m.method).toBe('RE%47IST%45R');
    expect(m.to.displayName).toBe('%Z%45');
    expect(m.from.displayName).toBe('%Z%45');
    expect(m.topVia.branch).toBe('z9hG4bKesc02%fz77');
    // Two Contact values; "C%6Fntact" is an extension header of its own.
    expect(m.getAll('contact')).toEqual(['<sip:alias1@host1.example.com>', '<sip:alias3@host3.example.com>']);
    expect(m.get('C%6Fntact')).toBe('<sip:alias2@host2.example.com>');
    expect(checkRequest(m, UAS_POLICY)?.status).toBe(501);
  });

  it('§3.1.1.6 lwsdisp: no LWS between a token display name and "<"', () => {
    const m = request(lwsdisp());
    expect(m.from).toMatchObject({ displayName: 'caller', uri: 'sip:caller@example.com', tag: 'lw6' });
    expect(checkRequest(m, UAS_POLICY)).toBeUndefined();
  });

  it('§3.1.1.7 longreq: very long values, and 34 Via values under 17 spellings of the name', () => {
    const { display, tag, callId, branch } = LONGREQ;
    const m = request(longreq());

    expect(m.to.displayName).toBe(display);
    expect(parseUri(m.to.uri)).toMatchObject({ port: 6000, params: { [`longparam${'name'.repeat(25)}`]: 'shortvalue' } });
    expect(m.from.tag).toBe(tag);
    expect(m.from.params[`unknownvalueless${'paramname'.repeat(10)}`]).toBeNull();
    expect(m.callId).toBe(callId);
    expect(m.vias).toHaveLength(34);
    expect(m.vias.slice(0, 33).map((v) => v.host)).toEqual(Array.from({ length: 33 }, (_, i) => `sip${33 - i}.example.com`));
    expect(m.vias[33]).toMatchObject({ host: 'host.example.com', received: '192.0.2.5', branch });
    expect(m.get(`unknown-${'long'.repeat(20)}-name`)).toMatch(/-parameter-value$/);
  });

  it('§3.1.1.8 dblreq: what follows the Content-Length body in a datagram is noise, not a second request', () => {
    const m = request(dblreq());
    expect(m.method).toBe('REGISTER');
    expect(m.callId).toBe('dblreq.first.77kq2');
    // §18.3: "additional bytes in the transport packet beyond the end of the body MUST be discarded".
    expect(m.body).toHaveLength(0);
  });

  it('§3.1.1.9 semiuri: a ";" and an escaped "@" inside the user part', () => {
    const m = request(semiuri());
    const uri = parseUri(m.uri);
    expect(uri.user).toBe('user;par=u@example.net');
    expect(uri.host).toBe('example.com');
    expect(Object.keys(uri.params)).toEqual([]);
    expect(m.getAll('accept')).toEqual([
      'application/sdp', 'application/pkcs7-mime', 'multipart/mixed', 'multipart/signed', 'message/sip', 'message/sipfrag',
    ]);
  });

  it('§3.1.1.10 transports: Via values over UDP, SCTP, TLS, an unknown transport and TCP', () => {
    const m = request(transports());
    expect(m.vias.map((v) => v.transport)).toEqual(['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
    expect(m.callId).toBe('transports.2kd9vq0');
  });

  it('§3.1.1.11 mpart01: a multipart body with binary octets (NUL, CR LF CR LF, non-UTF-8) framed by Content-Length', () => {
    const body = mpart01Body();
    const m = request(mpart01());
    expect(m.method).toBe('MESSAGE');
    expect(m.topVia).toMatchObject({ host: '127.0.0.1', port: 5070, rport: null });
    expect(m.mediaType).toBe('multipart/mixed');
    expect(Buffer.compare(m.body, body)).toBe(0);
    expect(checkRequest(m, UAS_POLICY)?.status).toBe(405);
  });

  it('§3.1.1.12 unreason: a reason phrase of reserved, unreserved and UTF-8 characters', () => {
    const reason = UNREASON_PHRASE;
    const m = response(unreason());
    expect(m.status).toBe(200);
    expect(m.reason).toBe(reason);
  });

  it('§3.1.1.13 noreason: an empty reason phrase after the required SP', () => {
    const m = response(noreason());
    expect(m.status).toBe(100);
    expect(m.reason).toBe('');
  });
});

// ---- §3.1.2 invalid messages --------------------------------------------------------------------

describe('RFC 4475 §3.1.2: invalid messages are refused (or, where only later use is hurt, documented)', () => {
  it('§3.1.2.1 badinv01: empty parameters and list elements in Via and Contact → 400', () => {
    const err = rejected(badinv01());
    expect(err.status).toBe(400);
    expect(err.reason).toMatch(/Via/);
    // The headers were framed, so the endpoint can still answer 400 (user-agent.ts answerStatelessly).
    expect(err.partial).toBeInstanceOf(SipRequest);
  });

  it('§3.1.2.2 clerr: a Content-Length larger than the datagram\'s body → 400', () => {
    const err = rejected(clerr());
    // §18.3: "If the transport packet ends before the end of the message body, this is considered an error."
    expect(err).toMatchObject({ status: 400, reason: 'body shorter than Content-Length' });
    expect(err.partial).toBeInstanceOf(SipRequest);
  });

  it('§3.1.2.3 ncl: a negative (or non-numeric) Content-Length → 400, never used as a length', () => {
    for (const length of ['-999', 'five']) {
      const err = rejected(ncl({ length }));
      expect(err.status).toBe(400);
      expect(err.reason).toMatch(/Content-Length/);
      expect(err.partial).toBeInstanceOf(SipRequest);
    }
  });

  it('§3.1.2.4 scalar02: CSeq, Max-Forwards, Expires and an expires parameter out of range → 400 for the CSeq', () => {
    const err = rejected(scalar02());
    // "An element receiving this request should respond with a 400 Bad Request due to the CSeq error."
    expect(err.status).toBe(400);
    expect(err.reason).toMatch(/CSeq/);
    expect(err.partial).toBeInstanceOf(SipRequest);
    // Each of the other fields alone is refused too (§8.1.1.5 CSeq < 2**31, §20.22 Max-Forwards 0-255, §20.19 Expires < 2**32).
    const base = scalar02Single;
    expect(() => parseMessage(base('1', '70', '3600'))).not.toThrow();
    expect(rejected(base('1', '300', '3600')).reason).toMatch(/Max-Forwards/);
    expect(rejected(base('1', '70', '4294967296')).reason).toMatch(/Expires/);
  });

  it('§3.1.2.5 scalarlg: a response with an overlarge CSeq is refused (and, being a response, dropped)', () => {
    const err = rejected(scalarlg());
    expect(err.reason).toMatch(/CSeq/);
    // The endpoint answers only requests' partials; a response's is never answered.
    expect(err.partial).toBeInstanceOf(SipResponse);
  });

  it.each([
    ['"Mr. J. User <sip:j.user@example.com>'],
    // The RFC's warning for a parser that infers the missing quote: which "<" starts the URI?
    ['"Mr J. User <sip:j.user@example.com> <sip:realj@example.net>'],
  ])('§3.1.2.6 quotbal: an unterminated quoted display name (To: %s) → 400', (to) => {
    const err = rejected(quotbal({ to }));
    expect(err.status).toBe(400);
    // The '<' is inside the open quote, so no name-addr is found at all.
    expect(err.reason).toBe('bad address: unbalanced quotes');
    expect(err.partial).toBeInstanceOf(SipRequest);
    // The 400 copies that To as it came: a ";tag=" appended would land inside the open quote.
    expect(createResponse(err.partial as SipRequest, 400, 'Bad Request').get('to')).toBe(to);
  });

  it.each([
    ['§3.1.2.7 ltgtruri: a Request-URI in "<>"', ltgtruri, 'INVITE', 'bad Request-URI'],
    ['§3.1.2.8 lwsruri: LWS inside the Request-URI', lwsruri, 'INVITE', 'bad request line'],
    ['§3.1.2.9 lwsstart: several SP between request-line elements', lwsstart, 'INVITE', 'bad request line'],
    ['§3.1.2.10 trws: SP after the SIP-Version', trws, 'OPTIONS', 'bad request line'],
  ])('%s → 400, answerable from its headers', (_name, build, method, reason) => {
    const err = rejected(build({ cseqMethod: method }));
    // ltgtruri, lwsruri: "should respond with a 400"; lwsstart, trws: "acceptable to reject".
    expect(err).toMatchObject({ status: 400, reason });
    expect(err.partial).toBeInstanceOf(SipRequest);
    expect((err.partial as SipRequest).method).toBe(method);
    // The stateless 400 is built from the headers, none of which is broken (§8.2.6.2).
    const answer = createResponse(err.partial as SipRequest, 400, 'Bad Request');
    expect(answer.headers.map((h) => h.name)).toEqual(['Via', 'From', 'To', 'Call-ID', 'CSeq']);
    expect(answer.cseq).toEqual({ seq: 1, method });
  });

  it.each([
    ['its CSeq names another method', (data: string) => data.replace('CSeq: 1 INVITE', 'CSeq: 1 BYE')],
    ['it has no From', (data: string) => data.replace(/^From: .*\r\n/m, '')],
    ['its Via cannot be read', (data: string) => data.replace(/^Via: .*\r\n/m, 'Via: SIP/2.0/UDP ;;\r\n')],
    ['its To is a broken name-addr', (data: string) => data.replace(/^To: .*\r\n/m, 'To: "open <sip:x@y>\r\n')],
  ])('a broken request line is dropped (no partial) when also %s', (_name, spoil) => {
    // Nothing but the request line may be wrong for the request to be answered: otherwise the
    // datagram is as likely noise as SIP, and the server sends nothing back.
    const err = rejected(Buffer.from(spoil(ltgtruri().toString('utf8'))));
    expect(err.partial).toBeUndefined();
  });

  it('§3.1.2.11 escruri: escaped headers in the Request-URI parse; the UAS never uses them', () => {
    const m = request(escruri());
    // The SIP-URI grammar allows headers (§25.1); §19.1.1 bars them from a Request-URI. The RFC
    // lets an element ignore them: the router reads only the user and host (→ 404 for "user").
    const uri = parseUri(m.uri);
    expect({ ...uri.headers }).toEqual({ Route: '%3Csip:example.com%3E' });
    expect(uri).toMatchObject({ user: 'user', host: 'example.com' });
    expect(m.has('route')).toBe(false);
    expect(checkRequest(m, UAS_POLICY)).toBeUndefined();
  });

  it('§3.1.2.12 baddate: a non-GMT Date parses; nothing here reads Date, so it is ignored', () => {
    const m = request(baddate());
    // §20.17 allows only "GMT"; the RFC: reject only "if the contents of the Date header field were actually important".
    expect(m.get('date')).toBe('Sat, 13 Mar 2010 23:59:59 PST');
    expect(checkRequest(m, UAS_POLICY)).toBeUndefined();
  });

  it('§3.1.2.13 regbadct: an unbracketed Contact URI with a header parses; only its user would see it (REGISTER → 405)', () => {
    const m = request(regbadct());
    // §20.10: a URI with "?" MUST be in <>; Contact is read by whoever uses it (a registrar, a dialog).
    expect(() => parseNameAddr(m.get('contact') ?? '')).toThrow(SipParseError);
    expect(checkRequest(m, UAS_POLICY)?.status).toBe(405);
  });

  it('§3.1.2.14 badaspec: spaces around the addr-spec inside "<>" → 400', () => {
    const err = rejected(badaspec());
    expect(err.status).toBe(400);
    expect(err.reason).toMatch(/address/);
    expect(err.partial).toBeInstanceOf(SipRequest);
  });

  it('§3.1.2.15 baddn: unquoted display names with non-token characters → 400', () => {
    const err = rejected(baddn());
    expect(err.status).toBe(400);
    expect(err.reason).toMatch(/display name/);
    expect(err.partial).toBeInstanceOf(SipRequest);
  });

  it('§3.1.2.16 badvers: SIP/7.0 → 505, with the headers kept to answer it', () => {
    const err = rejected(badvers());
    // RFC 3261 §21.5.6: 505 (Version Not Supported); the endpoint answers it from the partial.
    expect(err.status).toBe(505);
    expect(err.partial).toBeInstanceOf(SipRequest);
    expect(err.partial?.get('call-id')).toBe('badvers.16180@c.example.com');
  });

  it('§3.1.2.17 mismatch01: request method and CSeq method disagree → 400', () => {
    const err = rejected(mismatch01());
    expect(err).toMatchObject({ status: 400, reason: 'CSeq method mismatch' });
    expect(err.partial).toBeInstanceOf(SipRequest);
  });

  it('§3.1.2.18 mismatch02: an unknown method with a CSeq for another → 400 (the RFC prefers 501, allows 400)', () => {
    const err = rejected(mismatch02());
    expect(err).toMatchObject({ status: 400, reason: 'CSeq method mismatch' });
  });

  it('§3.1.2.19 bigcode: a status code over 699 (and over 2**32) is refused, and no partial is kept', () => {
    for (const start of ['SIP/2.0 4294967301 better not break the receiver', 'SIP/2.0 700 Seven Hundred']) {
      const err = rejected(bigcode({ start }));
      expect(err.partial).toBeUndefined();
    }
  });
});

// ---- §3.2 transaction layer, §3.3 application layer, §3.4 backward compatibility ---------------

describe('RFC 4475 §3.2 – §3.4: well-framed messages whose meaning the UAS must handle', () => {
  it('§3.2.1 badbranch: a branch that is only the magic cookie parses', () => {
    const m = request(badbranch());
    expect(m.topVia.branch).toBe('z9hG4bK');
    expect(checkRequest(m, UAS_POLICY)).toBeUndefined();
  });

  it('§3.3.1 insuf: no From, To, Call-ID or Max-Forwards → 400, answerable from Via and CSeq alone', () => {
    const err = rejected(insuf());
    expect(err.status).toBe(400);
    expect(err.reason).toBe('missing From');
    expect(err.partial?.get('cseq')).toBe('193942 INVITE');
    // What the endpoint answers with: Via and CSeq copied, nothing made up for the rest (§8.2.6.2).
    const answer = createResponse(err.partial as SipRequest, 400, 'Bad Request');
    expect(answer.headers.map((h) => h.name)).toEqual(['Via', 'CSeq']);
  });

  it('§3.3.2 unkscm / §3.3.3 novelsc: Request-URIs of schemes we do not serve parse → 416', () => {
    for (const [uri, build] of [['nobodyKnowsThisScheme:totallyopaquecontent', unkscm], ['soap.beep://192.0.2.103:3002', novelsc]] as const) {
      // The same OPTIONS for both: its To is a SIP URI, which must not be taken for the target (RFC 4475 §3.3.2).
      const m = request(build());
      expect(m.uri).toBe(uri);
      // §8.2.2.1: "it SHOULD reject the request with a 416 (Unsupported URI Scheme) response".
      expect(checkRequest(m, UAS_POLICY)?.status).toBe(416);
    }
  });

  it('§3.3.4 unksm2: non-SIP URIs in To, From and Contact parse (REGISTER → 405 here)', () => {
    const m = request(unksm2());
    expect(m.to.uri).toBe('isbn:2983792873');
    expect(m.from).toMatchObject({ uri: 'http://www.example.com', tag: 'us334' });
    expect(parseNameAddr(m.get('contact') ?? '').uri).toBe('name:John_Smith');
    expect(checkRequest(m, UAS_POLICY)?.status).toBe(405);
  });

  it('§3.3.5 bext01: unknown Require tags → 420 listing them; Proxy-Require is not a UAS\'s business', () => {
    const m = request(bext01());
    expect(checkRequest(m, UAS_POLICY)).toEqual({
      status: 420,
      reason: 'Bad Extension',
      headers: { Unsupported: 'nothingSupportsThis, nothingSupportsThisEither' },
    });
  });

  it('§3.3.6 invut: an INVITE body of an unknown type parses → 415 with Accept', () => {
    const body = INVUT_BODY;
    const m = request(invut());
    expect(m.body.toString('utf8')).toBe(body);
    expect(checkRequest(m, UAS_POLICY)).toMatchObject({ status: 415, headers: { Accept: 'application/sdp' } });
  });

  it('§3.3.7 regaut01: an Authorization of an unknown scheme is kept as it is (REGISTER → 405)', () => {
    const m = request(regaut01());
    // Not a list header: its commas stay.
    expect(m.getAll('authorization')).toEqual(['NoOneKnowsThisScheme opaque-data=here, and=more']);
    expect(checkRequest(m, UAS_POLICY)?.status).toBe(405);
  });

  it('§3.3.8 multi01: several Call-ID, To, From, Max-Forwards and CSeq values → 400', () => {
    const err = rejected(multi01());
    expect(err.status).toBe(400);
    expect(err.reason).toMatch(/^multiple /);
    expect(err.partial).toBeInstanceOf(SipRequest);
  });

  it('§3.3.9 mcl01: two different Content-Length values → 400', () => {
    const err = rejected(mcl01());
    expect(err).toMatchObject({ status: 400, reason: 'multiple Content-Length' });
  });

  it('§3.3.10 bcast: a 200 whose second Via is the broadcast address parses (the endpoint drops it: no transaction)', () => {
    const m = response(bcast());
    expect(m.vias.map((v) => v.host)).toEqual(['192.0.2.198', '255.255.255.255']);
  });

  it('§3.3.11 zeromf: Max-Forwards 0 parses, and a UAS goes on as if it were positive', () => {
    const m = request(zeromf());
    expect(m.maxForwards).toBe(0);
    // RFC 4475: "An endpoint should process the request as if the Max-Forwards field value were
    // still positive"; 483 is for proxies (RFC 3261 §16.3).
    expect(checkRequest(m, UAS_POLICY)).toBeUndefined();
  });

  it('§3.3.12 cparam01 / §3.3.13 cparam02: ";unknownparam" is a header parameter outside "<>", a URI parameter inside', () => {
    const register = (contact: string): SipRequest => request(cparamRegister(`Contact: ${contact}`));
    const bare = parseNameAddr(register('sip:+19725552222@gw1.example.net;unknownparam').get('contact') ?? '');
    expect(bare.uri).toBe('sip:+19725552222@gw1.example.net');
    expect({ ...bare.params }).toEqual({ unknownparam: null });
    const bracketed = parseNameAddr(register('<sip:+19725552222@gw1.example.net;unknownparam>').get('contact') ?? '');
    expect({ ...bracketed.params }).toEqual({});
    expect(parseUri(bracketed.uri).params['unknownparam']).toBeNull();
    expect(checkRequest(register('<sip:x@example.net>'), UAS_POLICY)?.status).toBe(405);
  });

  it('§3.3.14 regescrt: a bracketed Contact URI with an escaped header parses (REGISTER → 405)', () => {
    const m = request(regescrt());
    const contact = parseUri(parseNameAddr(m.get('contact') ?? '').uri);
    expect({ ...contact.headers }).toEqual({ Route: '%3Csip:sip.example.com%3E' });
    expect(checkRequest(m, UAS_POLICY)?.status).toBe(405);
  });

  it('§3.3.15 sdp01: an Accept without application/sdp passes the request checks (the engine then routes: 404 for "user")', () => {
    const m = request(sdp01());
    expect(m.getAll('accept')).toEqual(['text/nobodyKnowsThis']);
    expect(checkRequest(m, UAS_POLICY)).toBeUndefined();
  });

  it('§3.4.1 inv2543: RFC 2543 syntax (no branch, no From tag, no Max-Forwards, no Content-Length) parses', () => {
    const body = INV2543_BODY;
    const m = request(inv2543());
    expect(m.topVia.branch).toBeUndefined();
    expect(m.from.tag).toBeUndefined();
    expect(m.maxForwards).toBe(70);
    // §18.3: without Content-Length over UDP the body runs to the end of the datagram.
    expect(m.body.toString('utf8')).toBe(body);
    // RFC 3261 §8.1.1.8 makes Contact mandatory in a dialog-creating request: it is the remote target (§12.1.1).
    expect(checkRequest(m, UAS_POLICY)).toEqual({ status: 400, reason: 'Missing Contact' });
  });
});
