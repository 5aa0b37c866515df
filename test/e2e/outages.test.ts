/**
 * What callers hear and what is kept when dependencies misbehave, against a whole server
 * (embedded engine) and the independent test UA:
 *
 * - Postgres unreachable in the middle of a change of access code (a loopback proxy in front of
 *   the real Postgres is taken away): "please try again later", BYE, and nothing half written —
 *   the old code still works, no pin_changed row. New INVITEs meanwhile get 503. Postgres back:
 *   new calls work without a restart.
 * - Redis unreachable at a login: the login fails closed ("try again later", BYE); Redis back:
 *   the next call logs in and the counters count again.
 * - SIGTERM (server.stop(), what the signal handler calls): a change of code in progress completes
 *   while new INVITEs get 503, then the server stops.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../src/store/audit.js';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { createPostgresTestDatabase } from '../integration/store/helpers.js';
import { FlakyProxy } from '../support/flaky-proxy.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa, TestUaCallRejectedError } from '../support/test-ua.js';
import { heard, speechAfter } from '../support/heard.js';
import { sleep, waitFor } from '../support/wait.js';

const DATABASE_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;
if (DATABASE_URL === undefined) console.log('outage tests on Postgres skipped: DATABASE_URL is not set');
if (REDIS_URL === undefined) console.log('outage tests on Redis skipped: REDIS_URL is not set');

/** Presses keys and waits until the server answers with a new prompt (speech after the last key). */
async function pressAndHearReply(ua: TestUa, keys: string): Promise<void> {
  await ua.pressKeys(keys.slice(0, -1));
  await sleep(100);
  const before = performance.now();
  await ua.pressKeys(keys.slice(-1));
  await speechAfter(ua, before);
}

/**
 * Presses keys and says which of `candidates` the caller heard after the last one. The clock
 * starts before the last key only: the first keys cut the prompt that was playing, whose last
 * packets are still on their way.
 */
async function pressAndHear(ua: TestUa, keys: string, candidates: Parameters<typeof heard>[2]): Promise<string> {
  await ua.pressKeys(keys.slice(0, -1));
  await sleep(100);
  const before = performance.now();
  await ua.pressKeys(keys.slice(-1));
  const ranked = await heard(ua, before, candidates);
  expect(ranked[0]![1], JSON.stringify(ranked)).toBeGreaterThan(0.9);
  return ranked[0]![0];
}

async function rejectedStatus(p: Promise<TestUa>): Promise<number> {
  try {
    const ua = await p;
    await ua.hangup().catch(() => 0);
    ua.close();
    return 200;
  } catch (err) {
    if (err instanceof TestUaCallRejectedError) return err.status;
    throw err;
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});
afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

function targetOf(t: TestServer): { address: string; port: number } {
  const [address, port] = t.sipTarget.split(':');
  return { address: address!, port: Number(port) };
}

describe.skipIf(DATABASE_URL === undefined)('Postgres goes away mid-call [postgres through a proxy]', () => {
  it('a change of code in progress: "try again later", BYE, nothing half written; back: calls work again', async () => {
    const db = await createPostgresTestDatabase();
    cleanups.push(() => db.drop());
    const upstream = new URL(db.databaseUrl);
    const proxy = new FlakyProxy({ host: upstream.hostname, port: Number(upstream.port || 5432) });
    await proxy.open();
    cleanups.push(() => proxy.close());
    const proxied = new URL(db.databaseUrl);
    proxied.port = String(proxy.port);
    const t = await startTestServer('pglite', { DATABASE_URL: proxied.toString(), PIN_PEPPER: 'outage-test-pepper-0123456789' });
    cleanups.push(() => t.stop());
    const target = targetOf(t);
    const engine = t.server.engine as EmbeddedEngine;
    const credential = async (): Promise<string> => (await t.server.core.db.query<{ hash: string }>(
      `SELECT c.hash FROM access_code_credentials c JOIN mailboxes m ON m.id = c.mailbox_id
        JOIN domains d ON d.id = m.domain_id WHERE d.name = 'demo.local' AND m.number = '201'`))[0]!.hash;
    const hashBefore = await credential();

    const ua = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    try {
      await waitFor(() => ua.received.length > 10, 5000, 'the first prompt');
      await pressAndHearReply(ua, '4826#'); // main menu
      await pressAndHearReply(ua, '2'); // "enter your new access code"
      await pressAndHearReply(ua, '9595#'); // checked against the policy (a store read), "again"
      await proxy.close(); // Postgres is gone
      // The change itself fails: the caller is told, and the server hangs up.
      expect(await pressAndHear(ua, '9595#', ['try-again-later', 'access-code-changed', 'goodbye', 'main-menu'])).toBe('try-again-later');
      await ua.waitForBye(20_000);
      // Meanwhile a new call cannot be routed: 503 with Retry-After, not a hung INVITE.
      expect(await rejectedStatus(TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' }))).toBe(503);
    } finally {
      await ua.hangup().catch(() => 0);
      ua.close();
    }
    expect(t.logs.records().some((r) => r.msg === 'access-code store request failed' && r.operation === 'changeAccessCode')).toBe(true);

    await proxy.open(); // Postgres is back; no restart
    expect(await credential()).toBe(hashBefore); // all or nothing: the old code stands
    const again = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    try {
      await waitFor(() => again.received.length > 10, 5000, 'the first prompt');
      await again.pressKeys('4826#');
      await waitFor(async () => (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' })).filter((e) => e.event === 'login_succeeded').length === 2, 10_000, 'the second login');
    } finally {
      await again.hangup().catch(() => 0);
      again.close();
    }
    expect((await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' })).map((e) => e.event))
      .toEqual(['login_succeeded', 'login_succeeded']);
    await waitFor(() => engine.activeCalls === 0, 10_000);
  }, 90_000);
});

describe.skipIf(REDIS_URL === undefined)('Redis goes away [redis through a proxy]', () => {
  it('a login while Redis is away fails closed with "try again later"; back: the next call logs in', async () => {
    const upstream = new URL(REDIS_URL!);
    const proxy = new FlakyProxy({ host: upstream.hostname, port: Number(upstream.port || 6379) });
    await proxy.open();
    cleanups.push(() => proxy.close());
    const proxied = new URL(REDIS_URL!);
    proxied.port = String(proxy.port);
    const t = await startTestServer('pglite', { REDIS_URL: proxied.toString(), REDIS_KEY_PREFIX: `vmaccess-outage-${Date.now()}:` });
    cleanups.push(() => t.stop());
    const target = targetOf(t);

    await proxy.close();
    const ua = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' });
    try {
      await waitFor(() => ua.received.length > 10, 5000, 'the first prompt');
      expect(await pressAndHear(ua, '7391#', ['try-again-later', 'main-menu', 'login-incorrect', 'goodbye'])).toBe('try-again-later');
      await ua.waitForBye(20_000);
    } finally {
      await ua.hangup().catch(() => 0);
      ua.close();
    }
    // The right code was not let in, and no success was recorded.
    expect((await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).map((e) => e.event)).toEqual([]);
    expect(t.logs.records().some((r) => r.msg === 'failed-login counters unavailable: login refused (fail closed)')).toBe(true);

    await proxy.open();
    const again = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' });
    try {
      await waitFor(() => again.received.length > 10, 5000, 'the first prompt');
      await again.pressKeys('1111#'); // a wrong code is counted again …
      await waitFor(async () => (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).length === 1, 15_000, 'the failure');
      await pressAndHearReply(again, '7391#'); // … and the right one admitted
      await waitFor(async () => (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).length === 2, 15_000, 'the login');
    } finally {
      await again.hangup().catch(() => 0);
      again.close();
    }
    expect((await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).map((e) => e.event))
      .toEqual(['login_failed', 'login_succeeded']);
  }, 90_000);
});

describe('SIGTERM while a caller changes their code [pglite]', () => {
  it('the change completes, new INVITEs get 503 meanwhile, then the server stops', async () => {
    const t = await startTestServer('pglite', { SHUTDOWN_GRACE_MS: '30000' });
    let stopped = false;
    cleanups.push(async () => { if (!stopped) await t.stop(); });
    const target = targetOf(t);
    const ua = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    let stopping: Promise<void> | null = null;
    try {
      await waitFor(() => ua.received.length > 10, 5000, 'the first prompt');
      await pressAndHearReply(ua, '4826#');
      await pressAndHearReply(ua, '2');
      await pressAndHearReply(ua, '9595#');
      stopping = t.stop().then(() => { stopped = true; }); // t.stop(): server.stop() as on SIGTERM, then the temp store goes
      await sleep(100);
      expect(await rejectedStatus(TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' }))).toBe(503);
      expect(stopped).toBe(false);
      expect(await pressAndHear(ua, '9595#', ['access-code-changed', 'try-again-later', 'access-codes-did-not-match', 'goodbye'])).toBe('access-code-changed');
      await waitFor(async () => (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' })).some((e) => e.event === 'pin_changed'), 10_000, 'pin_changed');
      await ua.pressKeys('*');
      await ua.waitForBye(15_000);
    } finally {
      await ua.hangup().catch(() => 0);
      ua.close();
    }
    await stopping;
    expect(stopped).toBe(true);
  }, 90_000);
});
