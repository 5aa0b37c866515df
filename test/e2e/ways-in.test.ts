/**
 * Every way into a mailbox (issue 4), end to end with real sipp against a whole vmaccess server
 * (embedded SIP/RTP engine, demo tenant): the voicemail key, the Auto Attendant with its
 * account-number login and its REFER transfer, trusted and untrusted peers, first-time setup,
 * tenant isolation and a shared mailbox. Each outcome is read back from the audit trail, by the
 * Call-ID of the sipp call, so calls can run side by side without their rows getting mixed up.
 *
 * The server trusts 127.0.0.1 only (TRUSTED_SIP_PEERS=127.0.0.1/32); sipp binds 127.0.0.2 to be
 * an untrusted peer (all of 127.0.0.0/8 is loopback on Linux).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listAuditEvents, type AuditEvent } from '../../src/store/audit.js';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { describeEachDatabase } from '../integration/store/helpers.js';
import { runSipp, sippAvailable, sippReport, type SippOptions } from '../support/sipp.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { expectNoSecretsInLogs } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

const haveSipp = sippAvailable();
const UNTRUSTED = '127.0.0.2';
const DOMAINS = ['demo.local', 'other.local'] as const;

/** One audit row in a form that reads well in a failed assertion. */
type Row = [domain: string, mailbox: string, event: string, actor: string];

describeEachDatabase('every way in, with sipp', (variant) => {
  let t: TestServer;

  const engine = (): EmbeddedEngine => t.server.engine as EmbeddedEngine;
  const allEvents = async (): Promise<AuditEvent[]> =>
    (await Promise.all(DOMAINS.map((domain) => listAuditEvents(t.server.core.db, { domain })))).flat();
  /** The audit rows of one call (both domains), oldest first. */
  async function rowsOf(callId: string): Promise<Row[]> {
    return (await allEvents())
      .filter((r) => r.callId === callId)
      .map((r) => [r.domain, r.mailbox, r.event, r.actor]);
  }
  /** Runs one sipp call that must pass; returns its Call-ID. */
  async function call(scenario: string, over: Partial<SippOptions> = {}): Promise<string> {
    const run = await runSipp(scenario, {
      target: t.sipTarget, service: '*97', caller: '201', domain: 'demo.local', messageTrace: true, ...over,
    });
    expect(run.exitCode, `${scenario}: ${sippReport(run)}`).toBe(0);
    expect(run.callId, 'Call-ID in the trace').not.toBeNull();
    return run.callId!;
  }
  const idle = (): Promise<void> => waitFor(() => engine().activeCalls === 0 && engine().rtpPortsInUse === 0);

  beforeAll(async () => {
    if (haveSipp) t = await startTestServer(variant, { TRUSTED_SIP_PEERS: '127.0.0.1/32' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it.skipIf(!haveSipp)('voicemail key: "voicemail" works like *97; Auto Attendant 15550100 / +15550100 → 9 → 202 → 7391', async () => {
    const [voicemail, star97, aa, aaPlus, aaInvalid] = await Promise.all([
      call('login-202-goodbye.xml', { service: 'voicemail', caller: '202' }),
      call('login-202-goodbye.xml', { service: '*97', caller: '202' }),
      call('aa-voicemail-login-goodbye.xml', { service: '15550100', caller: '299' }),
      call('aa-voicemail-login-goodbye.xml', { service: '+15550100', caller: '299' }),
      // An invalid option (5) replays the menu; 9 then works as before.
      call('aa-invalid-option-then-login.xml', { service: '15550100', caller: '201' }),
    ]);
    expect(await rowsOf(voicemail)).toEqual([['demo.local', '202', 'login_succeeded', '202@demo.local']]);
    expect(await rowsOf(star97)).toEqual([['demo.local', '202', 'login_succeeded', '202@demo.local']]);
    expect(await rowsOf(aa)).toEqual([['demo.local', '202', 'login_succeeded', '299@demo.local']]);
    expect(await rowsOf(aaPlus)).toEqual([['demo.local', '202', 'login_succeeded', '299@demo.local']]);
    expect(await rowsOf(aaInvalid)).toEqual([['demo.local', '202', 'login_succeeded', '201@demo.local']]);
    await idle();
  }, 60_000);

  it.skipIf(!haveSipp)('Auto Attendant option 0 sends REFER to sip:201@demo.local: accepted → BYE; refused (603, 405) → menu again', async () => {
    // The scenarios check Refer-To. Accepted: the call fails unless the server's BYE follows
    // our 202. Refused: "transfer failed" and the menu, where 9, 202#, 7391# must log in.
    const [accepted, declined, notAllowed] = await Promise.all([
      call('aa-transfer-accepted.xml', { service: '15550100', caller: '299' }),
      call('aa-transfer-declined.xml', { service: '15550100', caller: '299' }),
      call('aa-transfer-not-allowed.xml', { service: '+15550100', caller: '299' }),
    ]);
    expect(await rowsOf(accepted)).toEqual([]);
    expect(await rowsOf(declined)).toEqual([['demo.local', '202', 'login_succeeded', '299@demo.local']]);
    expect(await rowsOf(notAllowed)).toEqual([['demo.local', '202', 'login_succeeded', '299@demo.local']]);
    await idle();
  }, 60_000);

  it.skipIf(!haveSipp)('trust: P-Asserted-Identity counts from a trusted peer only; an untrusted peer must give the account number', async () => {
    const [asserted, untrusted, codeOnly, unset] = await Promise.all([
      // Trusted (127.0.0.1): From 299, asserted 201 → 201's own mailbox, code only.
      call('asserted-login-goodbye.xml', { caller: '299', keys: { asserted: '201' } }),
      // Untrusted (127.0.0.2) as 201 with P-Asserted-Identity 201: 201#, 4826#.
      call('asserted-account-login-goodbye.xml', { caller: '201', keys: { asserted: '201' }, localAddress: UNTRUSTED }),
      // Untrusted, only the code: 4826# is taken as an account number, the second 4826# as the
      // code for that nonexistent mailbox. No login to 201.
      call('asserted-code-only.xml', { caller: '201', keys: { asserted: '201' }, localAddress: UNTRUSTED }),
      // A mailbox without a code (203) reached by account number (caller 299 has no mailbox):
      // "login incorrect" — no one can claim an unset mailbox from outside (first-time setup below).
      call('account-203-three-times.xml', { caller: '299' }),
    ]);
    expect(await rowsOf(asserted)).toEqual([['demo.local', '201', 'login_succeeded', '201@demo.local']]);

    const untrustedRows = await rowsOf(untrusted);
    expect(untrustedRows.map(([d, m, e]) => [d, m, e])).toEqual([['demo.local', '201', 'login_succeeded']]);
    expect(untrustedRows[0]![3]).toBe('unverified:201@demo.local via 127.0.0.2');

    // That call ended with our BYE; the failed login may be written a moment later.
    await waitFor(async () => (await rowsOf(codeOnly)).length > 0);
    expect(await rowsOf(codeOnly)).toEqual([['demo.local', '4826', 'login_failed', 'unverified:201@demo.local via 127.0.0.2']]);
    expect(await rowsOf(unset)).toEqual([
      ['demo.local', '203', 'login_failed', '299@demo.local'],
      ['demo.local', '203', 'login_failed', '299@demo.local'],
      ['demo.local', '203', 'login_failed', '299@demo.local'],
    ]);
    await idle();
  }, 60_000);

  it.skipIf(!haveSipp)('first-time setup: 203 (no code yet, refused from outside above) chooses 2580, then logs in with it', async () => {
    const setup = await call('first-code-goodbye.xml', { caller: '203' });
    expect(await rowsOf(setup)).toEqual([['demo.local', '203', 'pin_set', '203@demo.local']]);

    const login = await call('login-2580-goodbye.xml', { caller: '203' });
    expect(await rowsOf(login)).toEqual([['demo.local', '203', 'login_succeeded', '203@demo.local']]);
    expect((await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '203' })).map((r) => r.event))
      .toEqual(['login_failed', 'login_failed', 'login_failed', 'pin_set', 'login_succeeded']);
    expectNoSecretsInLogs(t.logs.records(), ['2580']);
  }, 60_000);

  it.skipIf(!haveSipp)('tenant isolation (201 at other.local: 4826 fails, 1357 works) and the shared mailbox 290', async () => {
    const [wrong, right, shared] = await Promise.all([
      call('login-wrong-code-three-times.xml', { caller: '201', domain: 'other.local' }),
      call('login-1357-goodbye.xml', { caller: '201', domain: 'other.local' }),
      call('account-290-login-goodbye.xml', { caller: '299' }),
    ]);
    // demo.local 201's code, at other.local's 201: refused three times; nothing in demo.local.
    expect(await rowsOf(wrong)).toEqual([
      ['other.local', '201', 'login_failed', '201@other.local'],
      ['other.local', '201', 'login_failed', '201@other.local'],
      ['other.local', '201', 'login_failed', '201@other.local'],
    ]);
    expect(await rowsOf(right)).toEqual([['other.local', '201', 'login_succeeded', '201@other.local']]);
    expect(await rowsOf(shared)).toEqual([['demo.local', '290', 'login_succeeded', '299@demo.local']]);
    await idle();
  }, 60_000);
});
