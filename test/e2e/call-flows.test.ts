/**
 * End to end with a real SIP peer: sipp runs the scenarios in sipp-scenarios/ against a whole
 * vmaccess server (embedded SIP/RTP engine, demo tenant) on loopback, on PGlite and — when
 * DATABASE_URL is set — on a fresh Postgres database. Outcomes are checked in the audit trail,
 * not only by sipp's exit code: a scenario can end with the server's BYE for the wrong reason.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/store/audit.js';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { describeEachDatabase } from '../integration/store/helpers.js';
import { runSipp, sippAvailable, type SippOptions } from '../support/sipp.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { expectNoSecretsInLogs } from '../support/secrets.js';
import { waitFor } from '../support/wait.js';

const haveSipp = sippAvailable();

describeEachDatabase('*97 call flows with sipp', (variant) => {
  let t: TestServer;
  const call = (scenario: string, over: Partial<SippOptions> = {}) => runSipp(scenario, {
    target: t.sipTarget, service: '*97', caller: '201', domain: 'demo.local', ...over,
  });
  const events = async (mailbox: string, domain = 'demo.local') =>
    (await listAuditEvents(t.server.core.db, { domain, mailbox })).map((e) => e.event);
  const engine = () => t.server.engine as EmbeddedEngine;

  beforeAll(async () => {
    if (haveSipp) t = await startTestServer(variant);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it.skipIf(!haveSipp)('201 logs in with 4826, changes the code to 9595, and hangs up with *; then only 9595 works', async () => {
    const change = await call('login-change-goodbye.xml');
    expect(change.exitCode, change.errors || change.stdout).toBe(0);
    expect(await events('201')).toEqual(['login_succeeded', 'pin_changed']);

    const next = await call('login-new-code-goodbye.xml');
    expect(next.exitCode, next.errors || next.stdout).toBe(0);
    expect(await events('201')).toEqual(['login_succeeded', 'pin_changed', 'login_succeeded']);

    const old = await call('login-wrong-code-three-times.xml');
    expect(old.exitCode, old.errors || old.stdout).toBe(0);
    expect(await events('201')).toEqual([
      'login_succeeded', 'pin_changed', 'login_succeeded', 'login_failed', 'login_failed', 'login_failed',
    ]);

    const rows = await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' });
    expect(rows.every((r) => r.channel === 'phone' && r.actor === '201@demo.local' && r.callId !== null)).toBe(true);
    expect(JSON.stringify(rows)).not.toMatch(/4826|9595/);
    expectNoSecretsInLogs(t.logs.records(), ['4826', '9595']);
    await waitFor(() => engine().activeCalls === 0 && engine().rtpPortsInUse === 0);
  });

  it.skipIf(!haveSipp)('a caller without a mailbox is asked for the account number (202, 7391)', async () => {
    const r = await call('account-login-goodbye.xml', { caller: '299' });
    expect(r.exitCode, r.errors || r.stdout).toBe(0);
    expect(await events('202')).toEqual(['login_succeeded']);
    const [row] = await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' });
    expect(row?.actor).toBe('299@demo.local');
  });

  it.skipIf(!haveSipp)('the caller hanging up mid-prompt frees the call and its RTP ports', async () => {
    const r = await call('caller-hangs-up-mid-prompt.xml');
    expect(r.exitCode, r.errors || r.stdout).toBe(0);
    await waitFor(() => engine().activeCalls === 0 && engine().rtpPortsInUse === 0);
  });

  it.skipIf(!haveSipp)('a number that is no access number of the domain gets 404, an offer without G.711 gets 488', async () => {
    const unknown = await call('unknown-number.xml', { service: '5555' });
    expect(unknown.exitCode, unknown.errors || unknown.stdout).toBe(0);
    const otherDomain = await call('unknown-number.xml', { domain: 'other.local', service: '15550100' });
    expect(otherDomain.exitCode, otherDomain.errors || otherDomain.stdout).toBe(0);
    const codec = await call('no-common-codec.xml');
    expect(codec.exitCode, codec.errors || codec.stdout).toBe(0);
    expect(engine().rtpPortsInUse).toBe(0);
  });

  it.skipIf(!haveSipp)('a malformed INVITE gets 400 and the server goes on serving', async () => {
    const bad = await call('malformed-content-length.xml');
    expect(bad.exitCode, bad.errors || bad.stdout).toBe(0);
    const options = await call('options.xml');
    expect(options.exitCode, options.errors || options.stdout).toBe(0);
  });
});

describeEachDatabase('CANCEL before answer', (variant) => {
  let t: TestServer;
  beforeAll(async () => {
    // The server rings for 3 s before answering, so the CANCEL surely arrives first.
    if (haveSipp) t = await startTestServer(variant, { ANSWER_DELAY_MS: '3000' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it.skipIf(!haveSipp)('CANCEL after 180 Ringing: 200 to the CANCEL, 487 to the INVITE, nothing left behind', async () => {
    const r = await runSipp('cancel-before-answer.xml', {
      target: t.sipTarget, service: '*97', caller: '201', domain: 'demo.local',
    });
    expect(r.exitCode, r.errors || r.stdout).toBe(0);
    const engine = t.server.engine as EmbeddedEngine;
    await waitFor(() => engine.rtpPortsInUse === 0 && engine.activeCalls === 0, 6000);
    expect(await listAuditEvents(t.server.core.db, { domain: 'demo.local' })).toEqual([]);
  });
});
