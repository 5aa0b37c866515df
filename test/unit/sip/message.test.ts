import { describe, expect, it } from 'vitest';
import {
  parseMessage,
  parseNameAddr,
  parseUri,
  parseVia,
  parseCSeq,
  SipParseError,
  SipRequest,
  SipResponse,
  formatUri,
} from '../../../src/telephony/embedded/sip/index.js';

/** Joins lines with CRLF; `body` is appended after the empty line. */
function msg(lines: string[], body = ''): Buffer {
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'utf8');
}

function parseError(data: Buffer, transport: 'udp' | 'tcp' = 'udp'): SipParseError {
  try {
    parseMessage(data, transport);
  } catch (err) {
    expect(err).toBeInstanceOf(SipParseError);
    return err as SipParseError;
  }
  throw new Error('expected a SipParseError');
}

const SDP = [
  'v=0',
  'o=mhandley 29739 7272939 IN IP4 192.0.2.3',
  's=-',
  'c=IN IP4 192.0.2.4',
  't=0 0',
  'm=audio 49217 RTP/AVP 0 12',
  'm=video 3227 RTP/AVP 31',
  'a=rtpmap:31 LPC',
  '',
].join('\r\n');

function basicInvite(extra: string[] = [], body = ''): Buffer {
  return msg(
    [
      'INVITE sip:bob@biloxi.example.com SIP/2.0',
      'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds',
      'Max-Forwards: 70',
      'To: Bob <sip:bob@biloxi.example.com>',
      'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
      'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
      'CSeq: 314159 INVITE',
      'Contact: <sip:alice@pc33.atlanta.example.com>',
      ...extra,
      `Content-Length: ${Buffer.byteLength(body)}`,
    ],
    body,
  );
}

describe('parseMessage: RFC 4475 §3.1.1 valid messages', () => {
  it('3.1.1.1 short tortuous INVITE: folding, odd spacing, compact forms, case-insensitive names', () => {
    const data = msg(
      [
        'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0',
        'TO :',
        ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n',
        'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
        '  ;',
        '  tag = 98asjd8',
        'MaX-fOrWaRdS: 0068',
        'Call-ID: wsinv.ndaksdj@192.0.2.1',
        `Content-Length   : ${Buffer.byteLength(SDP)}`,
        'cseq: 0009',
        '  INVITE',
        'Via  : SIP  /   2.0',
        ' /UDP',
        '    192.0.2.2;branch=390skdjuw',
        's :',
        'NewFangledHeader:   newfangled value',
        ' continued newfangled value',
        'UnknownHeaderWithUnusualValue: ;;,,;;,;',
        'Content-Type: application/sdp',
        'Route:',
        ' <sip:services.example.com;lr;unknownwith=value;unknown-no-value>',
        'v:  SIP  / 2.0  / TCP     spindle.example.com   ;',
        '  branch  =   z9hG4bK9ikj8  ,',
        ' SIP  /    2.0   / UDP  192.168.255.111   ; branch=',
        ' z9hG4bK30239',
        'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
        '      newvalue ;',
        '  secondparam ; q = 0.33',
      ],
      SDP,
    );
    const m = parseMessage(data);
    expect(m).toBeInstanceOf(SipRequest);
    const req = m as SipRequest;
    expect(req.method).toBe('INVITE');
    expect(req.uri).toBe('sip:vivekg@chair-dnrc.example.com;unknownparam');
    expect(req.to.tag).toBe('1918181833n');
    expect(req.to.uri).toBe('sip:vivekg@chair-dnrc.example.com');
    expect(req.from.displayName).toBe('J Rosenberg \\"');
    expect(req.from.tag).toBe('98asjd8');
    expect(req.maxForwards).toBe(68);
    expect(req.cseq).toEqual({ seq: 9, method: 'INVITE' });
    expect(req.callId).toBe('wsinv.ndaksdj@192.0.2.1');
    expect(req.get('subject')).toBe('');
    expect(req.get('NewFangledHeader')).toBe('newfangled value continued newfangled value');
    expect(req.get('unknownheaderwithunusualvalue')).toBe(';;,,;;,;');
    // Three Via values in order: one line, then the compact form split on its comma.
    const vias = req.vias;
    expect(vias.map((v) => [v.transport, v.host, v.branch])).toEqual([
      ['UDP', '192.0.2.2', '390skdjuw'],
      ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['UDP', '192.168.255.111', 'z9hG4bK30239'],
    ]);
    const contact = parseNameAddr(req.get('contact') ?? '');
    expect(contact.displayName).toBe('Quoted string ""');
    expect(contact.params).toEqual({ newparam: 'newvalue', secondparam: null, q: '0.33' });
    expect(req.mediaType).toBe('application/sdp');
    expect(req.body.toString()).toBe(SDP);
  });

  it('3.1.1.2 wide range of valid characters', () => {
    const method = "!interesting-Method0123456789_*+`.%indeed'~";
    const data = msg([
      `${method} sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0`,
      "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
      'To: "BEL:\\\u0007 NUL:\\\u0000 DEL:\\\u007f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>',
      "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439\";tag=_token~1'+`*%!-.",
      'Call-ID: intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{',
      `CSeq: 139122385 ${method}`,
      'Max-Forwards: 255',
      "extensionHeader-!.%*+_`'~:\ufeff\u5927\u505c\u96fb",
      'Content-Length: 0',
    ]);
    const req = parseMessage(data) as SipRequest;
    expect(req.method).toBe(method);
    const uri = parseUri(req.uri);
    expect(uri.user).toBe("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    expect(uri.password).toBe('&it+has=1,weird!*pas$wo~d_too.(doesn\'t-it)');
    expect(uri.host).toBe('example.com');
    expect(req.from.displayName).toBe("token1~` token2'+_ token3*%!.-");
    expect(req.from.tag).toBe("_token~1'+`*%!-.");
    expect(req.to.displayName).toBe('BEL:\u0007 NUL:\u0000 DEL:\u007f');
    // Escaped control characters survive into a response (they are legal in a quoted-pair).
    expect(() => new SipResponse(200, 'OK').append('To', req.get('to') ?? '')).not.toThrow();
    expect(req.callId).toBe('intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
    expect(req.cseq.method).toBe(method);
    expect(req.maxForwards).toBe(255);
    expect(req.get("extensionheader-!.%*+_`'~")).toBe('\ufeff\u5927\u505c\u96fb');
  });

  it('3.1.1.3 escaped characters in URIs and compact Content-Type', () => {
    const data = msg(
      [
        'INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0',
        'To: sip:%75se%72@example.com',
        'From: <sip:I%20have%20spaces@example.net>;tag=938',
        'Max-Forwards: 87',
        'i: esc01.239409asdfakjkn23onasd0-3234',
        'CSeq: 234234 INVITE',
        'Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw',
        'C: application/sdp',
        'Contact:',
        '  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>',
        `Content-Length: ${Buffer.byteLength(SDP)}`,
      ],
      SDP,
    );
    const req = parseMessage(data) as SipRequest;
    expect(parseUri(req.uri).user).toBe('sips:user@example.com');
    expect(parseUri(req.to.uri).user).toBe('user');
    expect(parseUri(req.from.uri).user).toBe('I have spaces');
    expect(req.callId).toBe('esc01.239409asdfakjkn23onasd0-3234');
    expect(req.mediaType).toBe('application/sdp');
    const contact = parseUri(parseNameAddr(req.get('m') ?? '').uri);
    expect(contact.user).toBe('caller');
    expect(contact.params).toEqual({ lr: null, name: 'v%61lue%25%34%31' });
    // Re-escaping keeps the user equivalent (§19.1.4).
    expect(parseUri(formatUri(parseUri(req.uri))).user).toBe('sips:user@example.com');
  });

  it('3.1.1.6 no LWS between display name and "<"', () => {
    const req = parseMessage(
      msg([
        'OPTIONS sip:user@example.com SIP/2.0',
        'To: sip:user@example.com',
        'From: caller<sip:caller@example.com>;tag=323',
        'Max-Forwards: 70',
        'Call-ID: lwsdisp.1234abcd@funky.example.com',
        'CSeq: 60 OPTIONS',
        'Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw',
        'l: 0',
      ]),
    ) as SipRequest;
    expect(req.from.displayName).toBe('caller');
    expect(req.from.uri).toBe('sip:caller@example.com');
    expect(req.from.tag).toBe('323');
  });

  it('response with an empty reason phrase and IPv6 Via', () => {
    const res = parseMessage(
      msg([
        'SIP/2.0 100 ',
        'Via: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKkdjuw;received=2001:db8::9:255;rport=5071',
        'To: <sip:user@example.com>',
        'From: <sip:caller@example.com>;tag=1',
        'Call-ID: noreason.asndj203insdf99223ndf',
        'CSeq: 35 INVITE',
        'Content-Length: 0',
      ]),
    ) as SipResponse;
    expect(res).toBeInstanceOf(SipResponse);
    expect(res.status).toBe(100);
    expect(res.reason).toBe('');
    expect(res.topVia).toMatchObject({ host: '2001:db8::9:1', port: 5070, received: '2001:db8::9:255', rport: 5071 });
  });
});

describe('parseMessage: invalid messages (RFC 4475 §3.1.2 and more)', () => {
  it('Content-Length larger than the datagram body is an error with an answerable partial', () => {
    const err = parseError(basicInvite(['Content-Type: application/sdp'], 'v=0\r\n').subarray(0, -2));
    expect(err.reason).toBe('body shorter than Content-Length');
    expect(err.partial).toBeInstanceOf(SipRequest);
  });

  it('negative, non-numeric and overflowing Content-Length', () => {
    for (const value of ['-999', 'abc', '18446744073709551617', '1 2']) {
      const data = msg([
        'OPTIONS sip:user@example.com SIP/2.0',
        'Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1',
        'To: <sip:user@example.com>',
        'From: <sip:c@example.com>;tag=1',
        'Call-ID: x1',
        'CSeq: 1 OPTIONS',
        `Content-Length: ${value}`,
      ]);
      expect(parseError(data).reason).toMatch(/Content-Length/);
    }
  });

  it('multiple Content-Length values', () => {
    const err = parseError(basicInvite(['Content-Length: 0']));
    expect(err.reason).toBe('multiple Content-Length');
  });

  it('missing required headers, each one in turn', () => {
    for (const name of ['Via', 'To', 'From', 'Call-ID', 'CSeq']) {
      const lines = basicInvite().toString().split('\r\n').filter((l) => !l.startsWith(`${name}:`));
      const err = parseError(Buffer.from(lines.join('\r\n')));
      expect(err.reason).toBe(`missing ${name}`);
    }
  });

  it('missing Max-Forwards means 70', () => {
    const lines = basicInvite().toString().split('\r\n').filter((l) => !l.startsWith('Max-Forwards'));
    expect((parseMessage(Buffer.from(lines.join('\r\n'))) as SipRequest).maxForwards).toBe(70);
  });

  it('CSeq method mismatch, non-numeric CSeq, out-of-range CSeq and Max-Forwards', () => {
    expect(parseError(Buffer.from(basicInvite().toString().replace('314159 INVITE', '314159 ACK'))).reason).toBe('CSeq method mismatch');
    expect(parseError(Buffer.from(basicInvite().toString().replace('314159 INVITE', 'abc INVITE'))).reason).toMatch(/CSeq/);
    expect(parseError(Buffer.from(basicInvite().toString().replace('314159 INVITE', '36893488147419103232 INVITE'))).reason).toMatch(/CSeq/);
    expect(parseError(Buffer.from(basicInvite().toString().replace('Max-Forwards: 70', 'Max-Forwards: 300'))).reason).toMatch(/Max-Forwards/);
  });

  it('multiple Call-ID, From, To or CSeq values', () => {
    for (const line of ['Call-ID: other@x', 'From: <sip:x@y>;tag=2', 'To: <sip:z@y>', 'CSeq: 5 INVITE']) {
      const err = parseError(basicInvite([line]));
      expect(err.reason).toMatch(/^multiple /);
      expect(err.partial).toBeDefined();
    }
  });

  it('bad request lines with clean headers: 400 with a partial to answer from (RFC 4475 §3.1.2.7 – §3.1.2.10)', () => {
    const tail = basicInvite().toString().split('\r\n').slice(1).join('\r\n');
    for (const start of [
      'INVITE  sip:bob@biloxi.example.com SIP/2.0',
      'INVITE sip:bob@biloxi.example.com SIP/2.0 ',
      'INVITE <sip:bob@biloxi.example.com> SIP/2.0',
      'INVITE sip:bob@biloxi.example.com; lr SIP/2.0',
      'INVITE sip:bob@biloxi.example.com HTTP/1.1',
      'INVITE sip:bob@biloxi.example.com\x07 SIP/2.0',
    ]) {
      const err = parseError(Buffer.from(`${start}\r\n${tail}`));
      expect(err.status, start).toBe(400);
      expect(err.partial, start).toBeInstanceOf(SipRequest);
      expect((err.partial as SipRequest).method).toBe('INVITE');
    }
  });

  it('start lines that leave nothing to answer: no partial', () => {
    const tail = basicInvite().toString().split('\r\n').slice(1).join('\r\n');
    for (const start of [
      // "INV" is a token, but the CSeq says INVITE: which request is this?
      'INV ITE',
      ' INVITE sip:bob@biloxi.example.com SIP/2.0',
      'IN<VITE sip:bob@biloxi.example.com SIP/2.0',
      // Responses are never answered, however broken (§18.1.2).
      'SIP/2.0 4294967301 better not break the receiver',
      'SIP/2.0 99 Too small',
      'SIP/2.0 200 O\x07K',
      '',
    ]) {
      const err = parseError(Buffer.from(`${start}\r\n${tail}`));
      expect(err.partial, JSON.stringify(start)).toBeUndefined();
    }
  });

  it('a foreign SIP version gets status 505 with a partial', () => {
    const data = Buffer.from(basicInvite().toString().replace('SIP/2.0\r\n', 'SIP/7.0\r\n'));
    const err = parseError(data);
    expect(err.status).toBe(505);
    expect(err.partial).toBeInstanceOf(SipRequest);
  });

  it('unterminated quoted display name, unbracketed addr-spec with a "?"', () => {
    expect(parseError(Buffer.from(basicInvite().toString().replace('To: Bob <', 'To: "Bob <'))).reason).toMatch(/address/);
    expect(parseError(Buffer.from(basicInvite().toString().replace('To: Bob <sip:bob@biloxi.example.com>', 'To: sip:bob@biloxi.example.com?x=y'))).reason).toMatch(/address/);
  });

  it('framing errors: no empty line, bare LF, folded first header, header without colon, bad UTF-8', () => {
    const base = basicInvite().toString();
    expect(parseError(Buffer.from(base.replace('\r\n\r\n', '\r\n'))).reason).toBe('missing empty line after headers');
    expect(parseError(Buffer.from(base.replace('Max-Forwards: 70\r\n', 'Max-Forwards: 70\n'))).reason).toBe('bare CR or LF');
    expect(parseError(Buffer.from(base.replace('SIP/2.0\r\nVia', 'SIP/2.0\r\n Via'))).reason).toBe('folded line before any header');
    expect(parseError(Buffer.from(base.replace('Max-Forwards: 70', 'Max-Forwards 70'))).reason).toBe('header without colon');
    const badUtf8 = Buffer.concat([Buffer.from(base.slice(0, 60)), Buffer.from([0xc3, 0x28]), Buffer.from(base.slice(60))]);
    expect(parseError(badUtf8).reason).toBe('header section is not UTF-8');
  });

  it('a body without Content-Type is refused', () => {
    expect(parseError(basicInvite([], 'hello')).reason).toBe('body without Content-Type');
  });
});

describe('parseMessage: Content-Length framing', () => {
  it('UDP: bytes after Content-Length are dropped (§18.3)', () => {
    const data = Buffer.concat([basicInvite(['Content-Type: application/sdp'], 'v=0\r\n'), Buffer.from('garbage')]);
    expect((parseMessage(data) as SipRequest).body.toString()).toBe('v=0\r\n');
  });

  it('UDP: without Content-Length the rest of the datagram is the body', () => {
    const text = basicInvite(['Content-Type: application/sdp'], 'v=0\r\n').toString().replace(/Content-Length: \d+\r\n/, '');
    expect((parseMessage(Buffer.from(text)) as SipRequest).body.toString()).toBe('v=0\r\n');
  });

  it('TCP: Content-Length is mandatory', () => {
    const text = basicInvite().toString().replace(/Content-Length: \d+\r\n/, '');
    expect(parseError(Buffer.from(text), 'tcp').reason).toBe('missing Content-Length');
  });

  it('leading CRLFs before the start line are ignored (§7.5)', () => {
    expect(parseMessage(Buffer.concat([Buffer.from('\r\n\r\n'), basicInvite()]))).toBeInstanceOf(SipRequest);
  });

  it('keeps binary bodies as Buffers', () => {
    const body = Buffer.from([0, 1, 2, 255, 13, 10]);
    const head = basicInvite(['Content-Type: application/octet-stream']).toString().replace('Content-Length: 0', `Content-Length: ${body.length}`);
    const req = parseMessage(Buffer.concat([Buffer.from(head), body])) as SipRequest;
    expect(Buffer.compare(req.body, body)).toBe(0);
  });
});

describe('headers and serialization', () => {
  it('getAll keeps header lines and comma-separated values in order; names are case-insensitive', () => {
    const req = parseMessage(
      basicInvite(['Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>', 'route: <sip:p3.example.com;lr>', 'Allow: INVITE, ACK', 'Date: Sat, 13 Nov 2010 23:29:00 GMT']),
    ) as SipRequest;
    expect(req.getAll('ROUTE')).toEqual(['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>', '<sip:p3.example.com;lr>']);
    expect(req.getAll('allow')).toEqual(['INVITE', 'ACK']);
    expect(req.getAll('Date')).toEqual(['Sat, 13 Nov 2010 23:29:00 GMT']);
    expect(req.get('t')).toBe('Bob <sip:bob@biloxi.example.com>');
  });

  it('serialize writes long names and a correct Content-Length; the result parses back the same', () => {
    const req = parseMessage(msg([
      'OPTIONS sip:user@example.com SIP/2.0',
      'v: SIP/2.0/UDP h.example.com;branch=z9hG4bK1',
      't: <sip:user@example.com>',
      'f: <sip:c@example.com>;tag=1',
      'i: x1',
      'CSeq: 1 OPTIONS',
      'l: 0',
    ])) as SipRequest;
    req.setBody('text/plain', 'héllo');
    const text = req.serialize().toString();
    expect(text).toContain('Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n');
    expect(text).toContain('Call-ID: x1\r\n');
    expect(text).toContain('Content-Length: 6\r\n\r\nhéllo');
    expect(text.match(/Content-Length/g)).toHaveLength(1);
    const again = parseMessage(req.serialize()) as SipRequest;
    expect(again.body.toString()).toBe('héllo');
    expect(again.headers.map((h) => [h.key, h.value])).toEqual(req.headers.filter((h) => h.key !== 'content-length').map((h) => [h.key, h.value]).concat([['content-length', '6']]));
  });

  it('refuses header values with CR or LF when building messages', () => {
    const res = new SipResponse(200, 'OK');
    expect(() => res.append('X-Test', 'a\r\nInjected: 1')).toThrow(TypeError);
    expect(() => res.append('Bad Name', 'x')).toThrow(TypeError);
  });
});

describe('header value parsers', () => {
  it('parseVia: IPv6, default port, params, rport without value', () => {
    const via = parseVia('SIP/2.0/TCP [::1]:5061;branch=z9hG4bKabc;rport;x=y');
    expect(via).toMatchObject({ transport: 'TCP', host: '::1', port: 5061, branch: 'z9hG4bKabc', rport: null });
    expect(via.params['x']).toBe('y');
    expect(parseVia('SIP/2.0/UDP 192.0.2.1').port).toBeUndefined();
    expect(() => parseVia('SIP/3.0/UDP host')).toThrow(SipParseError);
    expect(() => parseVia('SIP/2.0/UDP')).toThrow(SipParseError);
    expect(() => parseVia('SIP/2.0/UDP host:99999')).toThrow(SipParseError);
    expect(() => parseVia('SIP/2.0/UDP host;received=not-an-ip')).toThrow(SipParseError);
  });

  it('parseNameAddr: quoted and token display names, bare addr-spec params belong to the header', () => {
    expect(parseNameAddr('"Alice \\"A\\"" <sip:alice@a.example.com;transport=tcp>;tag=abc')).toEqual({
      displayName: 'Alice "A"',
      uri: 'sip:alice@a.example.com;transport=tcp',
      params: { tag: 'abc' },
      tag: 'abc',
    });
    const bare = parseNameAddr('sip:bob@b.example.com;tag=xyz');
    expect(bare.uri).toBe('sip:bob@b.example.com');
    expect(bare.tag).toBe('xyz');
    expect(parseNameAddr('<tel:+15550100>').uri).toBe('tel:+15550100');
    expect(() => parseNameAddr('Bob sip:bob@b')).toThrow(SipParseError);
    expect(() => parseNameAddr('<sip:bob@b')).toThrow(SipParseError);
  });

  it('parseCSeq', () => {
    expect(parseCSeq('  42   BYE ')).toEqual({ seq: 42, method: 'BYE' });
    expect(() => parseCSeq('42BYE')).toThrow(SipParseError);
    expect(() => parseCSeq('2147483648 BYE')).toThrow(SipParseError);
  });

  it('parseUri: sip, sips, tel, IPv6, params, headers; rejects junk', () => {
    expect(parseUri('sip:alice:secret@[2001:db8::1]:5080;transport=tcp;lr?subject=hi&x=')).toMatchObject({
      scheme: 'sip',
      user: 'alice',
      password: 'secret',
      host: '2001:db8::1',
      port: 5080,
      params: { transport: 'tcp', lr: null },
      headers: { subject: 'hi', x: '' },
    });
    expect(parseUri('SIPS:Example.COM')).toMatchObject({ scheme: 'sips', host: 'Example.COM' });
    expect(parseUri('tel:+1-555-0100;phone-context=example.com')).toMatchObject({ scheme: 'tel', user: '+1-555-0100' });
    expect(parseUri('sip:*97@demo.local').user).toBe('*97');
    for (const bad of ['sip:', 'sip:a@b@c', 'sip:user@', 'sip:host:port', 'sip:host;;x', 'http://x', 'sip:h ost', 'sip:[::1', 'sip:1.2.3.999']) {
      expect(() => parseUri(bad), bad).toThrow(SipParseError);
    }
  });
});
