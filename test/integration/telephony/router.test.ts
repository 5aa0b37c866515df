import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseTrustedPeers } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { AccessCodeHasher } from '../../../src/domain/access-code-hasher.js';
import { AccessCodeService } from '../../../src/mailbox/access-code-service.js';
import { seedDemo } from '../../../src/store/demo.js';
import { CallRouter, type CallAddressing } from '../../../src/telephony/router.js';
import { describeEachDatabase, TEST_PEPPER, withTestDatabase, type TestDatabase } from '../store/helpers.js';

const call = (over: Partial<CallAddressing>): CallAddressing => ({
  requestUser: '*97', requestHost: 'demo.local', toHost: 'demo.local', fromUser: '201', fromHost: 'demo.local',
  assertedUser: undefined, sourceAddress: '127.0.0.1', ...over,
});

describeEachDatabase('call router', (variant) => {
  let t: TestDatabase;
  let router: CallRouter;
  let withDefault: CallRouter;
  beforeAll(async () => {
    t = await withTestDatabase(variant);
    const hasher = new AccessCodeHasher(TEST_PEPPER);
    await seedDemo(t.db, hasher);
    const service = new AccessCodeService({ db: t.db, hasher, logger: silentLogger });
    const opts = {
      db: t.db, trustedPeers: parseTrustedPeers('127.0.0.0/8'),
      hasAccessCode: (d: string, m: string) => service.hasAccessCode(d, m),
    };
    router = new CallRouter({ ...opts, defaultDomain: undefined });
    withDefault = new CallRouter({ ...opts, defaultDomain: 'demo.local' });
  });
  afterAll(async () => { await t?.cleanup(); });

  it('a trusted caller with a mailbox gets the own-mailbox entry', async () => {
    const r = await router.route(call({}));
    expect(r).toMatchObject({ kind: 'routed', call: { domain: { name: 'demo.local' }, trusted: true, actor: '201@demo.local',
      entry: { kind: 'ownMailbox', mailbox: '201', firstTimeSetup: false } } });
  });

  it('control characters and non-domain hosts never reach the store: unknown, not an error', async () => {
    // A NUL (raw, or %00 unescaped by the URI parser) is refused by Postgres in text parameters.
    expect(await router.route(call({ requestHost: 'demo\u0000.local', toHost: undefined, fromHost: undefined }))).toEqual({ kind: 'unknownDomain' });
    expect(await router.route(call({ requestUser: '*9\u00007' }))).toEqual({ kind: 'unknownNumber', domain: 'demo.local' });
    expect(await router.route(call({ requestHost: 'dem o.local', toHost: 'demo.local' }))).toMatchObject({ kind: 'routed' });
    const nulCaller = await router.route(call({ fromUser: '20\u00001' }));
    expect(nulCaller).toMatchObject({ kind: 'routed', call: { entry: { kind: 'accountNumber' } } });
    const untrusted = await router.route(call({ fromUser: 'x\u0000y\r\n', sourceAddress: '192.0.2.1' }));
    expect(untrusted).toMatchObject({ kind: 'routed', call: { actor: 'unverified:x?y??@demo.local via 192.0.2.1' } });
    // A present but unusable P-Asserted-Identity names nobody: no fallback to the From user.
    expect(await router.route(call({ assertedUser: '2\u000002', fromUser: '201' }))).toMatchObject({ kind: 'routed', call: { entry: { kind: 'accountNumber' } } });
  });

  it('P-Asserted-Identity wins over From for a trusted peer', async () => {
    const r = await router.route(call({ assertedUser: '202', fromUser: '201' }));
    expect(r).toMatchObject({ call: { actor: '202@demo.local', entry: { kind: 'ownMailbox', mailbox: '202' } } });
  });

  it('"voicemail" is an access number too', async () => {
    expect(await router.route(call({ requestUser: 'voicemail' }))).toMatchObject({ call: { entry: { kind: 'ownMailbox' } } });
  });

  it('a trusted caller whose mailbox has no code gets first-time setup', async () => {
    const r = await router.route(call({ fromUser: '203' }));
    expect(r).toMatchObject({ call: { entry: { kind: 'ownMailbox', mailbox: '203', firstTimeSetup: true } } });
  });

  it('an untrusted peer is asked for the account number, whatever it claims', async () => {
    const r = await router.route(call({ sourceAddress: '192.0.2.7', assertedUser: '201' }));
    expect(r).toMatchObject({ call: { trusted: false, entry: { kind: 'accountNumber' } } });
    if (r.kind === 'routed') expect(r.call.actor).toBe('unverified:201@demo.local via 192.0.2.7');
  });

  it('a trusted caller without a mailbox is asked for the account number', async () => {
    expect(await router.route(call({ fromUser: '299' }))).toMatchObject({ call: { entry: { kind: 'accountNumber' } } });
  });

  it('the domain is the first known of Request-URI, To, From host', async () => {
    const r = await router.route(call({ requestHost: '127.0.0.1', toHost: 'other.local', fromHost: 'demo.local' }));
    expect(r).toMatchObject({ call: { domain: { name: 'other.local' } } });
    const upper = await router.route(call({ requestHost: 'DEMO.LOCAL' }));
    expect(upper).toMatchObject({ call: { domain: { name: 'demo.local' } } });
  });

  it('no known domain: DEFAULT_DOMAIN, else unknownDomain (404)', async () => {
    const nowhere = { requestHost: '127.0.0.1', toHost: '127.0.0.1', fromHost: 'x.example' };
    expect(await router.route(call(nowhere))).toEqual({ kind: 'unknownDomain' });
    expect(await withDefault.route(call(nowhere))).toMatchObject({ call: { domain: { name: 'demo.local' } } });
  });

  it('a number that is no access number of the domain is unknownNumber (404)', async () => {
    expect(await router.route(call({ requestUser: '5555' }))).toEqual({ kind: 'unknownNumber', domain: 'demo.local' });
    expect(await router.route(call({ requestHost: 'other.local', requestUser: '15550100' })))
      .toEqual({ kind: 'unknownNumber', domain: 'other.local' });
  });

  it('Auto Attendant number, with or without +, gets the menu options', async () => {
    for (const n of ['15550100', '+15550100']) {
      const r = await router.route(call({ requestUser: n }));
      expect(r).toMatchObject({ call: { entry: { kind: 'autoAttendant' } } });
      if (r.kind === 'routed' && r.call.entry.kind === 'autoAttendant') {
        expect([...r.call.entry.options].sort((a, b) => a.digit.localeCompare(b.digit))).toEqual([
          { digit: '0', action: 'transfer', target: '201' },
          { digit: '9', action: 'voicemailLogin' },
        ]);
      }
    }
  });

  it('vm-<mailbox> is the deposit address of a mailbox; an unknown mailbox is an unknown number (404)', async () => {
    const r = await router.route(call({ requestUser: 'vm-201', sourceAddress: '192.0.2.9', fromUser: '5551234', fromDisplayName: 'Pat Caller' }));
    expect(r).toMatchObject({ kind: 'routed', call: { trusted: false, entry: { kind: 'deposit', mailbox: '201' }, caller: { number: '5551234', name: 'Pat Caller' } } });
    expect(await router.route(call({ requestUser: 'vm-290' }))).toMatchObject({ call: { entry: { kind: 'deposit', mailbox: '290' } } });
    expect(await router.route(call({ requestUser: 'vm-999' }))).toEqual({ kind: 'unknownNumber', domain: 'demo.local' });
    // Tenants: other.local's 201 is another mailbox, reached at its own domain.
    expect(await router.route(call({ requestUser: 'vm-201', requestHost: 'other.local', toHost: 'other.local', fromHost: 'other.local' })))
      .toMatchObject({ call: { domain: { name: 'other.local' }, entry: { kind: 'deposit', mailbox: '201' } } });
  });

  it('a call redirected to the voicemail number (Diversion, History-Info) deposits for the extension that did not answer', async () => {
    const diverted = await router.route(call({ fromUser: '5551234', diversion: ['<sip:202@demo.local>;reason=no-answer'] }));
    expect(diverted).toMatchObject({ call: { entry: { kind: 'deposit', mailbox: '202' } } });
    const history = await router.route(call({
      requestUser: 'voicemail',
      historyInfo: ['<sip:201@demo.local>;index=1', '<sip:voicemail@demo.local;target=sip:201%40demo.local;cause=486>;index=1.1'],
    }));
    expect(history).toMatchObject({ call: { entry: { kind: 'deposit', mailbox: '201' } } });
    // For someone without a mailbox: nobody to leave it for.
    expect(await router.route(call({ diversion: ['<sip:299@demo.local>'] }))).toEqual({ kind: 'unknownNumber', domain: 'demo.local' });
    // An Auto Attendant number stays the Auto Attendant.
    expect(await router.route(call({ requestUser: '15550100', diversion: ['<sip:201@demo.local>'] }))).toMatchObject({ call: { entry: { kind: 'autoAttendant' } } });
  });

  it('caller ID: the asserted identity from a trusted peer, the From user otherwise', async () => {
    expect(await router.route(call({ requestUser: 'vm-201', assertedUser: '202', fromUser: '999' }))).toMatchObject({ call: { caller: { number: '202', name: null } } });
    expect(await router.route(call({ requestUser: 'vm-201', sourceAddress: '192.0.2.1', assertedUser: '202', fromUser: '999' }))).toMatchObject({ call: { caller: { number: '999' } } });
  });
});
