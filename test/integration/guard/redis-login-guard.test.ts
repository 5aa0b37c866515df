/**
 * The Redis guard against a real Redis (REDIS_URL): the keys it leaves, counters shared by
 * several servers, atomic decisions under concurrency, fail-closed when Redis is away, and
 * reconnecting by itself (through a loopback TCP proxy the test closes and reopens).
 */
import { randomBytes } from 'node:crypto';
import { FlakyProxy } from '../../support/flaky-proxy.js';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../../src/log.js';
import { LoginGuardUnavailableError, type LoginAttempt } from '../../../src/guard/login-guard.js';
import { RedisLoginGuard } from '../../../src/guard/redis-login-guard.js';
import { containsNumber } from '../../support/secrets.js';

const REDIS_URL = process.env.REDIS_URL;
if (!REDIS_URL) console.log('REDIS_URL is not set: the real-Redis tests of the Redis login guard are skipped');

const keyPrefix = `vmaccess-test-${randomBytes(6).toString('hex')}:`;
const guards: RedisLoginGuard[] = [];
const make = (url: string, opts: Partial<ConstructorParameters<typeof RedisLoginGuard>[0]> = {}): RedisLoginGuard => {
  const g = new RedisLoginGuard({ url, keyPrefix, logger: silentLogger, ...opts });
  guards.push(g);
  return g;
};
let inspector: Redis | null = null;
const client = (): Redis => (inspector ??= new Redis(REDIS_URL ?? '', { maxRetriesPerRequest: 1 }));

afterAll(async () => {
  await Promise.all(guards.map((g) => g.close()));
  if (REDIS_URL) {
    const keys = await client().keys(`${keyPrefix}*`);
    if (keys.length > 0) await client().del(...keys);
    await client().quit();
  }
});

const attempt = (mailbox: string, source?: string): LoginAttempt => ({ domain: 'demo.local', mailbox, source });

describe.skipIf(!REDIS_URL)('Redis login guard on a real Redis', () => {
  it('keeps namespaced keys with a TTL and nothing but times in them', async () => {
    const g = make(REDIS_URL!);
    await g.recordAttempt(attempt('8101', 'address:192.0.2.10'), false);
    const keys = (await client().keys(`${keyPrefix}*`)).sort();
    expect(keys).toEqual([
      `${keyPrefix}lockout:demo.local:8101:failures`,
      `${keyPrefix}source:address:192.0.2.10:failures`,
    ]);
    for (const key of keys) {
      const ttl = await client().pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(30 * 60_000);
    }
    for (let i = 0; i < 9; i++) await g.recordAttempt(attempt('8101'), false);
    const lockKey = `${keyPrefix}lockout:demo.local:8101:lock`;
    expect(await client().exists(`${keyPrefix}lockout:demo.local:8101:failures`)).toBe(0);
    const lockEnd = Number(await client().get(lockKey));
    expect(Math.abs(lockEnd - (Date.now() + 30 * 60_000))).toBeLessThan(60_000);
    expect(await client().pttl(lockKey)).toBeGreaterThan(29 * 60_000);
  });

  it('shares counters between servers and decides atomically under concurrency', async () => {
    const a = make(REDIS_URL!);
    const b = make(REDIS_URL!);
    const verdicts = await Promise.all(Array.from({ length: 25 }, (_, i) => (i % 2 === 0 ? a : b).recordAttempt(attempt('8102'), false)));
    expect(verdicts.filter((v) => v.mailboxLocked)).toHaveLength(1);
    const rights = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).recordAttempt(attempt('8102'), true)));
    expect(rights.some((v) => v.admitted)).toBe(false);
    expect(await b.unlock('demo.local', '8102')).toEqual({ wasLocked: true });
    expect((await a.recordAttempt(attempt('8102'), true)).admitted).toBe(true);
  });

  it('reconnects by itself: fails closed while Redis is away, works again when it is back', async () => {
    const url = new URL(REDIS_URL!);
    const proxy = new FlakyProxy({ host: url.hostname, port: Number(url.port || 6379) });
    await proxy.open();
    const lines: string[] = [];
    const logger = createLogger('info', new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }));
    const proxied = new URL(REDIS_URL!);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const g = make(proxied.toString(), { logger, maxReconnectDelayMs: 200 });
    try {
      expect(await g.ping()).toBe(true);
      expect((await g.recordAttempt(attempt('8103'), true)).admitted).toBe(true);

      await proxy.close();
      await expect(g.recordAttempt(attempt('8103'), true)).rejects.toBeInstanceOf(LoginGuardUnavailableError);
      await expect(g.unlock('demo.local', '8103')).rejects.toBeInstanceOf(LoginGuardUnavailableError);

      await proxy.open();
      const deadline = Date.now() + 15_000;
      let verdict = null;
      while (verdict === null && Date.now() < deadline) {
        verdict = await g.recordAttempt(attempt('8103'), true).catch(() => null);
        if (verdict === null) await new Promise((r) => setTimeout(r, 100));
      }
      expect(verdict?.admitted).toBe(true);
      const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(logged.filter((l) => l.msg.startsWith('redis unreachable'))).toHaveLength(1);
      expect(logged.some((l) => l.msg.startsWith('redis reachable again'))).toBe(true);
      expect(containsNumber(lines.join('\n'), '8103')).toBe(false);
    } finally {
      await g.close();
      await proxy.close();
    }
  });
});

describe('Redis login guard with Redis unreachable', () => {
  it('fails closed fast with LoginGuardUnavailableError and never throws anything else', async () => {
    // Port 1 on loopback: nothing listens there, connections are refused at once.
    const g = make('redis://127.0.0.1:1', { connectTimeoutMs: 300 });
    const err = await g.recordAttempt(attempt('8104'), true).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(LoginGuardUnavailableError);
    expect((err as Error).message).toMatch(/^redis \(REDIS_URL\) unreachable: .*ECONNREFUSED/);
    await expect(g.recordAttempt(attempt('8104'), false)).rejects.toBeInstanceOf(LoginGuardUnavailableError);
    await expect(g.unlock('demo.local', '8104')).rejects.toBeInstanceOf(LoginGuardUnavailableError);
    expect(await g.ping()).toBe(false);
    await g.close();
    await expect(g.recordAttempt(attempt('8104'), true)).rejects.toBeInstanceOf(LoginGuardUnavailableError);
  });
});
