/**
 * Hostile SDP offers the fuzzer (test/e2e/fuzz-server.test.ts) found: the codec check both
 * engines make before answering must give a designed answer (488 reasons), never throw.
 */
import { describe, expect, it } from 'vitest';
import { negotiate } from '../../../src/telephony/sdp.js';

function offer(...attributes: string[]): string {
  return ['v=0', 'o=x 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 4000 RTP/AVP 0 101', ...attributes, ''].join('\r\n');
}

describe('negotiate() with encoding names that are numbers', () => {
  it('an all-digit telephone-event encoding name is not telephone-event (sdp-transform makes it a number)', () => {
    const result = negotiate(offer('a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 99999999999999999999/8000'));
    expect(result).toMatchObject({ ok: true, media: { codec: { name: 'PCMU', payloadType: 0 }, telephoneEventPayloadType: null } });
  });

  it('an all-digit encoding name for a static payload type is no G.711: no common codec', () => {
    expect(negotiate(offer('a=rtpmap:0 1234/8000', 'a=rtpmap:101 1/8000'))).toEqual({ ok: false, reason: 'noCommonCodec' });
  });
});
