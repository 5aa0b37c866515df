import { describe, expect, it } from 'vitest';
import { redirectTarget } from '../../../src/telephony/redirection.js';

const none = { requestUri: 'sip:*97@demo.local', diversion: [], historyInfo: [] };

describe('redirectTarget (RFC 5806 Diversion, RFC 7044 History-Info with RFC 4458 causes)', () => {
  it('no redirection headers: not a redirected call', () => {
    expect(redirectTarget(none)).toBeUndefined();
  });

  it('Diversion: the topmost entry is the last extension that did not answer', () => {
    expect(redirectTarget({ ...none, diversion: ['<sip:202@demo.local>;reason=no-answer;counter=1', '<sip:201@demo.local>;reason=unconditional'] }))
      .toEqual({ user: '202', host: 'demo.local', via: 'diversion' });
    // Several entries in one header value, and a tel: URI.
    expect(redirectTarget({ ...none, diversion: ['"Bob" <tel:+15550202>;reason=user-busy, <sip:201@demo.local>'] }))
      .toEqual({ user: '+15550202', host: undefined, via: 'diversion' });
  });

  it('History-Info: the target= of the entry retargeted with cause 486/408/480', () => {
    const hi = ['<sip:201@demo.local>;index=1', '<sip:voicemail@demo.local;target=sip:201%40demo.local;cause=486>;index=1.1'];
    expect(redirectTarget({ ...none, historyInfo: hi })).toEqual({ user: '201', host: 'demo.local', via: 'history-info' });
    for (const cause of ['408', '480']) {
      const h = [`<sip:202@demo.local>;index=1,<sip:vm@demo.local;target=sip:202%40demo.local;cause=${cause}>;index=1.1`];
      expect(redirectTarget({ ...none, historyInfo: h })?.user).toBe('202');
    }
  });

  it('History-Info without target=: the parent entry by index', () => {
    const hi = ['<sip:100@demo.local>;index=1', '<sip:201@demo.local>;index=1.1', '<sip:vm@demo.local;cause=408>;index=1.1.1'];
    expect(redirectTarget({ ...none, historyInfo: hi })?.user).toBe('201');
  });

  it('causes that are not "did not answer" (302 forward, 404) are not a deposit', () => {
    const hi = ['<sip:201@demo.local>;index=1', '<sip:vm@demo.local;target=sip:201%40demo.local;cause=302>;index=1.1'];
    expect(redirectTarget({ ...none, historyInfo: hi })).toBeUndefined();
  });

  it('RFC 4458 parameters on the Request-URI itself', () => {
    expect(redirectTarget({ ...none, requestUri: 'sip:voicemail@demo.local;target=sip:203%40demo.local;cause=486' }))
      .toEqual({ user: '203', host: 'demo.local', via: 'request-uri' });
  });

  it('garbage is skipped, never thrown', () => {
    expect(redirectTarget({ requestUri: 'not a uri', diversion: ['<<<', '"unterminated'], historyInfo: [';;;', '<sip:@>;index=x'] })).toBeUndefined();
    expect(redirectTarget({ ...none, diversion: ['<<<', '<sip:204@demo.local>'] })?.user).toBe('204');
  });
});
