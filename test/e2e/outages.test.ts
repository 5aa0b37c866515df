/**
 * What callers hear and what is kept when dependencies misbehave, against a whole server
 * (embedded engine) and the independent test UA:
 *
 * - Postgres unreachable in the middle of a change of access code (a loopback proxy in front of
 *   the real Postgres is taken away inside the change's transaction, after the new hash was
 *   written and before COMMIT): "please try again later", BYE, and nothing half written — the old
 *   code still works, no pin_changed row, no retired hash. New INVITEs meanwhile get 503 with
 *   Retry-After. Postgres back: new calls work without a restart.
 * - Redis unreachable at a login: the login fails closed ("try again later", BYE) and
 *   vmaccess_redis_errors_total counts it; Redis back: a wrong code lands in the mailbox's
 *   failure window in Redis again, and the right code logs in (and clears it).
 * - SIGTERM (server.stop(), what the signal handler calls): a change of code in progress completes
 *   while new INVITEs get 503, then the server stops.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { mailboxKey } from '../../src/guard/login-guard.js';
import { listAuditEvents } from '../../src/store/audit.js';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { createPostgresTestDatabase } from '../integration/store/helpers.js';
import { FlakyProxy } from '../support/flaky-proxy.js';
import { metric } from '../support/metrics.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa, callRejection } from '../support/test-ua.js';
import { pressAndHear, pressAndHearReply } from '../support/heard.js';
import { sleep, waitFor } from '../support/wait.js';

const DATABASE_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;
if (DATABASE_URL === undefined) console.log('outage tests on Postgres skipped: DATABASE_URL is not set');
if (REDIS_URL === undefined) console.log('outage tests on Redis skipped: REDIS_URL is not set');

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
  it('cut inside the change-of-code transaction: "try again later", BYE, nothing half written; back: calls work again', async () => {
    const db = await createPostgresTestDatabase();
    cleanups.push(() => db.drop());
    const { proxy, url: proxiedUrl } = await FlakyProxy.inFrontOf(db.databaseUrl, 5432);
    cleanups.push(() => proxy.close());
    const t = await startTestServer('pglite', { DATABASE_URL: proxiedUrl, PIN_PEPPER: 'outage-test-pepper-0123456789' });
    cleanups.push(() => t.stop());
    const target = targetOf(t);
    const engine = t.server.engine as EmbeddedEngine;
    /** What 201's change would have written: its hash and its history of retired hashes. */
    const written = async (): Promise<{ hash: string; history: number }> => (await t.server.core.db.query<{ hash: string; history: number }>(
      `SELECT c.hash, (SELECT count(*)::int FROM access_code_history h WHERE h.mailbox_id = m.id) AS history
         FROM access_code_credentials c JOIN mailboxes m ON m.id = c.mailbox_id
         JOIN domains d ON d.id = m.domain_id WHERE d.name = 'demo.local' AND m.number = '201'`))[0]!;
    const before = await written();

    // The change transaction (access-code-service.ts changeAccessCode): BEGIN, lock, retire the
    // old hash into the history, upsert the new hash, audit pin_changed, COMMIT. The cut comes
    // when the audit INSERT is sent: the history INSERT and the new hash have been executed in
    // the transaction by then (the client waits for each statement's answer), COMMIT never goes.
    const cut = proxy.cutAt(['BEGIN', 'INSERT INTO access_code_history', 'INSERT INTO access_code_credentials', 'INSERT INTO audit_events']);
    let cutDone = false;
    void cut.then(() => { cutDone = true; });

    const ua = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    try {
      await waitFor(() => ua.received.length > 10, 5000, 'the first prompt');
      await pressAndHearReply(ua, '4826#'); // main menu (login_succeeded goes through the pool, no BEGIN)
      await pressAndHearReply(ua, '2'); // "enter your new access code"
      await pressAndHearReply(ua, '9595#'); // checked against the policy (a store read), "again"
      expect(cutDone).toBe(false);
      // The change itself is cut half-way: the caller is told, and the server hangs up.
      expect(await pressAndHear(ua, '9595#', ['try-again-later', 'access-code-changed', 'goodbye', 'main-menu'])).toBe('try-again-later');
      expect(cutDone).toBe(true);
      await ua.waitForBye(20_000);
      // The failed change is a store error in /metrics.
      const storeErrors = await metric(t, 'vmaccess_store_errors_total');
      expect(storeErrors).toBeGreaterThan(0);
      // Postgres stays away: a new call cannot be routed, 503 with Retry-After, not a hung INVITE,
      // and that failed routing is one more store error.
      const rejected = await callRejection(TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' }));
      expect(rejected.status).toBe(503);
      expect(Number(rejected.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await metric(t, 'vmaccess_store_errors_total')).toBeGreaterThan(storeErrors);
    } finally {
      await ua.hangup().catch(() => 0);
      ua.close();
    }
    expect(t.logs.records().some((r) => r.msg === 'access-code store request failed' && r.operation === 'changeAccessCode')).toBe(true);
    // The connection went while the transaction held it (database.ts), not between two requests.
    expect(t.logs.records().some((r) => r.msg === 'postgres: connection lost during a transaction')).toBe(true);

    await proxy.open(); // Postgres is back; no restart
    // All or nothing: Postgres rolled back what the cut transaction had done — the old hash stands
    // and no hash was retired into the history.
    expect(await written()).toEqual(before);
    const again = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    try {
      await waitFor(() => again.received.length > 10, 5000, 'the first prompt');
      await again.pressKeys('4826#'); // the old code still works
      await waitFor(async () => (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' })).filter((e) => e.event === 'login_succeeded').length === 2, 10_000, 'the second login');
    } finally {
      await again.hangup().catch(() => 0);
      again.close();
    }
    // No pin_changed row: the audit INSERT never reached Postgres, and nothing else was committed.
    expect((await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' })).map((e) => e.event))
      .toEqual(['login_succeeded', 'login_succeeded']);
    await waitFor(() => engine.activeCalls === 0, 10_000);
  }, 90_000);
});

describe.skipIf(REDIS_URL === undefined)('Redis goes away [redis through a proxy]', () => {
  it('a login while Redis is away fails closed with "try again later" (counted in /metrics); back: the counters count again', async () => {
    const { proxy, url: proxiedUrl } = await FlakyProxy.inFrontOf(REDIS_URL!, 6379);
    cleanups.push(() => proxy.close());
    const prefix = `vmaccess-outage-${Date.now()}-${process.pid}:`;
    const t = await startTestServer('pglite', { REDIS_URL: proxiedUrl, REDIS_KEY_PREFIX: prefix });
    cleanups.push(() => t.stop());
    const target = targetOf(t);
    // Straight to Redis, not through the proxy: what the server's counters hold for 202.
    const failuresKey = `${prefix}lockout:${mailboxKey('demo.local', '202')}:failures`;
    const redis = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    cleanups.push(async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    });
    expect(await metric(t, 'vmaccess_redis_errors_total')).toBe(0);

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
    expect(await metric(t, 'vmaccess_redis_errors_total')).toBeGreaterThan(0);
    const redisErrorsDuringOutage = await metric(t, 'vmaccess_redis_errors_total');
    expect(await redis.zcard(failuresKey)).toBe(0);

    await proxy.open();
    const again = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' });
    try {
      await waitFor(() => again.received.length > 10, 5000, 'the first prompt');
      await again.pressKeys('1111#'); // a wrong code is counted again …
      await waitFor(async () => (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).length === 1, 15_000, 'the failure');
      // … in Redis: the mailbox's sliding window holds this one failure (the audit row alone
      // would not show it: a failure is audited even when the counters cannot be reached).
      expect(await redis.zcard(failuresKey)).toBe(1);
      await pressAndHearReply(again, '7391#'); // … and the right one admitted, which clears the window
      await waitFor(async () => (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).length === 2, 15_000, 'the login');
      expect(await redis.zcard(failuresKey)).toBe(0);
    } finally {
      await again.hangup().catch(() => 0);
      again.close();
    }
    expect((await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '202' })).map((e) => e.event))
      .toEqual(['login_failed', 'login_succeeded']);
    // No Redis error once it was back.
    expect(await metric(t, 'vmaccess_redis_errors_total')).toBe(redisErrorsDuringOutage);
  }, 90_000);
});

/** What a test does with a call while the server under it stops (callThroughStop). */
interface CallThroughStop {
  t: TestServer;
  target: { address: string; port: number };
  ua: TestUa;
  /** Begins the server's stop: t.stop(), server.stop() as on SIGTERM, then the temp store goes. */
  stop(): void;
  /** Whether the stop has finished. */
  readonly stopped: boolean;
}

/**
 * A server with SHUTDOWN_GRACE_MS = graceMs and 201 in a call to *97, past the first prompt:
 * `during` stops the server under the call; then the call is hung up and closed, and the stop
 * must finish. Resolves with the (stopped) server, for its logs.
 */
async function callThroughStop(graceMs: string, during: (run: CallThroughStop) => Promise<void>): Promise<TestServer> {
  const t = await startTestServer('pglite', { SHUTDOWN_GRACE_MS: graceMs });
  let stopped = false;
  cleanups.push(async () => { if (!stopped) await t.stop(); });
  const target = targetOf(t);
  const ua = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
  let stopping: Promise<void> | null = null;
  try {
    await waitFor(() => ua.received.length > 10, 5000, 'the first prompt');
    await during({
      t, target, ua,
      stop: () => { stopping = t.stop().then(() => { stopped = true; }); },
      get stopped() { return stopped; },
    });
  } finally {
    await ua.hangup().catch(() => 0);
    ua.close();
  }
  await stopping;
  expect(stopped).toBe(true);
  return t;
}

describe('SIGTERM while a caller changes their code [pglite]', () => {
  it('the change completes, new INVITEs get 503 meanwhile, then the server stops', async () => {
    await callThroughStop('30000', async (run) => {
      const { t, target, ua } = run;
      await pressAndHearReply(ua, '4826#');
      await pressAndHearReply(ua, '2');
      await pressAndHearReply(ua, '9595#');
      run.stop();
      await sleep(100);
      expect((await callRejection(TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' }))).status).toBe(503);
      expect(run.stopped).toBe(false);
      expect(await pressAndHear(ua, '9595#', ['access-code-changed', 'try-again-later', 'access-codes-did-not-match', 'goodbye'])).toBe('access-code-changed');
      await waitFor(async () => (await listAuditEvents(t.server.core.db, { domain: 'demo.local', mailbox: '201' })).some((e) => e.event === 'pin_changed'), 10_000, 'pin_changed');
      await ua.pressKeys('*');
      await ua.waitForBye(15_000);
    });
  }, 90_000);

  it('a call still in the IVR when SHUTDOWN_GRACE_MS runs out gets BYE from the server, then the server stops', async () => {
    const t = await callThroughStop('1500', async (run) => {
      // The caller types nothing: the call would sit in "enter your access code" for longer than
      // the grace, so the only way it ends now is the drain hanging it up.
      run.stop();
      await run.ua.waitForBye(15_000);
      expect(run.stopped).toBe(false); // the server waits for its BYE to be answered first (engine.ts drain)
    });
    const records = t.logs.records();
    expect(records.some((r) => r.msg === 'grace period over: hanging up remaining calls' && r.activeCalls === 1)).toBe(true);
    // Hung up by the server, not by the IVR giving up on a silent caller.
    expect(records.some((r) => r.msg === 'ivr session ended' && r.reason === 'localHangup')).toBe(true);
    expect(records.some((r) => r.msg === 'ivr phase' && r.to === 'goodbye')).toBe(false);
  }, 60_000);
});
