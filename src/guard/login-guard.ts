/**
 * Failed-login lockout across calls ("the guard"). The IVR already ends a call after 3 wrong
 * codes; the guard is what stops the next call, and the next, from going on guessing:
 *
 * - Per mailbox: 10 failed logins within 30 minutes (a sliding window) lock the mailbox for 30
 *   minutes. While it is locked even the correct code is refused, and the caller hears exactly
 *   what a wrong code gets. The mailbox is the domain plus the number as typed, so a mailbox that
 *   does not exist is counted and locked the same way — the lockout reveals nothing either.
 *   An admitted login clears the mailbox's failures (the usual consecutive-failure rule): only
 *   someone who knows that mailbox's code can reset its count, and they are in anyway. When a lock
 *   starts the failures are cleared too, so after it ends the mailbox has its 10 tries again.
 * - Per source: 20 failed logins from one source within 10 minutes block that source's logins
 *   for 10 minutes, so one caller cannot walk through many mailboxes with 9 guesses each. This is
 *   a separate counter; a blocked source is logged (warn) but not audited, as no mailbox is
 *   locked. A successful login does NOT clear it: otherwise a caller who owns one mailbox could
 *   interleave a good login with their guesses on others and never be blocked.
 *   The source is the peer's network address; a call from a trusted peer (TRUSTED_SIP_PEERS,
 *   RFC 3325 trust domain — the operator's own proxy, which carries every caller behind it) is
 *   counted under the identity that peer asserts instead, so one attacker behind the proxy
 *   cannot block every caller who comes through it.
 *
 * The guard is asked once per login, after the code was checked (so a locked mailbox costs the
 * same argon2 verify as an open one), and decides atomically whether that login is admitted.
 * A guard that cannot answer (Redis down) throws LoginGuardUnavailableError; the service fails
 * closed. Access codes never reach the guard; domain and mailbox numbers are not secret.
 */
import { normaliseAddress } from '../config.js';

/** One threshold: `maxFailures` within `windowMs` close the door for `lockMs`. */
export interface LockoutRule {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly lockMs: number;
}

export interface LockoutPolicy {
  readonly mailbox: LockoutRule;
  readonly source: LockoutRule;
}

const MINUTE = 60_000;

/** CONTRACT "Failed logins" (mailbox) and the per-source limit documented in README "Lockout". */
export const DEFAULT_LOCKOUT_POLICY: LockoutPolicy = {
  mailbox: { maxFailures: 10, windowMs: 30 * MINUTE, lockMs: 30 * MINUTE },
  source: { maxFailures: 20, windowMs: 10 * MINUTE, lockMs: 10 * MINUTE },
};

/** Longest mailbox or source text a key holds (the audit trail keeps 64 characters of a mailbox). */
export const GUARD_TEXT_MAX = 64;
const SOURCE_TEXT_MAX = 200;

/** One login the guard is told about. */
export interface LoginAttempt {
  /** Domain name (compared case-insensitively). */
  readonly domain: string;
  /** Mailbox number as the caller typed it (or as the trusted shortcut chose it). */
  readonly mailbox: string;
  /** Who the per-source limit counts (see failedLoginSource); none → no per-source limit. */
  readonly source?: string | undefined;
}

export interface LoginVerdict {
  /** True only for a matching code, on a mailbox that is not locked, from a source not blocked. */
  readonly admitted: boolean;
  /** This failure locked the mailbox (audit `mailbox_locked` once, with this call's context). */
  readonly mailboxLocked: boolean;
  /** This failure blocked the source (logged, not audited). */
  readonly sourceBlocked: boolean;
}

/** The counters cannot be reached: the login must fail closed ("please try again later"). */
export class LoginGuardUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LoginGuardUnavailableError';
  }
}

export interface LoginGuard {
  /** In-process or shared (Redis): for logs and the unlock command's message. */
  readonly kind: 'memory' | 'redis';
  /**
   * Records the outcome of one login whose code has just been checked (`codeMatched`) and says
   * whether it is admitted. Atomic per mailbox and per source, so several servers sharing the
   * counters (Redis) never admit a login on a mailbox another one has just locked.
   * Throws LoginGuardUnavailableError when the counters cannot be reached.
   */
  recordAttempt(attempt: LoginAttempt, codeMatched: boolean): Promise<LoginVerdict>;
  /** Clears the mailbox's lock and failure count; says whether it was locked. */
  unlock(domain: string, mailbox: string): Promise<{ wasLocked: boolean }>;
  /** Whether the mailbox is locked right now (for the portal's mailbox list); changes nothing. */
  isLocked(domain: string, mailbox: string): Promise<boolean>;
  /** Whether the counters answer (connecting first if needed); never throws. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** The mailbox key text: lower-case domain and the mailbox as typed (bounded in length). */
export function mailboxKey(domain: string, mailbox: string): string {
  return `${domain.toLowerCase()}:${mailbox.slice(0, GUARD_TEXT_MAX)}`;
}

/** The source key text, bounded in length; undefined when there is no source to count. */
export function sourceKey(source: string | undefined): string | undefined {
  if (source === undefined || source === '') return undefined;
  return source.slice(0, SOURCE_TEXT_MAX);
}

/**
 * Who the per-source limit counts for a call: the network address of an untrusted peer, or —
 * for a trusted peer, a proxy carrying many callers (RFC 3325 §2.3) — the identity it asserts.
 */
export function failedLoginSource(route: { readonly trusted: boolean; readonly actor: string }, address: string): string {
  return route.trusted ? `asserted:${route.actor}` : `address:${normaliseAddress(address)}`;
}
