/**
 * RFC 4475 ("Session Initiation Protocol (SIP) Torture Test Messages") fixtures, shared by the
 * parser test (test/unit/sip/rfc4475.test.ts) and the whole-server test (test/e2e/torture.test.ts).
 *
 * Each builder re-creates, in message text of its own, the construct one test of the RFC is about
 * (the folding, the escapes, the broken Content-Length...) and is named after that test. Its
 * defaults give the message the unit test parses; the e2e test passes what it sends differently:
 * above all its socket's address as the top Via sent-by (`sentBy`), so that a response comes back
 * to it (RFC 3261 §18.2.2), and UDP where the unit message's top Via names another transport.
 *
 * These are torture tests: every space, escape, fold and odd byte below is on purpose.
 */

// ---- message text --------------------------------------------------------------------------------

/**
 * A message from its start line and header lines, CRLF-terminated, then the body. `{len}` in a
 * line becomes the body's length in bytes, so a Content-Length is right unless a test writes a
 * wrong one on purpose.
 */
export function sip(lines: readonly string[], body: string | Buffer = ''): Buffer {
  const content = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const head = lines.join('\r\n').replaceAll('{len}', String(content.length));
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'utf8'), content]);
}

/**
 * An SDP offer with one audio (PCMU, PCMA) and one video stream (RFC 4566), as most RFC 4475
 * INVITEs carry; the embedded engine can answer it, so an INVITE gets past media.
 */
export function sdp(host: string): string {
  return [
    'v=0',
    `o=torture 4475 1 IN IP4 ${host}`,
    's=-',
    `c=IN IP4 ${host}`,
    't=0 0',
    'm=audio 49170 RTP/AVP 0 8',
    'm=video 51372 RTP/AVP 31',
    'a=rtpmap:31 H261/90000',
    '',
  ].join('\r\n');
}

// ---- what a use may change -----------------------------------------------------------------------

/** What every fixture lets a use change: the top Via's sent-by (host[:port]). */
export interface TopVia {
  readonly sentBy?: string;
}

/** For fixtures whose top Via, in the unit test, is over a transport other than UDP. */
export interface TopViaOver extends TopVia {
  readonly transport?: string;
}

// ---- §3.1.1 valid messages -------------------------------------------------------------------------

/**
 * RFC 4475 §3.1.1.1 wsinv: folding everywhere, LWS around every separator, compact and odd-case
 * names. `toParam` is the To header parameter (LWS around its "="): a tag by default.
 */
export function wsinv({
  sentBy = '192.0.2.7',
  toParam = 'tag    = 4475wsinv9x',
  callId = 'wsinv.3kq0vd@192.0.2.7',
}: TopVia & { readonly toParam?: string; readonly callId?: string } = {}): Buffer {
  return sip([
    'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0',
    'TO :',
    ` sip:vivekg@chair-dnrc.example.com ;   ${toParam}`,
    // A quoted display name ending in an escaped quote and an escaped backslash.
    'from   : "Torture \\"Tester\\" \\\\"      <sip:tester@example.com>',
    '  ;',
    '  tag = ws11ab',
    'MaX-fOrWaRdS: 0069',
    `Call-ID: ${callId}`,
    'Content-Length   : {len}',
    'cseq: 0044',
    '  INVITE',
    'Via  : SIP  /   2.0',
    ' /UDP',
    `    ${sentBy};branch=4475wsinvnocookie`,
    's :',
    'NewFangledHeader:   a new value',
    ' that keeps going on the next line',
    'UnknownHeaderWithUnusualValue: ;;,,;;,;',
    'Content-Type: application/sdp',
    'Route:',
    ' <sip:services.example.com;lr;unknownwith=value;unknown-no-value>',
    'v:  SIP  / 2.0  / TCP     spindle.example.com   ;',
    '  branch  =   z9hG4bKws2nd  ,',
    ' SIP  /    2.0   / UDP  192.168.255.111   ; branch=',
    ' z9hG4bKws3rd',
    'm:"Quoted string \\"\\"" <sip:tester@example.com> ; newparam =',
    '      newvalue ;',
    '  secondparam ; q = 0.33',
  ], sdp('192.0.2.7'));
}

/** The method, Request-URI user and password of intmeth: every token character. */
export const INTMETH = {
  method: "!weird-Method9876543210_*+`.%really'~",
  user: "2_strange.URI~(for-sure!)&isn't+this$/odd?,/;;*",
  password: "&pass+has=2,odd!*pa$$wo~rd_also.(isn't-it)",
} as const;

/**
 * RFC 4475 §3.1.1.2 intmeth: every token character in a method, branch, tag and header name;
 * quoted control characters.
 */
export function intmeth({ sentBy = 'host1.example.com' }: TopVia = {}): Buffer {
  const { method, user, password } = INTMETH;
  return sip([
    `${method} sip:${user}:${password}@example.com SIP/2.0`,
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bK-.!%77*_+\`'~`,
    // quoted-pair may escape BEL, NUL and DEL (§25.1: "\" (%x00-09 / %x0B-0C / %x0E-7F)).
    `To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:${user}@example.com>`,
    "From: tok1~` tok2'+_ tok3*%!.- <sip:plain@example.com>;fromParam''~+*_!.-%=\"τεστ ещё\";tag=_tag~2'+`*%!-.",
    'Call-ID: intmeth.w%ZZ-!.*_+\'@w`~)(><:\\/"][?}{',
    `CSeq: 7734 ${method}`,
    'Max-Forwards: 255',
    "extHeader-!.%*+_`'~:\uFEFFñandú 雷",
    'Content-Length: 0',
  ]);
}

/** RFC 4475 §3.1.1.3 esc01: %HEX escapes in user parts and URI parameters. */
export function esc01({ sentBy = 'host5.example.net' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:sips%3Aother%40example.com@example.net SIP/2.0',
    'To: sip:%62o%62@example.com',
    'From: <sip:With%20Two%20Spaces@example.net>;tag=e1x',
    'Max-Forwards: 68',
    'i: esc01.77akq2-0f',
    'CSeq: 5150 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKesc01`,
    'C: application/sdp',
    'Contact:',
    '  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>',
    'Content-Length: {len}',
  ], sdp('192.0.2.1'));
}

/** RFC 4475 §3.1.1.4 escnull: %00 in the user parts of a REGISTER. */
export function escnull({ sentBy = 'host5.example.com' }: TopVia = {}): Buffer {
  return sip([
    'REGISTER sip:example.com SIP/2.0',
    'To: sip:nul-%00-nul@example.com',
    'From: sip:nul-%00-nul@example.com;tag=0x00x',
    'Max-Forwards: 70',
    'Call-ID: escnull.5nkq29fa0vv',
    'CSeq: 91 REGISTER',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKescnull`,
    'Contact: <sip:%00@host5.example.com>',
    'Contact: <sip:%00%00@host5.example.com>',
    'L:0',
  ]);
}

/** RFC 4475 §3.1.1.5 esc02: % is no escape in a method, a display name, a branch or a header name. */
export function esc02({ sentBy = 'host.example.com', transport = 'TCP' }: TopViaOver = {}): Buffer {
  return sip([
    'RE%47IST%45R sip:registrar.example.com SIP/2.0',
    'To: "%Z%45" <sip:resource@example.com>',
    'From: "%Z%45" <sip:resource@example.com>;tag=esc02f',
    'Call-ID: esc02.0vn2kq8',
    `Via: SIP/2.0/${transport} ${sentBy};branch=z9hG4bKesc02%fz77`,
    'CSeq: 17 RE%47IST%45R',
    'Max-Forwards: 70',
    'Contact: <sip:alias1@host1.example.com>',
    'C%6Fntact: <sip:alias2@host2.example.com>',
    'Contact: <sip:alias3@host3.example.com>',
    'l: 0',
  ]);
}

/** RFC 4475 §3.1.1.6 lwsdisp: no LWS between a token display name and "<". */
export function lwsdisp({ sentBy = 'funky.example.com' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:user@example.com SIP/2.0',
    'To: sip:user@example.com',
    'From: caller<sip:caller@example.com>;tag=lw6',
    'Max-Forwards: 70',
    'Call-ID: lwsdisp.8c1e@funky.example.com',
    'CSeq: 61 OPTIONS',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKlwsdisp`,
    'l: 0',
  ]);
}

/** The very long values of longreq. */
export const LONGREQ = {
  display: `I have a user name of ${'extreme'.repeat(10)} proportion`,
  toUri: `sip:user@example.com:6000;unknownparam1=very${'long'.repeat(20)}value;longparam${'name'.repeat(25)}=shortvalue;very${'long'.repeat(25)}ParameterNameWithNoValue`,
  tag: `${'1298'.repeat(40)}424`,
  callId: `longreq.one${'really'.repeat(20)}longcallid`,
  branch: `very${'long'.repeat(50)}branchvalue`,
} as const;

/**
 * RFC 4475 §3.1.1.7 longreq: very long values, and 34 Via values under 17 spellings of the name:
 * the top one (by default "Via: SIP/2.0/TCP sip33.example.com"), 32 more from sip32 down to sip1,
 * and a last one with a very long branch.
 */
export function longreq({ sentBy = 'sip33.example.com', transport = 'TCP' }: TopViaOver = {}): Buffer {
  const { display, toUri, tag, callId, branch } = LONGREQ;
  const names = ['v', 'V', 'Via', 'ViA', 'VIa', 'VIA', 'via', 'viA', 'vIa', 'vIA', 'V ', 'v ', 'V  ', 'v  ', 'Via ', 'Via  '];
  const vias = Array.from({ length: 32 }, (_, i) => `${names[i] ?? 'Via'}: SIP/2.0/TCP sip${32 - i}.example.com`);
  return sip([
    'INVITE sip:user@example.com SIP/2.0',
    `To: "${display}"<${toUri}>`,
    `F: sip:${'amazinglylongcallername'.repeat(5)}@example.net;tag=${tag};unknownheaderparam${'name'.repeat(20)}=unknownheaderparam${'value'.repeat(15)};unknownValueless${'paramname'.repeat(10)}`,
    `Call-ID: ${callId}`,
    'CSeq: 3882340 INVITE',
    `Unknown-${'Long'.repeat(20)}-Name: unknown-${'long'.repeat(20)}-value; unknown-${'long'.repeat(20)}-parameter-name = unknown-${'long'.repeat(20)}-parameter-value`,
    `Via: SIP/2.0/${transport} ${sentBy}`,
    ...vias,
    `Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=${branch}`,
    'Max-Forwards: 70',
    `Contact: <sip:${'amazinglylongcallername'.repeat(5)}@host5.example.net>`,
    'Content-Type: application/sdp',
    'l: {len}',
  ], sdp('192.0.2.1'));
}

/**
 * RFC 4475 §3.1.1.8 dblreq: a REGISTER and, after its Content-Length body in the same datagram,
 * an INVITE (with `inviteSentBy` in its Via) that is noise, not a second request.
 */
export function dblreq({ sentBy = '192.0.2.125', inviteSentBy = '192.0.2.15' }: TopVia & { readonly inviteSentBy?: string } = {}): Buffer {
  return Buffer.concat([
    sip([
      'REGISTER sip:example.com SIP/2.0',
      'To: sip:j.user@example.com',
      'From: sip:j.user@example.com;tag=dbl1',
      'Max-Forwards: 8',
      'I: dblreq.first.77kq2',
      'Contact: sip:j.user@host.example.com',
      'CSeq: 8 REGISTER',
      `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKdblreq1`,
      'Content-Length: 0',
    ]),
    sip([
      'INVITE sip:joe@example.com SIP/2.0',
      't: sip:joe@example.com',
      'From: sip:caller@example.net;tag=dbl2',
      'Max-Forwards: 8',
      'Call-ID: dblreq.second@192.0.2.15',
      'CSeq: 8 INVITE',
      `Via: SIP/2.0/UDP ${inviteSentBy};branch=z9hG4bKdblreq2`,
      'Content-Type: application/sdp',
      'Content-Length: {len}',
    ], sdp('192.0.2.15')),
  ]);
}

/** RFC 4475 §3.1.1.9 semiuri: a ";" and an escaped "@" inside the user part. */
export function semiuri({ sentBy = '192.0.2.1' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0',
    'To: sip:j_user@example.com',
    'From: sip:caller@example.org;tag=semi9',
    'Max-Forwards: 3',
    'Call-ID: semiuri.0vk2mq',
    'CSeq: 9 OPTIONS',
    'Accept: application/sdp, application/pkcs7-mime,',
    '        multipart/mixed, multipart/signed,',
    '        message/sip, message/sipfrag',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKsemiuri`,
    'l: 0',
  ]);
}

/** RFC 4475 §3.1.1.10 transports: Via values over UDP, SCTP, TLS, an unknown transport and TCP. */
export function transports({ sentBy = 't1.example.com' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:user@example.com SIP/2.0',
    'To: sip:user@example.com',
    'From: <sip:caller@example.com>;tag=tr10',
    'Max-Forwards: 70',
    'Call-ID:  transports.2kd9vq0',
    'Accept: application/sdp',
    'CSeq: 10 OPTIONS',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKtr1`,
    'Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKtr2',
    'Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bKtr3',
    'Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKtr4',
    'Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bKtr5',
    'l: 0',
  ]);
}

/** The body of mpart01: a multipart body with binary octets (NUL, CR LF CR LF, non-UTF-8). */
export function mpart01Body(): Buffer {
  return Buffer.concat([
    Buffer.from('--4475boundary\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nHello there\r\n'),
    Buffer.from('--4475boundary\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
    Buffer.from([0x30, 0x82, 0x00, 0x00, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a, 0xc3, 0x28, 0x00, 0x7f, 0x80]),
    Buffer.from('\r\n--4475boundary--\r\n'),
  ]);
}

/** RFC 4475 §3.1.1.11 mpart01: a MESSAGE with a binary multipart body framed by Content-Length. */
export function mpart01({ sentBy = '127.0.0.1:5070' }: TopVia = {}): Buffer {
  return sip([
    'MESSAGE sip:kumiko@example.org SIP/2.0',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bK-mpart01-77;rport`,
    'Max-Forwards: 70',
    'Route: <sip:127.0.0.1:5080>',
    `Identity: ${'r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHu'.repeat(3)}=`,
    'Contact: <sip:fluffy@127.0.0.1:5070>',
    'To: <sip:kumiko@example.org>',
    'From: <sip:fluffy@example.com>;tag=mp11',
    'Call-ID: mpart01.4kq0v@Zmx1ZmZ5',
    'CSeq: 1 MESSAGE',
    'Content-Transfer-Encoding: binary',
    'Content-Type: multipart/mixed;boundary=4475boundary',
    'Date: Sat, 13 Mar 2010 12:00:00 GMT',
    'User-Agent: torture/4475 (curses)',
    'Content-Length: {len}',
  ], mpart01Body());
}

/** The reason phrase of unreason: reserved, unreserved and UTF-8 characters. */
export const UNREASON_PHRASE = '= 2**3 * 5**2 — и это ровно двести';

/** RFC 4475 §3.1.1.12 unreason: a 200 whose reason phrase is UNREASON_PHRASE. */
export function unreason({ sentBy = '192.0.2.198' }: TopVia = {}): Buffer {
  return sip([
    `SIP/2.0 200 ${UNREASON_PHRASE}`,
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKunreason`,
    'Call-ID: unreason.9vkq2mz',
    'CSeq: 35 INVITE',
    'From: sip:user@example.com;tag=ur1',
    'To: sip:user@example.edu;tag=ur2',
    'Content-Length: {len}',
    'Content-Type: application/sdp',
    'Contact: <sip:user@host198.example.com>',
  ], sdp('192.0.2.198'));
}

/** RFC 4475 §3.1.1.13 noreason: an empty reason phrase after the required SP. */
export function noreason({ sentBy = '192.0.2.105' }: TopVia = {}): Buffer {
  return sip([
    'SIP/2.0 100 ',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKnoreason`,
    'Call-ID: noreason.0vk29',
    'CSeq: 35 INVITE',
    'From: <sip:user@example.com>;tag=nr1',
    'To: <sip:user@example.edu>;tag=nr2',
    'Content-Length: 0',
    'Contact: <sip:user@host105.example.com>',
  ]);
}

// ---- §3.1.2 invalid messages -----------------------------------------------------------------------

/** RFC 4475 §3.1.2.1 badinv01: empty parameters and list elements in Via and Contact. */
export function badinv01({ sentBy = '192.0.2.15' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:user@example.com SIP/2.0',
    'To: sip:j.user@example.com',
    'From: sip:caller@example.net;tag=bi01',
    'Max-Forwards: 7',
    'Call-ID: badinv01.29vkq0',
    'CSeq: 8 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};;,;,,`,
    'Contact: "Joe" <sip:joe@example.org>;;;;',
    'Content-Length: {len}',
    'Content-Type: application/sdp',
  ], sdp('192.0.2.15'));
}

/** RFC 4475 §3.1.2.2 clerr: a Content-Length larger than the datagram's body. */
export function clerr({ sentBy = 'host5.example.com' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:user@example.com SIP/2.0',
    'Max-Forwards: 80',
    'To: sip:j.user@example.com',
    'From: sip:caller@example.net;tag=cl02',
    'Contact: <sip:caller@hungry.example.net>',
    'Call-ID: clerr.8vq2k',
    'CSeq: 8 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKclerr`,
    'Content-Type: application/sdp',
    'Content-Length: 9999',
  ], sdp('192.0.2.155'));
}

/** RFC 4475 §3.1.2.3 ncl: a negative Content-Length (or whatever `length` says). */
export function ncl({ sentBy = '192.0.2.53', length = '-999' }: TopVia & { readonly length?: string } = {}): Buffer {
  return sip([
    'INVITE sip:user@example.com SIP/2.0',
    'Max-Forwards: 254',
    'To: sip:j.user@example.com',
    'From: sip:caller@example.net;tag=ncl3',
    'Call-ID: ncl.2kv9q0',
    'CSeq: 0 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKncl`,
    'Contact: <sip:caller@host53.example.net>',
    'Content-Type: application/sdp',
    `Content-Length: ${length}`,
  ], sdp('192.0.2.53'));
}

/** RFC 4475 §3.1.2.4 scalar02: CSeq, Max-Forwards, Expires and an expires parameter out of range. */
export function scalar02({ sentBy = 'host129.example.com', transport = 'TCP' }: TopViaOver = {}): Buffer {
  return sip([
    'REGISTER sip:example.com SIP/2.0',
    `Via: SIP/2.0/${transport} ${sentBy};branch=z9hG4bKscalar02`,
    'To: <sip:user@example.com>',
    'From: <sip:user@example.com>;tag=sc02',
    'CSeq: 36893488147419103232 REGISTER',
    'Call-ID: scalar02.0vkq29',
    'Max-Forwards: 300',
    `Expires: 1${'0'.repeat(60)}`,
    'Contact: <sip:user@host129.example.com>',
    '  ;expires=280297596632815',
    'Content-Length: 0',
  ]);
}

/** After RFC 4475 §3.1.2.4 scalar02: an OPTIONS to try one out-of-range field at a time. */
export function scalar02Single(cseq: string, maxForwards: string, expires: string): Buffer {
  return sip([
    'OPTIONS sip:example.com SIP/2.0',
    'Via: SIP/2.0/UDP host129.example.com;branch=z9hG4bKscalar02b',
    'To: <sip:user@example.com>',
    'From: <sip:user@example.com>;tag=sc02b',
    `CSeq: ${cseq} OPTIONS`,
    'Call-ID: scalar02b.0vkq29',
    `Max-Forwards: ${maxForwards}`,
    `Expires: ${expires}`,
    'Content-Length: 0',
  ]);
}

/** RFC 4475 §3.1.2.5 scalarlg: a response with an overlarge CSeq, Retry-After and Warning code. */
export function scalarlg({ sentBy = 'host129.example.com', transport = 'TCP' }: TopViaOver = {}): Buffer {
  return sip([
    'SIP/2.0 503 Service Unavailable',
    `Via: SIP/2.0/${transport} ${sentBy};branch=z9hG4bKscalarlg;received=192.0.2.129`,
    'To: <sip:user@example.com>',
    'From: <sip:other@example.net>;tag=sclg',
    'CSeq: 9292394834772304023312 OPTIONS',
    'Call-ID: scalarlg.2vkq0m',
    'Retry-After: 949302838503028349304023988',
    'Warning: 1812 overture "In Progress"',
    'Content-Length: 0',
  ]);
}

/** RFC 4475 §3.1.2.6 quotbal: an unterminated quoted display name in the To (`to`). */
export function quotbal({ sentBy = '192.0.2.59:5050', to = '"Mr. J. User <sip:j.user@example.com>' }: TopVia & { readonly to?: string } = {}): Buffer {
  return sip([
    'INVITE sip:user@example.com SIP/2.0',
    `To: ${to}`,
    'From: sip:caller@example.net;tag=qb06',
    'Max-Forwards: 10',
    'Call-ID: quotbal.kq29v',
    'Contact: <sip:caller@host59.example.net>',
    'CSeq: 8 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKquotbal`,
    'Content-Type: application/sdp',
    'Content-Length: {len}',
  ], sdp('192.0.2.15'));
}

/** What the four broken request lines (§3.1.2.7 – §3.1.2.10) let a use change besides the Via. */
export interface StartLineOptions extends TopVia {
  readonly cseqMethod?: string;
  readonly callId?: string;
}

/** The same INVITE under four broken request lines (RFC 4475 §3.1.2.7 to §3.1.2.10). */
function brokenStartLine(
  start: string,
  { sentBy = '192.0.2.5', cseqMethod = 'INVITE', callId = 'startline.2kq9v@192.0.2.5' }: StartLineOptions,
): Buffer {
  return sip([
    start,
    'To: sip:user@example.com',
    'From: sip:caller@example.net;tag=rl',
    'Max-Forwards: 23',
    `Call-ID: ${callId}`,
    `CSeq: 1 ${cseqMethod}`,
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKstartline`,
    'Contact: <sip:caller@host5.example.net>',
    'Content-Type: application/sdp',
    'Content-Length: {len}',
  ], sdp('192.0.2.5'));
}

/** RFC 4475 §3.1.2.7 ltgtruri: a Request-URI in "<>". */
export const ltgtruri = (options: StartLineOptions = {}): Buffer =>
  brokenStartLine('INVITE <sip:user@example.com> SIP/2.0', options);

/** RFC 4475 §3.1.2.8 lwsruri: LWS inside the Request-URI. */
export const lwsruri = (options: StartLineOptions = {}): Buffer =>
  brokenStartLine('INVITE sip:user@example.com; lr SIP/2.0', options);

/** RFC 4475 §3.1.2.9 lwsstart: several SP between request-line elements. */
export const lwsstart = (options: StartLineOptions = {}): Buffer =>
  brokenStartLine('INVITE  sip:user@example.com  SIP/2.0', options);

/** RFC 4475 §3.1.2.10 trws: SP after the SIP-Version. */
export const trws = (options: StartLineOptions = {}): Buffer =>
  brokenStartLine('OPTIONS sip:remote-target@example.com SIP/2.0  ', options);

/** RFC 4475 §3.1.2.11 escruri: escaped headers in the Request-URI. */
export function escruri({ sentBy = 'host-of-the-hour.example.com' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0',
    'To: sip:user@example.com',
    'From: sip:caller@example.net;tag=er11',
    'Max-Forwards: 7',
    'Contact: <sip:caller@host39923.example.net>',
    'Call-ID: escruri.9vq2k-aje3',
    'CSeq: 149209342 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKescruri`,
    'Content-Type: application/sdp',
    'Content-Length: {len}',
  ], sdp('192.0.2.1'));
}

/** RFC 4475 §3.1.2.12 baddate: a non-GMT Date. */
export function baddate({ sentBy = 'host.example.com' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:user@example.com SIP/2.0',
    'To: sip:user@example.com',
    'From: sip:caller@example.net;tag=bd12',
    'Max-Forwards: 70',
    'Call-ID: baddate.0vk2q9',
    'CSeq: 1392934 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKbaddate`,
    'Date: Sat, 13 Mar 2010 23:59:59 PST',
    'Contact: <sip:caller@host5.example.net>',
    'Content-Type: application/sdp',
    'Content-Length: {len}',
  ], sdp('192.0.2.5'));
}

/** RFC 4475 §3.1.2.13 regbadct: an unbracketed Contact URI with a header, in a REGISTER. */
export function regbadct({ sentBy = '135.180.130.133:5060' }: TopVia = {}): Buffer {
  return sip([
    'REGISTER sip:example.com SIP/2.0',
    'To: sip:user@example.com',
    'From: sip:user@example.com;tag=rb13',
    'Max-Forwards: 70',
    'Call-ID: regbadct.3kv9q@10.0.0.1',
    'CSeq: 1 REGISTER',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKregbadct`,
    'Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E',
    'l: 0',
  ]);
}

/** RFC 4475 §3.1.2.14 badaspec: spaces around the addr-spec inside "<>". */
export function badaspec({ sentBy = 'host4.example.com:5060' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:user@example.org SIP/2.0',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKbadaspec`,
    'Max-Forwards: 70',
    'From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=ba14',
    'To: "Watson, Thomas" < sip:t.watson@example.org >',
    'Call-ID: badaspec.0vkq2n',
    'Accept: application/sdp',
    'CSeq: 3923239 OPTIONS',
    'l: 0',
  ]);
}

/** RFC 4475 §3.1.2.15 baddn: unquoted display names with non-token characters. */
export function baddn({ sentBy = 'c.example.com:5060' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:t.watson@example.org SIP/2.0',
    `Via:     SIP/2.0/UDP ${sentBy};branch=z9hG4bKbaddn`,
    'Max-Forwards:      70',
    'From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=bd15',
    'To:      Watson, Thomas <sip:t.watson@example.org>',
    'Call-ID: baddn.27182@c.example.com',
    'Accept: application/sdp',
    'CSeq:    3923239 OPTIONS',
    'l: 0',
  ]);
}

/** RFC 4475 §3.1.2.16 badvers: SIP/7.0 in the request line and the Via. */
export function badvers({ sentBy = 'c.example.com' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:t.watson@example.org SIP/7.0',
    `Via:     SIP/7.0/UDP ${sentBy};branch=z9hG4bKbadvers`,
    'Max-Forwards:     70',
    'From:    A. Bell <sip:a.g.bell@example.com>;tag=bv16',
    'To:      T. Watson <sip:t.watson@example.org>',
    'Call-ID: badvers.16180@c.example.com',
    'CSeq:    1 OPTIONS',
    'l: 0',
  ]);
}

/** RFC 4475 §3.1.2.17 mismatch01: request method and CSeq method disagree. */
export function mismatch01({ sentBy = 'host.example.com' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:user@example.com SIP/2.0',
    'To: sip:j.user@example.com',
    'From: sip:caller@example.net;tag=mm17',
    'Max-Forwards: 6',
    'Call-ID: mismatch01.9vk2q',
    'CSeq: 8 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKmismatch01`,
    'l: 0',
  ]);
}

/** RFC 4475 §3.1.2.18 mismatch02: an unknown method with a CSeq for another. */
export function mismatch02({ sentBy = 'host.example.net' }: TopVia = {}): Buffer {
  return sip([
    'NEWMETHOD sip:user@example.com SIP/2.0',
    'To: sip:j.user@example.com',
    'From: sip:caller@example.net;tag=mm18',
    'Max-Forwards: 6',
    'Call-ID: mismatch02.0vq29',
    'CSeq: 8 INVITE',
    'Contact: <sip:caller@host.example.net>',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKmismatch02`,
    'Content-Type: application/sdp',
    'l: {len}',
  ], sdp('192.0.2.1'));
}

/** RFC 4475 §3.1.2.19 bigcode: a status code over 699 (by default over 2**32), as status line `start`. */
export function bigcode({
  sentBy = '192.0.2.105',
  start = 'SIP/2.0 4294967301 better not break the receiver',
}: TopVia & { readonly start?: string } = {}): Buffer {
  return sip([
    start,
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKbigcode`,
    'Call-ID: bigcode.0vkq2m3',
    'CSeq: 353494 INVITE',
    'From: <sip:user@example.com>;tag=bc19',
    'To: <sip:user@example.edu>;tag=bc19b',
    'Content-Length: 0',
    'Contact: <sip:user@host105.example.com>',
  ]);
}

// ---- §3.2 transaction layer --------------------------------------------------------------------------

/** RFC 4475 §3.2.1 badbranch: a branch that is only the magic cookie. */
export function badbranch({ sentBy = '192.0.2.1' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:user@example.com SIP/2.0',
    'To: sip:user@example.com',
    'From: sip:caller@example.org;tag=bb321',
    'Max-Forwards: 3',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bK`,
    'Accept: application/sdp',
    'Call-ID: badbranch.2vk0q9',
    'CSeq: 8 OPTIONS',
    'l: 0',
  ]);
}

// ---- §3.3 application layer ----------------------------------------------------------------------------

/** RFC 4475 §3.3.1 insuf: no From, To, Call-ID or Max-Forwards. */
export function insuf({ sentBy = '192.0.2.95' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:user@example.com SIP/2.0',
    'CSeq: 193942 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKinsuf`,
    'Content-Type: application/sdp',
    'l: {len}',
  ], sdp('192.0.2.95'));
}

/** What the two scheme tests (§3.3.2, §3.3.3) let a use change. */
export interface SchemeOptions extends TopViaOver {
  readonly tag?: string;
  readonly callId?: string;
  readonly branch?: string;
}

/** An OPTIONS to a Request-URI of a scheme we do not serve (RFC 4475 §3.3.2, §3.3.3). */
function schemeOptions(
  uri: string,
  { sentBy = 'host9.example.com', transport = 'TCP', tag = 'sc332', callId = 'scheme.0vkq29', branch = 'z9hG4bKscheme' }: SchemeOptions,
): Buffer {
  return sip([
    `OPTIONS ${uri} SIP/2.0`,
    // The To is a SIP URI: it must not be taken for the target (RFC 4475 §3.3.2).
    'To: sip:user@example.com',
    `From: sip:caller@example.net;tag=${tag}`,
    'Max-Forwards: 3',
    `Call-ID: ${callId}`,
    'CSeq: 3923423 OPTIONS',
    `Via: SIP/2.0/${transport} ${sentBy};branch=${branch}`,
    'Content-Length: 0',
  ]);
}

/** RFC 4475 §3.3.2 unkscm: a Request-URI of an unknown scheme. */
export const unkscm = (options: SchemeOptions = {}): Buffer =>
  schemeOptions('nobodyKnowsThisScheme:totallyopaquecontent', options);

/** RFC 4475 §3.3.3 novelsc: a Request-URI of a registered scheme a UAS never serves (soap.beep). */
export const novelsc = (options: SchemeOptions = {}): Buffer =>
  schemeOptions('soap.beep://192.0.2.103:3002', options);

/** RFC 4475 §3.3.4 unksm2: non-SIP URIs in To, From and Contact of a REGISTER. */
export function unksm2({ sentBy = '192.0.2.21:5060' }: TopVia = {}): Buffer {
  return sip([
    'REGISTER sip:example.com SIP/2.0',
    'To: isbn:2983792873',
    'From: <http://www.example.com>;tag=us334',
    'Call-ID: unksm2.0vkq2@hyphenated-host.example.com',
    'CSeq: 234902 REGISTER',
    'Max-Forwards: 70',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKunksm2`,
    'Contact: <name:John_Smith>',
    'l: 0',
  ]);
}

/** RFC 4475 §3.3.5 bext01: unknown Require and Proxy-Require option tags. */
export function bext01({ sentBy = 'fold-and-staple.example.com', transport = 'TLS' }: TopViaOver = {}): Buffer {
  return sip([
    'OPTIONS sip:user@example.com SIP/2.0',
    'To: sip:j_user@example.com',
    'From: sip:caller@example.net;tag=be335',
    'Max-Forwards: 6',
    'Call-ID: bext01.0vq2k9',
    'Require: nothingSupportsThis, nothingSupportsThisEither',
    'Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis',
    'CSeq: 8 OPTIONS',
    `Via: SIP/2.0/${transport} ${sentBy};branch=z9hG4bKbext01`,
    'Content-Length: 0',
  ]);
}

/** The body of invut, of a type nobody knows. */
export const INVUT_BODY = '<audio>\r\n <pcmu port="443"/>\r\n</audio>\r\n';

/** RFC 4475 §3.3.6 invut: an INVITE with a body of an unknown type (INVUT_BODY). */
export function invut({ sentBy = 'somehost.example.com' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:user@example.com SIP/2.0',
    'Contact: <sip:caller@host5.example.net>',
    'To: sip:j.user@example.com',
    'From: sip:caller@example.net;tag=iu336',
    'Max-Forwards: 70',
    'Call-ID: invut.0vkq29',
    'CSeq: 235448 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKinvut`,
    'Content-Type: application/unknownformat',
    'Content-Length: {len}',
  ], INVUT_BODY);
}

/** RFC 4475 §3.3.7 regaut01: a REGISTER with an Authorization of an unknown scheme. */
export function regaut01({ sentBy = '192.0.2.253', transport = 'TCP' }: TopViaOver = {}): Buffer {
  return sip([
    'REGISTER sip:example.com SIP/2.0',
    'To: sip:j.user@example.com',
    'From: sip:j.user@example.com;tag=ra337',
    'Max-Forwards: 8',
    'Call-ID: regaut01.0vkq2',
    'CSeq: 9338 REGISTER',
    `Via: SIP/2.0/${transport} ${sentBy};branch=z9hG4bKregaut01`,
    'Authorization: NoOneKnowsThisScheme opaque-data=here, and=more',
    'Content-Length:0',
  ]);
}

/** RFC 4475 §3.3.8 multi01: several Call-ID, To, From, Max-Forwards and CSeq values. */
export function multi01({ sentBy = '192.0.2.25' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:user@company.com SIP/2.0',
    'Contact: <sip:caller@host25.example.net>',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKmulti01`,
    'Max-Forwards: 70',
    'CSeq: 5 INVITE',
    'Call-ID: multi01.first@192.0.2.1',
    'CSeq: 59 INVITE',
    'Call-ID: multi01.second@192.0.2.2',
    'From: sip:caller@example.com;tag=mu1',
    'To: sip:user@example.com',
    'To: sip:other@example.net',
    'From: sip:caller@example.net;tag=mu2',
    'Content-Type: application/sdp',
    'l: {len}',
    'Contact: <sip:caller@host36.example.net>',
    'Max-Forwards: 5',
  ], sdp('192.0.2.25'));
}

/** RFC 4475 §3.3.9 mcl01: two different Content-Length values. */
export function mcl01({ sentBy = 'host5.example.net' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:user@example.com SIP/2.0',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKmcl01`,
    'To: sip:user@example.com',
    'From: sip:other@example.net;tag=mc339',
    'Call-ID: mcl01.2vkq0',
    'CSeq: 15932 OPTIONS',
    'Content-Length: 13',
    'Max-Forwards: 60',
    'Content-Length: 5',
    'Content-Type: text/plain',
  ], 'No one can tell which of the two lengths frames this.\r\n');
}

/** RFC 4475 §3.3.10 bcast: a 200 whose second Via is the broadcast address. */
export function bcast({ sentBy = '192.0.2.198' }: TopVia = {}): Buffer {
  return sip([
    'SIP/2.0 200 OK',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKbcast1`,
    'Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bKbcast2',
    'Call-ID: bcast.0vkq29m',
    'CSeq: 35 INVITE',
    'From: sip:user@example.com;tag=bc3310',
    'To: sip:user@example.edu;tag=bc3310b',
    'Content-Length: {len}',
    'Content-Type: application/sdp',
    'Contact: <sip:user@host28.example.com>',
  ], sdp('192.0.2.198'));
}

/** RFC 4475 §3.3.11 zeromf: Max-Forwards 0. */
export function zeromf({ sentBy = 'host1.example.com' }: TopVia = {}): Buffer {
  return sip([
    'OPTIONS sip:user@example.com SIP/2.0',
    'To: sip:user@example.com',
    'From: sip:caller@example.net;tag=zm3311',
    'Call-ID: zeromf.0vkq2m',
    'CSeq: 39234321 OPTIONS',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKzeromf`,
    'Max-Forwards: 0',
    'Content-Length: 0',
  ]);
}

/** What the REGISTER of the cparam tests (§3.3.12, §3.3.13) lets a use change besides the Via. */
export interface CparamOptions extends TopVia {
  readonly branch?: string;
  readonly tag?: string;
  readonly callId?: string;
}

/**
 * The REGISTER of RFC 4475 §3.3.12 cparam01 and §3.3.13 cparam02, with `contactLine` (a whole
 * header line) as its one Contact.
 */
export function cparamRegister(
  contactLine: string,
  { sentBy = 'saturn.example.com:5060', branch = 'z9hG4bKcparam', tag = 'cp33', callId = 'cparam.0vkq2@saturn.example.com' }: CparamOptions = {},
): Buffer {
  return sip([
    'REGISTER sip:example.com SIP/2.0',
    `Via: SIP/2.0/UDP ${sentBy};branch=${branch}`,
    'Max-Forwards: 70',
    `From: sip:watson@example.com;tag=${tag}`,
    'To: sip:watson@example.com',
    `Call-ID: ${callId}`,
    'CSeq: 2 REGISTER',
    contactLine,
    'l: 0',
  ]);
}

/** RFC 4475 §3.3.12 cparam01: ";unknownparam" outside "<>": a Contact header parameter. */
export const cparam01 = (options: CparamOptions = {}): Buffer =>
  cparamRegister('Contact: sip:+19725552222@gw1.example.net;unknownparam', options);

/** RFC 4475 §3.3.13 cparam02: ";unknownparam" inside "<>": a Contact URI parameter. */
export const cparam02 = (options: CparamOptions = {}): Buffer =>
  cparamRegister('Contact: <sip:+19725552222@gw1.example.net;unknownparam>', options);

/** The Contact line of regescrt: a bracketed URI with an escaped header. */
export const REGESCRT_CONTACT = 'M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>';

/** RFC 4475 §3.3.14 regescrt: a REGISTER whose Contact is REGESCRT_CONTACT. */
export function regescrt({ sentBy = 'host5.example.com' }: TopVia = {}): Buffer {
  return sip([
    'REGISTER sip:example.com SIP/2.0',
    'To: sip:user@example.com',
    'From: sip:user@example.com;tag=re3314',
    'Max-Forwards: 70',
    'Call-ID: regescrt.0vkq2@192.0.2.1',
    'CSeq: 14398234 REGISTER',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKregescrt`,
    REGESCRT_CONTACT,
    'L:0',
  ]);
}

/** RFC 4475 §3.3.15 sdp01: an INVITE with an SDP body whose Accept lists only text/nobodyKnowsThis. */
export function sdp01({ sentBy = '192.0.2.15' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:user@example.com SIP/2.0',
    'To: sip:j_user@example.com',
    'Contact: <sip:caller@host15.example.net>',
    'From: sip:caller@example.net;tag=sd3315',
    'Max-Forwards: 5',
    'Call-ID: sdp01.0vkq29d',
    'Accept: text/nobodyKnowsThis',
    'CSeq: 8 INVITE',
    `Via: SIP/2.0/UDP ${sentBy};branch=z9hG4bKsdp01`,
    'Content-Length: {len}',
    'Content-Type: application/sdp',
  ], sdp('192.0.2.5'));
}

// ---- §3.4 backward compatibility -------------------------------------------------------------------

/** The SDP body of inv2543. */
export const INV2543_BODY = ['v=0', 'o=torture 2543 1 IN IP4 192.0.2.5', 's=-', 'c=IN IP4 192.0.2.5', 't=0 0', 'm=audio 49170 RTP/AVP 0', ''].join('\r\n');

/**
 * RFC 4475 §3.4.1 inv2543: RFC 2543 syntax (no branch, no From tag, no Max-Forwards, no
 * Content-Length, no Contact), with INV2543_BODY.
 */
export function inv2543({ sentBy = 'iftgw.example.com' }: TopVia = {}): Buffer {
  return sip([
    'INVITE sip:UserB@example.com SIP/2.0',
    `Via: SIP/2.0/UDP ${sentBy}`,
    'From: <sip:+13035551111@ift.client.example.net;user=phone>',
    'Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>',
    'To: sip:+16505552222@ss1.example.net;user=phone',
    'Call-ID: inv2543.2vkq0@ift.client.example.com',
    'CSeq: 56 INVITE',
    'Content-Type: application/sdp',
  ], INV2543_BODY);
}
