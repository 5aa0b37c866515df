/**
 * The in-process guard (no REDIS_URL): the same rules as the Redis one, counters in this
 * process only. Memory is bounded: every table holds at most `maxEntries` keys; expired entries
 * are dropped when touched and swept when a table is full, and if it is still full the least
 * recently used entry without a live lock goes first (a live lock only when nothing else is left).
 */
import {
  DEFAULT_LOCKOUT_POLICY, mailboxKey, sourceKey,
  type LockoutPolicy, type LockoutRule, type LoginAttempt, type LoginGuard, type LoginVerdict,
} from './login-guard.js';

export interface MemoryLoginGuardOptions {
  readonly policy?: LockoutPolicy;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly now?: () => number;
  /** Keys per table (mailboxes, sources). */
  readonly maxEntries?: number;
}

interface Entry {
  /** Times of the failures inside the window, oldest first (at most maxFailures - 1 kept). */
  failures: number[];
  /** The lock (or block) ends at this time; 0 when none. */
  lockedUntil: number;
}

const DEFAULT_MAX_ENTRIES = 50_000;

type Outcome = 'matched' | 'failed';

/** One table of counters under one rule: the mailboxes, or the sources. */
class CounterTable {
  readonly #entries = new Map<string, Entry>();

  constructor(private readonly rule: LockoutRule, private readonly maxEntries: number) {}

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The same steps as the Redis script: a locked key refuses and counts nothing; a match clears
   * the failures (when `clearOnMatch`); a failure is counted, and the one that reaches the limit
   * starts the lock and clears the count. Returns [admits, lockStarted]: `admits` is true only
   * for a match on a key that is not locked.
   */
  record(key: string, outcome: Outcome, now: number, clearOnMatch: boolean): [boolean, boolean] {
    const entry = this.#live(key, now);
    if (entry !== undefined && entry.lockedUntil > now) return [false, false];
    if (outcome === 'matched') {
      if (clearOnMatch && entry !== undefined) this.#entries.delete(key);
      return [true, false];
    }
    const failures = entry?.failures ?? [];
    failures.push(now);
    if (failures.length >= this.rule.maxFailures) {
      this.#put(key, { failures: [], lockedUntil: now + this.rule.lockMs }, now);
      return [false, true];
    }
    this.#put(key, { failures, lockedUntil: 0 }, now);
    return [false, false];
  }

  locked(key: string, now: number): boolean {
    return (this.#entries.get(key)?.lockedUntil ?? 0) > now;
  }

  /** Deletes the key; says whether it was locked. */
  clear(key: string, now: number): boolean {
    const wasLocked = (this.#live(key, now)?.lockedUntil ?? 0) > now;
    this.#entries.delete(key);
    return wasLocked;
  }

  /** The entry with its failures pruned to the window, or undefined (and deleted) when empty. */
  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#prune(entry, now);
    if (entry.failures.length === 0 && entry.lockedUntil <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #prune(entry: Entry, now: number): void {
    const since = now - this.rule.windowMs;
    let drop = 0;
    while (drop < entry.failures.length && (entry.failures[drop] ?? 0) <= since) drop++;
    if (drop > 0) entry.failures.splice(0, drop);
    if (entry.lockedUntil <= now) entry.lockedUntil = 0;
  }

  /** Stores the entry as the most recently used one, making room first when the table is full. */
  #put(key: string, entry: Entry, now: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) this.#makeRoom(now);
    this.#entries.set(key, entry);
  }

  #makeRoom(now: number): void {
    for (const [key, entry] of this.#entries) {
      this.#prune(entry, now);
      if (entry.failures.length === 0 && entry.lockedUntil === 0) this.#entries.delete(key);
    }
    if (this.#entries.size < this.maxEntries) return;
    // Map order is least recently used first.
    for (const [key, entry] of this.#entries) {
      if (entry.lockedUntil === 0) {
        this.#entries.delete(key);
        return;
      }
    }
    const oldest = this.#entries.keys().next();
    if (oldest.done !== true) this.#entries.delete(oldest.value);
  }
}

export class MemoryLoginGuard implements LoginGuard {
  readonly kind = 'memory' as const;
  readonly #mailboxes: CounterTable;
  readonly #sources: CounterTable;
  readonly #now: () => number;

  constructor(opts: MemoryLoginGuardOptions = {}) {
    const policy = opts.policy ?? DEFAULT_LOCKOUT_POLICY;
    const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.#mailboxes = new CounterTable(policy.mailbox, maxEntries);
    this.#sources = new CounterTable(policy.source, maxEntries);
    this.#now = opts.now ?? Date.now;
  }

  /** Keys held (mailboxes + sources): for tests of the memory bound. */
  get size(): number {
    return this.#mailboxes.size + this.#sources.size;
  }

  recordAttempt(attempt: LoginAttempt, codeMatched: boolean): Promise<LoginVerdict> {
    const now = this.#now();
    const outcome: Outcome = codeMatched ? 'matched' : 'failed';
    const mailbox = mailboxKey(attempt.domain, attempt.mailbox);
    const source = sourceKey(attempt.source);
    // The source first: a blocked source refuses even a matching code, which then neither
    // clears nor counts for the mailbox; a wrong code from it is still a guess at the mailbox.
    let sourceAllows = true;
    let sourceBlocked = false;
    if (source !== undefined) {
      [sourceAllows, sourceBlocked] = this.#sources.record(source, outcome, now, false);
    }
    if (codeMatched && !sourceAllows) return Promise.resolve({ admitted: false, mailboxLocked: false, sourceBlocked });
    const [mailboxAllows, mailboxLocked] = this.#mailboxes.record(mailbox, outcome, now, true);
    return Promise.resolve({ admitted: codeMatched && mailboxAllows, mailboxLocked, sourceBlocked });
  }

  unlock(domain: string, mailbox: string): Promise<{ wasLocked: boolean }> {
    return Promise.resolve({ wasLocked: this.#mailboxes.clear(mailboxKey(domain, mailbox), this.#now()) });
  }

  isLocked(domain: string, mailbox: string): Promise<boolean> {
    return Promise.resolve(this.#mailboxes.locked(mailboxKey(domain, mailbox), this.#now()));
  }

  ping(): Promise<boolean> {
    return Promise.resolve(true);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
