/**
 * What the drachtio engine hands the shared router, read with drachtio-srf's own parser from
 * INVITEs as phones and PBXs send them (captured text; `Srf.SipMessage` is what drachtio-srf
 * builds every incoming request from).
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { addressingOf } from '../../../src/telephony/drachtio/addressing.js';
import type { SrfRequest } from '../../../src/telephony/drachtio/drachtio-types.js';
import { Srf } from '../../../src/telephony/drachtio/modules.js';

/** A request as drachtio-srf's agent builds it: the parsed SipMessage plus drachtio-server's source. */
function request(text: string, source = '10.0.0.5'): SrfRequest {
  const msg = new Srf.SipMessage(text.replace(/\n/g, '\r\n'));
  return Object.assign(Object.create(msg) as object, EventEmitter.prototype, {
    source_address: source, source_port: 5060, protocol: 'udp',
  }) as unknown as SrfRequest;
}

const YEALINK_VOICEMAIL_KEY = `INVITE sip:*97@demo.local;transport=UDP SIP/2.0
Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1749376521;rport
From: "Alice Example" <sip:201@demo.local>;tag=1213374985
To: <sip:*97@demo.local>
Call-ID: 1480186313@10.0.0.5
CSeq: 1 INVITE
Contact: <sip:201@10.0.0.5:5062>
Max-Forwards: 70
User-Agent: Yealink SIP-T46S 66.86.0.15
Content-Type: application/sdp
Content-Length: 0

`;

const PBX_WITH_PAI = `INVITE sip:+15550100@pbx.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKpbx1
From: <sip:anonymous@anonymous.invalid>;tag=pbx1
To: <sip:15550100@demo.local>
Call-ID: pbx-77@192.0.2.10
CSeq: 10 INVITE
P-Asserted-Identity: "Bob Rogers" <sip:202@demo.local>
Contact: <sip:pbx@192.0.2.10:5060>
Max-Forwards: 69
Content-Length: 0

`;

describe('addressingOf (drachtio engine)', () => {
  it('reads Request-URI, To, From and the network source of a phone pressing its Voicemail key', () => {
    expect(addressingOf(request(YEALINK_VOICEMAIL_KEY))).toEqual({
      requestUser: '*97', requestHost: 'demo.local', toHost: 'demo.local',
      fromUser: '201', fromHost: 'demo.local', assertedUser: undefined, sourceAddress: '10.0.0.5',
      fromDisplayName: 'Alice Example', requestUri: 'sip:*97@demo.local;transport=UDP', diversion: [], historyInfo: [],
    });
  });

  it('keeps the leading + of an Auto Attendant number for the router and reads P-Asserted-Identity', () => {
    expect(addressingOf(request(PBX_WITH_PAI, '192.0.2.10'))).toEqual({
      requestUser: '+15550100', requestHost: 'pbx.example.net', toHost: 'demo.local',
      fromUser: 'anonymous', fromHost: 'anonymous.invalid', assertedUser: '202', sourceAddress: '192.0.2.10',
      fromDisplayName: undefined, requestUri: 'sip:+15550100@pbx.example.net', diversion: [], historyInfo: [],
    });
  });

  it('treats an unparseable P-Asserted-Identity as absent, not as an error', () => {
    const broken = PBX_WITH_PAI.replace('P-Asserted-Identity: "Bob Rogers" <sip:202@demo.local>', 'P-Asserted-Identity: garbage');
    expect(addressingOf(request(broken)).assertedUser).toBeUndefined();
  });

  it('hands on Diversion and History-Info of a redirected call as received', () => {
    const redirected = YEALINK_VOICEMAIL_KEY.replace('Max-Forwards: 70', 'Max-Forwards: 70\nDiversion: <sip:202@demo.local>;reason=no-answer\nHistory-Info: <sip:202@demo.local>;index=1');
    const a = addressingOf(request(redirected));
    expect(a.diversion).toEqual(['<sip:202@demo.local>;reason=no-answer']);
    expect(a.historyInfo).toEqual(['<sip:202@demo.local>;index=1']);
  });
});
