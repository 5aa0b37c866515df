/**
 * The shared guard (REDIS_URL): counters and locks in Redis, so every server behind the same
 * Redis sees the same lockouts. Each login is one Lua script (EVALSHA), so the read, the count
 * and the lock decision for a mailbox and a source are one atomic step even with several servers.
 *
 * Keys (domain and mailbox numbers are not secret; no access code is ever stored):
 *   <prefix>lockout:<domain>:<mailbox>:failures  sorted set of failure times (the sliding window)
 *   <prefix>lockout:<domain>:<mailbox>:lock      the lock; value = when it ends (ms since epoch)
 *   <prefix>source:<source>:failures / :blocked  the same for the per-source limit
 * Every key has a TTL (PEXPIRE/PX), so Redis forgets idle counters by itself. Times come from the
 * servers' clocks (injectable for tests), so the servers sharing a Redis should run NTP.
 *
 * When Redis cannot be reached, commands fail fast (no offline queue, a short command timeout)
 * with LoginGuardUnavailableError and the login fails closed; ioredis keeps reconnecting in the
 * background (capped backoff), and the next login after it is back works again.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { describeError } from '../store/database.js';
import {
  DEFAULT_LOCKOUT_POLICY, LoginGuardUnavailableError, mailboxKey, sourceKey,
  type LockoutPolicy, type LockoutRule, type LoginAttempt, type LoginGuard, type LoginVerdict,
} from './login-guard.js';

export interface RedisLoginGuardOptions {
  readonly url: string;
  /** Prepended to every key (default `vmaccess:`), so deployments and test runs can share a Redis. */
  readonly keyPrefix?: string;
  readonly policy?: LockoutPolicy;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly now?: () => number;
  readonly logger: Logger;
  /** TCP connect timeout, and how long a login waits for a (re)connecting Redis. */
  readonly connectTimeoutMs?: number;
  /** Longest wait between reconnect attempts. */
  readonly maxReconnectDelayMs?: number;
}

export const DEFAULT_REDIS_KEY_PREFIX = 'vmaccess:';

/**
 * KEYS: 1 mailbox failures, 2 mailbox lock, 3 source failures, 4 source block.
 * ARGV: 1 code matched (1/0), 2 has a source (1/0), 3 now, 4 a unique member for this failure,
 *       5..9 mailbox rule (max, window start, window ms, lock ms, lock end),
 *       10..14 source rule (the same).
 * Returns {admitted, mailbox lock started, source block started}.
 * The same steps as MemoryLoginGuard's CounterTable.record.
 */
const RECORD_ATTEMPT_LUA = `
local now = tonumber(ARGV[3])
local function record(failures, lock, matched, clearOnMatch, max, since, window, lockMs, lockEnd)
  if tonumber(redis.call('GET', lock) or '0') > now then return 0, 0 end
  if matched then
    if clearOnMatch then redis.call('DEL', failures, lock) end
    return 1, 0
  end
  redis.call('ZREMRANGEBYSCORE', failures, '-inf', since)
  redis.call('ZADD', failures, ARGV[3], ARGV[4])
  if redis.call('ZCARD', failures) >= tonumber(max) then
    redis.call('DEL', failures)
    redis.call('SET', lock, lockEnd, 'PX', lockMs)
    return 0, 1
  end
  redis.call('PEXPIRE', failures, window)
  return 0, 0
end
local matched = ARGV[1] == '1'
local sourceAdmits, sourceBlocked = 1, 0
if ARGV[2] == '1' then
  sourceAdmits, sourceBlocked = record(KEYS[3], KEYS[4], matched, false, ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14])
end
if matched and sourceAdmits == 0 then return {0, 0, sourceBlocked} end
local admitted, mailboxLocked = record(KEYS[1], KEYS[2], matched, true, ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
return {admitted, mailboxLocked, sourceBlocked}
`;

/** KEYS: 1 failures, 2 lock. ARGV: 1 now. Deletes both; returns 1 when the lock was live. */
const UNLOCK_LUA = `
local lockEnd = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('DEL', KEYS[1], KEYS[2])
if lockEnd > tonumber(ARGV[1]) then return 1 end
return 0
`;

/** The scripts, registered with defineCommand (EVALSHA, falling back to EVAL once per connection). */
interface GuardCommands {
  vmaccessRecordAttempt(...keysAndArgs: string[]): Promise<[number, number, number]>;
  vmaccessUnlock(...keysAndArgs: string[]): Promise<number>;
}

export class RedisLoginGuard implements LoginGuard {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #commands: GuardCommands;
  readonly #prefix: string;
  readonly #policy: LockoutPolicy;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #waitMs: number;
  #readyWait: Promise<void> | null = null;
  /** Ready at least once: from then on losing Redis is an outage worth one error line. */
  #everReady = false;
  #down = false;
  #lastError = '';
  #closed = false;

  constructor(opts: RedisLoginGuardOptions) {
    this.#prefix = opts.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    this.#policy = opts.policy ?? DEFAULT_LOCKOUT_POLICY;
    this.#now = opts.now ?? Date.now;
    this.#logger = opts.logger.child({ component: 'login-guard' });
    this.#waitMs = opts.connectTimeoutMs ?? 1_000;
    const maxDelay = opts.maxReconnectDelayMs ?? 2_000;
    this.#redis = new Redis(opts.url, {
      // Connected on first use (or by ping() at server start), so CLI commands that never
      // consult the guard never open a connection.
      lazyConnect: true,
      connectTimeout: this.#waitMs,
      // Fail fast while Redis is away: a caller hears "try again later" instead of waiting.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.#waitMs,
      // Reconnect forever, backing off to at most maxDelay between attempts.
      retryStrategy: (times: number) => Math.min(times * 100, maxDelay),
    });
    this.#redis.defineCommand('vmaccessRecordAttempt', { numberOfKeys: 4, lua: RECORD_ATTEMPT_LUA });
    this.#redis.defineCommand('vmaccessUnlock', { numberOfKeys: 2, lua: UNLOCK_LUA });
    this.#commands = this.#redis as unknown as GuardCommands;
    // Without an 'error' listener ioredis' errors would be unhandled EventEmitter errors. One
    // line per outage, not per reconnect attempt; Redis missing from the start is reported by
    // the caller instead (the server's start, the CLI's error line, each refused login).
    this.#redis.on('error', (err: unknown) => {
      this.#lastError = err instanceof Error ? err.message : String(err);
      if (this.#down || !this.#everReady) return;
      this.#down = true;
      this.#logger.error({ error: describeError(err) }, 'redis unreachable: failed-login counters unavailable, logins fail closed until it is back');
    });
    this.#redis.on('ready', () => {
      if (this.#down) this.#logger.info('redis reachable again: failed-login counters back');
      this.#down = false;
      this.#everReady = true;
      this.#lastError = '';
    });
  }

  async recordAttempt(attempt: LoginAttempt, codeMatched: boolean): Promise<LoginVerdict> {
    const now = this.#now();
    const mailbox = this.#keys('lockout', mailboxKey(attempt.domain, attempt.mailbox), 'lock');
    const sourceText = sourceKey(attempt.source);
    const source = this.#keys('source', sourceText ?? '-', 'blocked');
    const [admitted, mailboxLocked, sourceBlocked] = await this.#run(() => this.#commands.vmaccessRecordAttempt(
      mailbox.failures, mailbox.lock, source.failures, source.lock,
      codeMatched ? '1' : '0', sourceText === undefined ? '0' : '1', String(now), randomUUID(),
      ...ruleArgs(this.#policy.mailbox, now), ...ruleArgs(this.#policy.source, now),
    ));
    return { admitted: admitted === 1, mailboxLocked: mailboxLocked === 1, sourceBlocked: sourceBlocked === 1 };
  }

  async unlock(domain: string, mailbox: string): Promise<{ wasLocked: boolean }> {
    const keys = this.#keys('lockout', mailboxKey(domain, mailbox), 'lock');
    const was = await this.#run(() => this.#commands.vmaccessUnlock(keys.failures, keys.lock, String(this.#now())));
    return { wasLocked: was === 1 };
  }

  async isLocked(domain: string, mailbox: string): Promise<boolean> {
    const keys = this.#keys('lockout', mailboxKey(domain, mailbox), 'lock');
    const lockEnd = await this.#run(() => this.#redis.get(keys.lock));
    return Number(lockEnd ?? 0) > this.#now();
  }

  /** Connects if needed and checks Redis answers; false (logged) when it does not. */
  async ping(): Promise<boolean> {
    try {
      await this.#run(() => this.#redis.ping());
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const r = this.#redis;
    // Between reconnect attempts there is no socket: disconnect() just cancels the next attempt
    // and no 'end' follows, so there is nothing to wait for.
    if (r.status === 'wait' || r.status === 'end' || r.status === 'reconnecting') {
      r.disconnect();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#waitMs);
      r.once('end', () => {
        clearTimeout(timer);
        resolve();
      });
      r.disconnect();
    });
  }

  #keys(kind: 'lockout' | 'source', text: string, lockName: 'lock' | 'blocked'): { failures: string; lock: string } {
    const base = `${this.#prefix}${kind}:${text}`;
    return { failures: `${base}:failures`, lock: `${base}:${lockName}` };
  }

  /** Runs one command on a ready connection; any failure becomes LoginGuardUnavailableError. */
  async #run<T>(command: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new LoginGuardUnavailableError('login guard closed');
    try {
      await this.#ready();
      return await command();
    } catch (err) {
      if (err instanceof LoginGuardUnavailableError) throw err;
      throw new LoginGuardUnavailableError(`redis (REDIS_URL) request failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Resolves once the connection is ready: at once when it is, else after at most the connect
   * timeout (first connect, or a reconnect in progress), so a short blip does not fail a login
   * but an outage fails it within a second.
   */
  #ready(): Promise<void> {
    const r = this.#redis;
    if (r.status === 'ready') return Promise.resolve();
    if (r.status === 'wait') r.connect().catch(() => undefined);
    this.#readyWait ??= new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        r.off('ready', onReady);
        this.#readyWait = null;
      };
      const onReady = (): void => {
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        const why = this.#lastError === '' ? r.status : this.#lastError;
        reject(new LoginGuardUnavailableError(`redis (REDIS_URL) unreachable: ${why}`));
      }, this.#waitMs);
      r.on('ready', onReady);
    });
    return this.#readyWait;
  }
}

function ruleArgs(rule: LockoutRule, now: number): string[] {
  return [String(rule.maxFailures), String(now - rule.windowMs), String(rule.windowMs), String(rule.lockMs), String(now + rule.lockMs)];
}
