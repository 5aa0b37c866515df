import type { Logger } from '../log.js';
import type { AccessCodeHasher } from '../domain/access-code-hasher.js';
import {
  ACCESS_CODE_HISTORY_DEPTH, checkAccessCodeFormat, type AccessCodeRejection,
} from '../domain/access-code-policy.js';
import type { LoginGuard, LoginVerdict } from '../guard/login-guard.js';
import { MemoryLoginGuard } from '../guard/memory-login-guard.js';
import { appendAuditEvent, type AuditChannel, type NewAuditEvent } from '../store/audit.js';
import { describeError, type Database, type Queryable } from '../store/database.js';
import type { LoginOutcome, Metrics } from '../metrics/metrics.js';

/** Who is acting, for the audit trail. */
export interface CallContext {
  channel: AuditChannel;
  /** The caller's identity (SIP URI user, admin name, 'cli'); never digits the caller typed as a code. */
  actor: string;
  /** SIP Call-ID of the call, null outside calls. */
  callId: string | null;
  /** Who the per-source failed-login limit counts (guard/login-guard.ts failedLoginSource); none → no such limit. */
  loginSource?: string | undefined;
}

export type LoginResult = { result: 'ok'; mustChange: boolean } | { result: 'rejected' } | { result: 'unavailable' };
export type ChangeResult =
  | { result: 'ok' }
  | { result: 'rejected'; reason: AccessCodeRejection }
  | { result: 'unavailable' };

/** Longest mailbox text the audit trail keeps (audit_events_mailbox_length). */
const AUDIT_MAILBOX_MAX = 64;

/** What the access-code rules need to know about one mailbox. */
interface MailboxCodeState {
  mailboxId: number;
  minLength: number;
  maxLength: number;
  currentHash: string | null;
  /** Previous codes, newest first, at most ACCESS_CODE_HISTORY_DEPTH. */
  historyHashes: string[];
}

/** A change the service refuses for a reason the caller can only answer with "try again later". */
class ChangeRefused extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'ChangeRefused';
  }
}

/**
 * Mailbox login and access-code changes: what the IVR's verify / check / save commands call.
 * Never throws; a store failure comes back as `unavailable` so the caller can hear "try again
 * later". Access codes appear in no log line, error message or audit field, and neither do
 * mailbox numbers typed by callers (they are digits a caller entered, too).
 */
export class AccessCodeService {
  readonly #db: Database;
  readonly #hasher: AccessCodeHasher;
  readonly #logger: Logger;
  readonly #guard: LoginGuard;
  readonly #metrics: Metrics | undefined;

  /** Without a `guard`, a private in-process one (the lockout is never off). */
  constructor(deps: { db: Database; hasher: AccessCodeHasher; logger: Logger; guard?: LoginGuard; metrics?: Metrics }) {
    this.#metrics = deps.metrics;
    this.#db = deps.db;
    this.#hasher = deps.hasher;
    this.#logger = deps.logger;
    this.#guard = deps.guard ?? new MemoryLoginGuard();
  }

  /**
   * Checks a login and records login_succeeded / login_failed. A mailbox that does not exist or
   * has no code yet costs the same argon2 verify (against the hasher's dummy hash) and gives the
   * same 'rejected' as a wrong code, so neither the answer nor its timing reveals which mailboxes
   * exist; the audit row names the mailbox as typed.
   *
   * Then the login guard decides (guard/login-guard.ts): a locked mailbox or a blocked source
   * refuses even the correct code — after the same verify, with the same 'rejected' — and the
   * failure that starts a mailbox lock is audited `mailbox_locked` with this call's context.
   * A guard that cannot answer (Redis down) fails the login closed: 'unavailable'.
   */
  async verifyLogin(domain: string, mailbox: string, accessCode: string, ctx: CallContext): Promise<LoginResult> {
    const domainName = domain.toLowerCase();
    const counted = (outcome: LoginOutcome, result: LoginResult): LoginResult => {
      this.#metrics?.logins.inc({ outcome });
      return result;
    };
    let credential: { hash: string | null; mustChange: boolean };
    try {
      const rows = await this.#db.query<{ hash: string | null; must_change: boolean | null }>(
        `SELECT c.hash, c.must_change
           FROM mailboxes m
           JOIN domains d ON d.id = m.domain_id
           LEFT JOIN access_code_credentials c ON c.mailbox_id = m.id
          WHERE d.name = $1 AND m.number = $2`,
        [domainName, mailbox],
      );
      credential = { hash: rows[0]?.hash ?? null, mustChange: rows[0]?.must_change === true };
    } catch (err) {
      this.#logFailure('verifyLogin', domainName, err);
      return counted('unavailable', { result: 'unavailable' });
    }

    let matched: boolean;
    try {
      matched = await this.#hasher.verify(credential.hash, accessCode);
    } catch (err) {
      // A malformed stored hash: a data problem an operator must fix, not a wrong code.
      this.#logFailure('verifyLogin', domainName, err);
      return counted('unavailable', { result: 'unavailable' });
    }

    const auditOf = (event: NewAuditEvent['event']): NewAuditEvent => ({
      domain: domainName,
      mailbox: mailbox.slice(0, AUDIT_MAILBOX_MAX),
      event,
      channel: ctx.channel,
      actor: ctx.actor,
      callId: ctx.callId,
    });

    let verdict: LoginVerdict;
    try {
      verdict = await this.#guard.recordAttempt({ domain: domainName, mailbox, source: ctx.loginSource }, matched);
    } catch (err) {
      this.#metrics?.redisErrors.inc();
      this.#logger.error({ operation: 'verifyLogin', domain: domainName, error: describeError(err) },
        'failed-login counters unavailable: login refused (fail closed)');
      // A wrong code is still a failed login for the audit trail; a right one was not let in.
      if (!matched) await appendAuditEvent(this.#db, auditOf('login_failed')).catch((e: unknown) => this.#logFailure('verifyLogin', domainName, e));
      return counted('unavailable', { result: 'unavailable' });
    }
    if (verdict.sourceBlocked) {
      this.#logger.warn({ domain: domainName, source: ctx.loginSource, channel: ctx.channel, callId: ctx.callId },
        'failed-login limit reached: logins from this source refused for a while');
    }
    if (verdict.mailboxLocked) {
      this.#metrics?.lockouts.inc();
      // The mailbox number stays out of the log (it may be digits the caller typed); the audit row has it.
      this.#logger.warn({ domain: domainName, channel: ctx.channel, callId: ctx.callId }, 'failed-login limit reached: mailbox locked');
    }

    const ok = verdict.admitted;
    const refusal: LoginOutcome = matched ? 'refused_locked' : 'failed';
    try {
      await appendAuditEvent(this.#db, auditOf(ok ? 'login_succeeded' : 'login_failed'));
    } catch (err) {
      this.#logFailure('verifyLogin', domainName, err);
      // No login without its audit row: fail closed. A failed login stays a failed login.
      return ok ? counted('unavailable', { result: 'unavailable' }) : counted(refusal, { result: 'rejected' });
    }
    if (verdict.mailboxLocked) {
      await appendAuditEvent(this.#db, auditOf('mailbox_locked')).catch((err: unknown) => this.#logFailure('verifyLogin', domainName, err));
    }
    return ok ? counted('succeeded', { result: 'ok', mustChange: credential.mustChange }) : counted(refusal, { result: 'rejected' });
  }

  /**
   * Clears a mailbox's failed-login lock and count (operator action) and audits
   * `mailbox_unlocked` whether or not it was locked — the action itself is what the trail keeps.
   * A nonexistent mailbox is harmless: it simply was not locked. Throws when the counters or the
   * store cannot be reached (the operator sees the error; nothing is half done but the audit row).
   */
  async unlockMailbox(domain: string, mailbox: string, ctx: CallContext): Promise<{ wasLocked: boolean }> {
    const domainName = domain.toLowerCase();
    const { wasLocked } = await this.#guard.unlock(domainName, mailbox);
    try {
      await appendAuditEvent(this.#db, {
        domain: domainName, mailbox: mailbox.slice(0, AUDIT_MAILBOX_MAX), event: 'mailbox_unlocked',
        channel: ctx.channel, actor: ctx.actor, callId: ctx.callId,
      });
    } catch (err) {
      throw new Error(`the mailbox was unlocked, but its audit row could not be written: ${(err as Error).message}`, { cause: err });
    }
    // An operator's own input, not a caller's digits: the mailbox may be logged here.
    this.#logger.info({ domain: domainName, mailbox, channel: ctx.channel, actor: ctx.actor, wasLocked }, 'mailbox unlocked');
    return { wasLocked };
  }

  /** Whether the mailbox has an access code (false when it does not exist). */
  async hasAccessCode(domain: string, mailbox: string): Promise<boolean | 'unavailable'> {
    const domainName = domain.toLowerCase();
    try {
      const rows = await this.#db.query<{ has: boolean }>(
        `SELECT EXISTS (
           SELECT 1 FROM mailboxes m
             JOIN domains d ON d.id = m.domain_id
             JOIN access_code_credentials c ON c.mailbox_id = m.id
            WHERE d.name = $1 AND m.number = $2) AS has`,
        [domainName, mailbox],
      );
      return rows[0]?.has === true;
    } catch (err) {
      this.#logFailure('hasAccessCode', domainName, err);
      return 'unavailable';
    }
  }

  /** All rules for a proposed new code (format, not current, not recent); writes nothing. */
  async checkNewAccessCode(domain: string, mailbox: string, accessCode: string): Promise<ChangeResult> {
    const domainName = domain.toLowerCase();
    try {
      const state = await loadState(this.#db, domainName, mailbox, false);
      if (!state) throw new ChangeRefused('mailbox not found');
      const reason = await this.#evaluate(state, mailbox, accessCode);
      return reason ? { result: 'rejected', reason } : { result: 'ok' };
    } catch (err) {
      this.#logFailure('checkNewAccessCode', domainName, err);
      return { result: 'unavailable' };
    }
  }

  /**
   * Sets a new access code, all or nothing in one transaction: lock the mailbox, re-check the
   * rules, move the current hash into the history (keeping the last 3), store the new hash
   * (must_change cleared) and audit pin_changed — or pin_set for a first code. The old code stops
   * working when the transaction commits.
   *
   * `initial` is first-time setup without a login (a trusted caller's own mailbox with no code):
   * it is refused ('unavailable') should a code exist by then, so it can never replace one.
   */
  async changeAccessCode(
    domain: string, mailbox: string, accessCode: string, ctx: CallContext, opts: { initial?: boolean } = {},
  ): Promise<ChangeResult> {
    const domainName = domain.toLowerCase();
    const initial = opts.initial === true;
    try {
      // The argon2 work happens before the transaction, so row locks (and PGlite's single
      // connection) are held only for a few statements.
      const seen = await loadState(this.#db, domainName, mailbox, false);
      if (!seen) throw new ChangeRefused('mailbox not found');
      const reason = await this.#evaluate(seen, mailbox, accessCode);
      if (reason) return { result: 'rejected', reason };
      const newHash = await this.#hasher.hash(accessCode);

      return await this.#db.transaction(async (tx): Promise<ChangeResult> => {
        const state = await loadState(tx, domainName, mailbox, true);
        if (!state) throw new ChangeRefused('mailbox not found');
        if (initial && state.currentHash !== null) throw new ChangeRefused('initial access code requested but one is set');
        // Another change may have committed since the check above; the rules are decided
        // again against what this transaction holds locked.
        if (!sameState(seen, state)) {
          const again = await this.#evaluate(state, mailbox, accessCode);
          if (again) return { result: 'rejected', reason: again };
        }
        if (state.currentHash !== null) {
          await tx.query('INSERT INTO access_code_history (mailbox_id, hash) VALUES ($1, $2)',
            [state.mailboxId, state.currentHash]);
          await tx.query(
            `DELETE FROM access_code_history
              WHERE mailbox_id = $1
                AND id NOT IN (SELECT id FROM access_code_history WHERE mailbox_id = $1
                                ORDER BY retired_at DESC, id DESC LIMIT $2)`,
            [state.mailboxId, ACCESS_CODE_HISTORY_DEPTH]);
        }
        await tx.query(
          `INSERT INTO access_code_credentials (mailbox_id, hash, set_at, must_change)
           VALUES ($1, $2, now(), false)
           ON CONFLICT (mailbox_id) DO UPDATE SET hash = EXCLUDED.hash, set_at = EXCLUDED.set_at, must_change = false`,
          [state.mailboxId, newHash]);
        await appendAuditEvent(tx, {
          domain: domainName,
          mailbox,
          event: initial || state.currentHash === null ? 'pin_set' : 'pin_changed',
          channel: ctx.channel,
          actor: ctx.actor,
          callId: ctx.callId,
        });
        return { result: 'ok' };
      });
    } catch (err) {
      this.#logFailure('changeAccessCode', domainName, err);
      return { result: 'unavailable' };
    }
  }

  /** The first rule `accessCode` breaks for this mailbox, or null when it may be used. */
  async #evaluate(state: MailboxCodeState, mailbox: string, accessCode: string): Promise<AccessCodeRejection | null> {
    const format = checkAccessCodeFormat(accessCode, {
      minLength: state.minLength, maxLength: state.maxLength, mailboxNumber: mailbox,
    });
    if (!format.ok) return format.reason;
    if (state.currentHash !== null && await this.#hasher.verify(state.currentHash, accessCode)) return 'sameAsCurrent';
    for (const previous of state.historyHashes) {
      if (await this.#hasher.verify(previous, accessCode)) return 'recentlyUsed';
    }
    return null;
  }

  #logFailure(operation: string, domain: string, err: unknown): void {
    if (!(err instanceof ChangeRefused)) this.#metrics?.storeErrors.inc();
    if (err instanceof ChangeRefused) {
      this.#logger.warn({ operation, domain, reason: err.message }, 'access-code request refused');
    } else {
      this.#logger.error({ operation, domain, error: describeError(err) }, 'access-code store request failed');
    }
  }
}

/**
 * Loads the rules' inputs for one mailbox. With `lock`, inside a transaction: the mailbox row is
 * locked FOR UPDATE (it always exists, unlike the credential row before a first code is set, so
 * two concurrent changes of one mailbox — first-time ones included — queue on it), then the
 * credential row too.
 */
async function loadState(q: Queryable, domain: string, mailbox: string, lock: boolean): Promise<MailboxCodeState | null> {
  const rows = await q.query<{ id: number; min_length: number; max_length: number }>(
    `SELECT m.id, d.access_code_min_length AS min_length, d.access_code_max_length AS max_length
       FROM mailboxes m JOIN domains d ON d.id = m.domain_id
      WHERE d.name = $1 AND m.number = $2
      ${lock ? 'FOR UPDATE OF m' : ''}`,
    [domain, mailbox],
  );
  const row = rows[0];
  if (!row) return null;
  const credential = await q.query<{ hash: string }>(
    `SELECT hash FROM access_code_credentials WHERE mailbox_id = $1 ${lock ? 'FOR UPDATE' : ''}`,
    [row.id],
  );
  const history = await q.query<{ hash: string }>(
    `SELECT hash FROM access_code_history WHERE mailbox_id = $1
      ORDER BY retired_at DESC, id DESC LIMIT $2`,
    [row.id, ACCESS_CODE_HISTORY_DEPTH],
  );
  return {
    mailboxId: row.id,
    minLength: row.min_length,
    maxLength: row.max_length,
    currentHash: credential[0]?.hash ?? null,
    historyHashes: history.map((h) => h.hash),
  };
}

function sameState(a: MailboxCodeState, b: MailboxCodeState): boolean {
  return a.mailboxId === b.mailboxId && a.minLength === b.minLength && a.maxLength === b.maxLength &&
    a.currentHash === b.currentHash &&
    a.historyHashes.length === b.historyHashes.length &&
    a.historyHashes.every((h, i) => h === b.historyHashes[i]);
}
