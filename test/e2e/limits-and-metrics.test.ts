/**
 * Limits that keep one caller from taking the server, and what /metrics reports, against a whole
 * server (embedded engine, PGlite) with the independent test UA: MAX_CALLS → 503 with
 * Retry-After, the per-source INVITE rate for untrusted sources (127.0.0.2 here) → 503 with
 * Retry-After, a key flood cut per call while another call goes on, an INFO flood whose SIP
 * transactions all end, and the counters that only move when something goes wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { DEFAULT_TIMERS } from '../../src/telephony/embedded/sip/index.js';
import { pressAndHear } from '../support/heard.js';
import { sample } from '../support/metrics.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa, TestUaCallRejectedError, callOutcome, callRejection } from '../support/test-ua.js';
import { waitFor } from '../support/wait.js';

/** Retry-After (RFC 3261 §20.33) of a 503: delta-seconds, at least one. */
function retryAfterOf(rejection: TestUaCallRejectedError): number {
  const value = rejection.headers.get('retry-after');
  expect(value, `Retry-After on ${rejection.status}`).toMatch(/^\d+$/);
  return Number(value);
}

describe('limits and /metrics [pglite]', () => {
  let t: TestServer;
  let target: { address: string; port: number };
  const engine = (): EmbeddedEngine => t.server.engine as EmbeddedEngine;
  const metrics = async (): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${t.server.http.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.text();
  };

  beforeAll(async () => {
    t = await startTestServer('pglite', {
      TRUSTED_SIP_PEERS: '127.0.0.1/32', MAX_CALLS: '2', INVITE_RATE_PER_SOURCE: '1', INVITE_BURST_PER_SOURCE: '2',
    });
    const [address, port] = t.sipTarget.split(':');
    target = { address: address!, port: Number(port) };
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('MAX_CALLS=2: a third call gets 503 with Retry-After; once one ends, calls are taken again', async () => {
    const a = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    const b = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' });
    try {
      const third = await callOutcome(TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:204@demo.local' }));
      expect(third).toBeInstanceOf(TestUaCallRejectedError);
      expect((third as TestUaCallRejectedError).status).toBe(503);
      // RFC 3261 §21.5.4: "The server MAY indicate when the client should retry the request in a Retry-After header field."
      expect(retryAfterOf(third as TestUaCallRejectedError)).toBeGreaterThanOrEqual(1);
      await a.hangup();
      await waitFor(() => engine().activeCalls === 1, 5000, 'one call left');
      const c = await callOutcome(TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:204@demo.local' }));
      expect(c).toBeInstanceOf(TestUa);
      await (c as TestUa).hangup();
      (c as TestUa).close();
    } finally {
      a.close();
      await b.hangup().catch(() => 0);
      b.close();
    }
    await waitFor(() => engine().activeCalls === 0, 8000);
    expect(sample(await metrics(), 'vmaccess_invites_rejected_total{status="503"}')).toBeGreaterThanOrEqual(1);
  });

  it('an untrusted source over INVITE_RATE_PER_SOURCE gets 503 with Retry-After; a trusted one is not limited', async () => {
    const untrusted = await Promise.all([1, 2, 3].map(() => callOutcome(TestUa.call({
      target, requestUri: 'sip:5555@demo.local', from: 'sip:scanner@example.net', localAddress: '127.0.0.2',
    }))));
    // Every one is refused (5555 is no access number): two by routing, one by the rate limit.
    const rejections = untrusted.filter((o): o is TestUaCallRejectedError => o instanceof TestUaCallRejectedError);
    expect(rejections.map((r) => r.status).sort()).toEqual([404, 404, 503]);
    // The refused source is told when its bucket has a token again: at 1 INVITE/s, within a second or two.
    const limited = rejections.find((r) => r.status === 503)!;
    expect(retryAfterOf(limited)).toBeGreaterThanOrEqual(1);
    expect(retryAfterOf(limited)).toBeLessThanOrEqual(2);
    const trusted = await Promise.all([1, 2, 3, 4].map(async () => (await callRejection(TestUa.call({
      target, requestUri: 'sip:5555@demo.local', from: 'sip:201@demo.local',
    }))).status));
    expect(trusted).toEqual([404, 404, 404, 404]);
  });

  it('a key flood on one call is cut (counted in /metrics); a second call at the same time logs in and hears its menu', async () => {
    const flooded = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    const other = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' });
    try {
      await waitFor(() => other.received.length > 10, 5000, 'the first prompt on the other call');
      const before = sample(await metrics(), 'vmaccess_dtmf_dropped_total');
      const flood = flooded.pressKeys('1'.repeat(60), { gapMs: 0, durationMs: 20 });
      // While the flood runs, the other caller types their code: every key of it counts (the
      // limit is per call), and the answer is the main menu, not "incorrect" or silence.
      const [answer] = await Promise.all([pressAndHear(other, '7391#', ['main-menu', 'login-incorrect', 'goodbye', 'try-again-later']), flood]);
      expect(answer).toBe('main-menu');
      await waitFor(async () => sample(await metrics(), 'vmaccess_dtmf_dropped_total') > before, 5000, 'dropped keys');
      // The other call ends as any call does: "*" → goodbye → the server's BYE.
      await other.pressKeys('*');
      await other.waitForBye(10_000);
      // The flooded call is not hung up for it either.
      expect(flooded.byeReceived).toBe(false);
      expect(engine().activeCalls).toBe(1);
    } finally {
      await flooded.hangup().catch(() => 0);
      flooded.close();
      await other.hangup().catch(() => 0);
      other.close();
    }
    expect(sample(await metrics(), 'vmaccess_logins_total{outcome="succeeded"}')).toBeGreaterThanOrEqual(1);
  });

  it('/metrics reports calls, logins, keys by method, RTP and process figures, and no digits', async () => {
    const ua = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:204@demo.local' });
    try {
      await waitFor(() => ua.received.length > 5, 5000, 'audio');
      await ua.pressKeys('5150#');
      await waitFor(async () => sample(await metrics(), 'vmaccess_logins_total{outcome="succeeded"}') >= 1, 8000, 'the login');
      const live = await metrics();
      expect(sample(live, 'vmaccess_active_calls')).toBe(1);
      expect(sample(live, 'vmaccess_rtp_packets_sent_total')).toBeGreaterThan(0);
      await ua.sendInfo('*');
      await ua.waitForBye(10_000);
    } finally {
      await ua.hangup().catch(() => 0);
      ua.close();
    }
    await waitFor(() => engine().activeCalls === 0, 8000);
    const text = await metrics();
    expect(sample(text, 'vmaccess_calls_total{outcome="ended_by_server"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'vmaccess_dtmf_total{method="rfc4733"}')).toBeGreaterThanOrEqual(5);
    expect(sample(text, 'vmaccess_dtmf_total{method="info"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'vmaccess_logins_total{outcome="failed"}')).toBe(0);
    expect(sample(text, 'vmaccess_lockouts_total')).toBe(0);
    expect(sample(text, 'vmaccess_store_errors_total')).toBe(0);
    expect(sample(text, 'vmaccess_redis_errors_total')).toBe(0);
    expect(sample(text, 'vmaccess_active_calls')).toBe(0);
    expect(text).toMatch(/^vmaccess_process_resident_memory_bytes \d+/m);
    // Late media clock ticks are exported (how many there were depends on the machine's load).
    expect(sample(text, 'vmaccess_rtp_late_ticks_total')).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^# TYPE vmaccess_rtp_late_ticks_total counter$/m);
    // Labels are outcomes, statuses and methods only: no mailbox, domain or digit ever becomes one.
    const labelNames = new Set([...text.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/(\w+)="/g)].map((l) => l[1]!)));
    for (const name of labelNames) expect(['outcome', 'status', 'method', 'version', 'major', 'minor', 'patch', 'space', 'kind', 'type', 'le']).toContain(name);
  });
  it('an INFO flood in a call: keys over the per-call rate are dropped, and every INFO transaction still ends (Timer J)', async () => {
    const ua = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    const before = sample(await metrics(), 'vmaccess_dtmf_dropped_total');
    try {
      // Each INFO is a non-INVITE server transaction before the session sees its key (RFC 3261
      // §17.2.2); each is answered 200 whether or not the key is kept (RFC 6086 §4.2.2: a 200
      // says the INFO was received, not what was done with it).
      const statuses = await Promise.all(Array.from({ length: 40 }, () => ua.sendInfo('1')));
      expect(statuses).toEqual(Array(40).fill(200));
      await waitFor(async () => sample(await metrics(), 'vmaccess_dtmf_dropped_total') > before, 5000, 'dropped keys');
      // Over UDP they linger in Completed to absorb retransmissions, 64*T1 each.
      expect(engine().sipStats.serverTransactions).toBeGreaterThanOrEqual(40);
      expect(ua.byeReceived).toBe(false);
    } finally {
      await ua.hangup().catch(() => 0);
      ua.close();
    }
    // Timer J (64*T1 for UDP) ends each of them: nothing of the flood stays behind.
    await waitFor(() => engine().sipStats.serverTransactions === 0, 64 * DEFAULT_TIMERS.T1 + 8000, 'the INFO transactions to end');
    expect(engine().sipStats).toEqual({ serverTransactions: 0, clientTransactions: 0, dialogs: 0 });
    expect(engine().activeCalls).toBe(0);
  }, 64 * DEFAULT_TIMERS.T1 + 20_000);

  it('vmaccess_lockouts_total counts a mailbox locked by ten failed logins', async () => {
    // The lock through the phone is lockout.test.ts's (sipp, four calls); here the same service
    // the call sessions use takes the ten failures, and /metrics must show the one lock.
    expect(sample(await metrics(), 'vmaccess_lockouts_total')).toBe(0);
    const ctx = { channel: 'phone' as const, actor: 'unverified:test@example.net via 127.0.0.9', callId: 'lockout-metric@127.0.0.1', loginSource: undefined };
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await t.server.core.accessCodes.verifyLogin('demo.local', '290', '0000', ctx));
    expect(results.every((r) => r.result === 'rejected')).toBe(true);
    // Locked: even the right code is refused now.
    expect((await t.server.core.accessCodes.verifyLogin('demo.local', '290', '6042', ctx)).result).toBe('rejected');
    const text = await metrics();
    expect(sample(text, 'vmaccess_lockouts_total')).toBe(1);
    expect(sample(text, 'vmaccess_logins_total{outcome="failed"}')).toBeGreaterThanOrEqual(10);
    expect(sample(text, 'vmaccess_logins_total{outcome="refused_locked"}')).toBe(1);
  });
});
