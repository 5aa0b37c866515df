/**
 * Limits that keep one caller from taking the server, and what /metrics reports, against a whole
 * server (embedded engine, PGlite) with the independent test UA: MAX_CALLS → 503, the
 * per-source INVITE rate for untrusted sources (127.0.0.2 here) → 503, a key flood cut per call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa, TestUaCallRejectedError } from '../support/test-ua.js';
import { waitFor } from '../support/wait.js';

async function statusOf(p: Promise<TestUa>): Promise<number | TestUa> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof TestUaCallRejectedError) return err.status;
    throw err;
  }
}

/** The value of one sample line of the Prometheus text, e.g. `vmaccess_logins_total{outcome="succeeded"}`. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no ${series} in /metrics`);
  return Number(line.slice(series.length + 1));
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

  it('MAX_CALLS=2: a third call gets 503; once one ends, calls are taken again', async () => {
    const a = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    const b = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local' });
    try {
      expect(await statusOf(TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:204@demo.local' }))).toBe(503);
      await a.hangup();
      await waitFor(() => engine().activeCalls === 1, 5000, 'one call left');
      const c = await statusOf(TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:204@demo.local' }));
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

  it('an untrusted source over INVITE_RATE_PER_SOURCE gets 503; a trusted one is not limited', async () => {
    const untrusted = await Promise.all([1, 2, 3].map(() => statusOf(TestUa.call({
      target, requestUri: 'sip:5555@demo.local', from: 'sip:scanner@example.net', localAddress: '127.0.0.2',
    }))));
    expect(untrusted.sort()).toEqual([404, 404, 503]);
    const trusted = await Promise.all([1, 2, 3, 4].map(() => statusOf(TestUa.call({
      target, requestUri: 'sip:5555@demo.local', from: 'sip:201@demo.local',
    }))));
    expect(trusted).toEqual([404, 404, 404, 404]);
  });

  it('a key flood on one call is cut (counted in /metrics); the call and the server go on', async () => {
    const ua = await TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local' });
    try {
      const before = sample(await metrics(), 'vmaccess_dtmf_dropped_total');
      await ua.pressKeys('1'.repeat(60), { gapMs: 0, durationMs: 20 });
      await waitFor(async () => sample(await metrics(), 'vmaccess_dtmf_dropped_total') > before, 5000, 'dropped keys');
      expect(ua.byeReceived).toBe(false);
      expect(engine().activeCalls).toBe(1);
    } finally {
      await ua.hangup().catch(() => 0);
      ua.close();
    }
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
    // Labels are outcomes, statuses and methods only: no mailbox, domain or digit ever becomes one.
    const labelNames = new Set([...text.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/(\w+)="/g)].map((l) => l[1]!)));
    for (const name of labelNames) expect(['outcome', 'status', 'method', 'version', 'major', 'minor', 'patch', 'space', 'kind', 'type', 'le']).toContain(name);
  });
});
