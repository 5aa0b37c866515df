/**
 * The benchmark's own tools, run small against a whole server so `npm run bench` cannot rot
 * unnoticed between runs: the load UA (bench/load-ua.ts) places calls, presses RFC 4733 keys,
 * times RTP arrivals and prompt stops, and gets the server's BYE; the histogram's percentiles
 * are exact to its bucket. No timing is asserted — only that each measurement was taken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Histogram } from '../../bench/histogram.js';
import { LoadUa, type LoadCall } from '../../bench/load-ua.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { waitFor } from '../support/wait.js';

describe('Histogram', () => {
  it('gives percentiles to the bucket and keeps the true maximum past its range', () => {
    const h = new Histogram(100, 0.1);
    for (let i = 1; i <= 100; i++) h.add(i / 10); // 0.1 … 10.0 ms
    expect(h.count).toBe(100);
    expect(h.percentile(0.5)).toBeCloseTo(5.0, 5);
    expect(h.percentile(0.99)).toBeCloseTo(9.9, 5);
    h.add(250);
    expect(h.max).toBe(250);
    expect(h.percentile(1)).toBe(250);
    const other = new Histogram(100, 0.1);
    other.add(1);
    h.merge(other);
    expect(h.count).toBe(102);
  });
});

describe('bench load UA against a running server [pglite]', () => {
  let t: TestServer;
  let ua: LoadUa;

  beforeAll(async () => {
    t = await startTestServer('pglite', { LOG_LEVEL: 'warn' });
    const [address, port] = t.sipTarget.split(':');
    ua = await LoadUa.start({ address: address!, port: Number(port) });
  });
  afterAll(async () => {
    ua?.close();
    await t?.stop();
  });

  it('five calls log in with 4826#, say goodbye with *, and each gets the server\'s BYE', async () => {
    ua.measuring = true;
    const calls: LoadCall[] = [];
    for (let i = 0; i < 5; i++) calls.push(ua.call({ from: '201', service: '*97', keys: '4826#*', firstKeyAfterMs: 300 }));
    expect(await Promise.all(calls.map((c) => c.answered))).toEqual([true, true, true, true, true]);
    await Promise.all(calls.map((c) => c.ended));
    ua.measuring = false;
    for (const c of calls) {
      expect(c.failure).toBeNull();
      expect(c.byeReceived).toBe(true);
      expect(c.keyCount).toBe(6);
      expect(c.packets).toBeGreaterThan(10);
    }
    expect(ua.setup.count).toBe(5);
    expect(ua.gaps.count).toBeGreaterThan(50);
    // The first key is pressed 300 ms into "enter your access code": the prompt stops, timed.
    expect(ua.stopLatency.count).toBe(5);
    expect(ua.unmatchedRtp).toBe(0);
  });

  it('a call hung up by the load UA ends with the server\'s 200 to its BYE', async () => {
    const call = ua.call({ from: '202', service: '*97', keys: '', firstKeyAfterMs: 0 });
    expect(await call.answered).toBe(true);
    await ua.hangup(call);
    expect(call.state).toBe('ended');
    expect(call.byeReceived).toBe(false);
    await waitFor(() => t.server.engine.activeCalls === 0, 5000, 'the server released the call');
  });
});
