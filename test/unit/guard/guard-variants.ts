import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { silentLogger, type Logger } from '../../../src/log.js';
import type { LockoutPolicy, LoginGuard } from '../../../src/guard/login-guard.js';
import { MemoryLoginGuard } from '../../../src/guard/memory-login-guard.js';
import { RedisLoginGuard } from '../../../src/guard/redis-login-guard.js';

/**
 * The guard implementations a test file can run against: in-process always, Redis when
 * REDIS_URL is set (real Redis, a random key prefix per test file, its keys deleted afterwards).
 */
export type GuardVariant = 'memory' | 'redis';

let skipNoticePrinted = false;

export function guardVariants(): GuardVariant[] {
  if (process.env.REDIS_URL) return ['memory', 'redis'];
  if (!skipNoticePrinted) {
    skipNoticePrinted = true;
    console.log('REDIS_URL is not set: the Redis variant of the login-guard tests is skipped (in-process only)');
  }
  return ['memory'];
}

/** A settable clock: milliseconds since the epoch, starting at a fixed, realistic time. */
export class TestClock {
  ms = Date.UTC(2025, 0, 31, 9, 0, 0);
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

export interface GuardFactory {
  readonly variant: GuardVariant;
  /** The Redis key prefix of this file (redis variant), e.g. `vmaccess-test-1a2b3c:`. */
  readonly keyPrefix: string;
  make(opts?: { now?: () => number; policy?: LockoutPolicy; logger?: Logger; url?: string }): LoginGuard;
  /** A plain client on REDIS_URL for inspecting keys (redis variant). */
  client(): Redis;
}

/** `describe` once per variant; every guard made is closed and the Redis keys deleted afterwards. */
export function describeEachGuard(name: string, fn: (factory: GuardFactory) => void): void {
  for (const variant of guardVariants()) {
    describe(`${name} [${variant}]`, () => {
      const keyPrefix = `vmaccess-test-${randomBytes(6).toString('hex')}:`;
      const made: LoginGuard[] = [];
      let inspector: Redis | null = null;
      const factory: GuardFactory = {
        variant,
        keyPrefix,
        make(opts = {}) {
          const guard = variant === 'memory'
            ? new MemoryLoginGuard({ ...(opts.now ? { now: opts.now } : {}), ...(opts.policy ? { policy: opts.policy } : {}) })
            : new RedisLoginGuard({
              url: opts.url ?? process.env.REDIS_URL ?? '', keyPrefix, logger: opts.logger ?? silentLogger,
              ...(opts.now ? { now: opts.now } : {}), ...(opts.policy ? { policy: opts.policy } : {}),
            });
          made.push(guard);
          return guard;
        },
        client() {
          inspector ??= new Redis(process.env.REDIS_URL ?? '', { lazyConnect: false, maxRetriesPerRequest: 1 });
          return inspector;
        },
      };
      afterAll(async () => {
        await Promise.all(made.map((g) => g.close()));
        if (variant === 'redis') {
          const keys = await factory.client().keys(`${keyPrefix}*`);
          if (keys.length > 0) await factory.client().del(...keys);
        }
        await inspector?.quit();
      });
      fn(factory);
    });
  }
}
