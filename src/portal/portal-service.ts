/**
 * What the portal and the admin API do, independent of HTTP: sign-in (web password, rate
 * limited and locked out like the phone, answers never saying whether a user exists), and acts
 * on mailboxes decided by domain/permissions.ts, each one audited with its channel and actor.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AccessCodeHasher } from '../domain/access-code-hasher.js';
import { decide, FRESH_SIGN_IN_MS, inDomain, noMailboxTarget, type Action, type MailboxTarget, type Principal } from '../domain/permissions.js';
import type { LoginGuard } from '../guard/login-guard.js';
import type { Logger } from '../log.js';
import type { AccessCodeService, CallContext } from '../mailbox/access-code-service.js';
import type { AudioStore } from '../messages/audio-store.js';
import type { MessageService, StoredMessage } from '../messages/message-service.js';

/** A message as the API and the portal show it: no storage key. */
export interface MessageView {
  readonly id: string;
  readonly caller: string;
  readonly callerName: string | null;
  readonly receivedAt: string;
  readonly durationMs: number;
  readonly state: 'new' | 'saved';
  /** Where it is filed ('inbox' for everything a caller leaves). */
  readonly folder: string;
}

function messageView(m: StoredMessage): MessageView {
  return {
    id: m.id, caller: m.caller, callerName: m.callerName, receivedAt: m.receivedAt.toISOString(), durationMs: m.durationMs, state: m.state,
    folder: m.folder,
  };
}
import {
  createSession, deleteSession, findOperator, findOperatorById, findPortalUser, findPortalUserById, findSession,
  listDomains, listMailboxes, operatorOfToken, type MailboxSummary,
} from '../store/accounts.js';
import { appendAuditEvent, listAuditEvents, type AuditChannel, type AuditEvent, type AuditEventName } from '../store/audit.js';
import { parseInstant } from './instant.js';
import { describeError, type Database } from '../store/database.js';

/** A refusal with the HTTP status it maps to and a machine-readable code. */
export class PortalError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'PortalError';
  }
}

export const SESSION_TTL_MS = 8 * 60 * 60_000;

export const AUDIT_LIMIT_DEFAULT = 1000;
export const AUDIT_LIMIT_MAX = 10_000;

export interface AuditFilter {
  readonly mailbox?: string | undefined;
  readonly event?: AuditEventName | undefined;
  /** ISO-8601 with a zone; inclusive. */
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  readonly limit?: number | undefined;
}

/** What changing one's own access code needs right now (see PortalService.ownCodeNeeds). */
export type OwnCodeNeeds = 'nothing' | 'current_code' | 'fresh_sign_in';

/** The acts of the Manager view (on other people's and shared mailboxes). */
export const MANAGER_ACTIONS = ['set_access_code', 'require_change', 'unlock', 'reset', 'recycle'] as const satisfies readonly Action[];
export type ManagerAction = (typeof MANAGER_ACTIONS)[number];

export interface Actor {
  readonly principal: Principal;
  /** portal (a signed-in person) or admin (an operator's API token). */
  readonly channel: Extract<AuditChannel, 'portal' | 'admin'>;
  /** For the audit trail, e.g. `201@demo.local` or `operator:root`. */
  readonly name: string;
  readonly csrfToken?: string;
}

export interface SignedIn {
  readonly sessionId: string;
  readonly csrfToken: string;
  readonly actor: Actor;
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class PortalService {
  constructor(private readonly deps: {
    db: Database; accessCodes: AccessCodeService; guard: LoginGuard; passwords: AccessCodeHasher; audio: AudioStore; logger: Logger;
    /** Optional only for tests of the pieces that do not touch messages. */
    messages?: MessageService;
  }) {}

  // --- messages --------------------------------------------------------------------------------

  #messages(): MessageService {
    if (this.deps.messages === undefined) throw new PortalError(503, 'unavailable', 'messages are not available');
    return this.deps.messages;
  }

  /**
   * A mailbox's messages, newest first (caller, time, duration, new/saved) — for whoever may
   * list them (permissions.ts 'list_messages': the owner, a shared mailbox's members, and those
   * who manage it).
   */
  async listMessages(actor: Actor, domain: string, number: string): Promise<MessageView[]> {
    await this.#mailbox(actor, domain, number, 'list_messages');
    return this.#list(domain, number);
  }

  /**
   * The same for a mailbox already loaded by mailboxes(actor, domain) (the "My voicemail" page):
   * decided on that summary, with the same refusals, instead of reading the mailbox again.
   */
  async listMessagesOf(actor: Actor, domain: string, mailbox: MailboxSummary): Promise<MessageView[]> {
    if (!inDomain(actor.principal, domain)) throw new PortalError(403, 'other_domain', 'not your domain');
    this.#check(actor, domain, mailbox, 'list_messages');
    return this.#list(domain, mailbox.number);
  }

  async #list(domain: string, number: string): Promise<MessageView[]> {
    const list = await this.#store(() => this.#messages().list(domain, number));
    return list.map(messageView);
  }

  /** One message's audio (a WAV), for the same people: listening is part of listing. */
  async messageAudio(actor: Actor, domain: string, number: string, id: string): Promise<Buffer> {
    await this.#mailbox(actor, domain, number, 'list_messages');
    const message = await this.#store(() => this.#messages().get(domain, number, id));
    if (message === null) throw new PortalError(404, 'no_such_message', 'no such message');
    return this.#store(() => this.#messages().audio(message));
  }

  /** Marks a message saved (heard); 404 when there is no such message in this mailbox. */
  async saveMessage(actor: Actor, domain: string, number: string, id: string): Promise<void> {
    await this.#mailbox(actor, domain, number, 'save_message');
    if (!(await this.#store(() => this.#messages().markSaved(domain, number, id)))) throw new PortalError(404, 'no_such_message', 'no such message');
  }

  /** Deletes a message for good (audited as message_deleted, by whom). */
  async deleteMessage(actor: Actor, domain: string, number: string, id: string): Promise<void> {
    await this.#mailbox(actor, domain, number, 'delete_message');
    if (!(await this.#store(() => this.#messages().delete(domain, number, id, this.#ctx(actor))))) throw new PortalError(404, 'no_such_message', 'no such message');
  }

  // --- sign-in ---------------------------------------------------------------------------------

  /**
   * Signs a user in with their web password. Unknown user, no portal account, wrong password,
   * locked account: the same 'failed', after the same argon2 verify. The guard counts failures
   * per account (10 in 30 min lock it for 30 min) and per source address, in its own namespace
   * (`portal:<domain>`) so web and phone lockouts do not mix.
   */
  async signInUser(domain: string, extension: string, password: string, source: string): Promise<SignedIn> {
    const user = await this.#store(() => findPortalUser(this.deps.db, domain, extension));
    const matched = await this.deps.passwords.verify(user?.passwordHash ?? null, password);
    await this.#admit({ domain: `portal:${domain.toLowerCase()}`, mailbox: extension, source: `address:${source}` }, matched && user !== null);
    const principal: Principal = {
      kind: 'user', domain: user!.domain, extension: user!.extension, role: user!.role, site: user!.site, fresh: true,
    };
    return this.#newSession({ userId: user!.userId }, { principal, channel: 'portal', name: `${user!.extension}@${user!.domain}` });
  }

  async signInOperator(name: string, password: string, source: string): Promise<SignedIn> {
    const operator = await this.#store(() => findOperator(this.deps.db, name));
    const matched = await this.deps.passwords.verify(operator?.passwordHash ?? null, password);
    await this.#admit({ domain: 'portal:operators', mailbox: name.slice(0, 64), source: `address:${source}` }, matched && operator !== null);
    return this.#newSession({ operatorId: operator!.id }, { principal: { kind: 'operator', name: operator!.name }, channel: 'portal', name: `operator:${operator!.name}` });
  }

  async #admit(attempt: { domain: string; mailbox: string; source: string }, matched: boolean): Promise<void> {
    let admitted: boolean;
    try {
      admitted = (await this.deps.guard.recordAttempt(attempt, matched)).admitted;
    } catch (err) {
      this.deps.logger.error({ error: describeError(err) }, 'sign-in refused: failed-login counters unavailable');
      throw new PortalError(503, 'unavailable', 'sign-in is not possible right now; try again later');
    }
    if (!admitted) throw new PortalError(401, 'sign_in_failed', 'sign-in failed');
  }

  async #newSession(principal: { userId: number } | { operatorId: number }, actor: Actor): Promise<SignedIn> {
    const sessionId = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(32).toString('base64url');
    await this.#store(() => createSession(this.deps.db, sessionId, principal, csrfToken, SESSION_TTL_MS));
    return { sessionId, csrfToken, actor: { ...actor, csrfToken } };
  }

  /** The person behind a session cookie, or null (expired, signed out, unknown). */
  async actorOfSession(sessionId: string): Promise<Actor | null> {
    const session = await this.#store(() => findSession(this.deps.db, sessionId));
    if (session === null) return null;
    const fresh = Date.now() - session.authenticatedAt.getTime() < FRESH_SIGN_IN_MS;
    if (session.userId !== null) {
      const user = await this.#store(() => findPortalUserById(this.deps.db, session.userId!));
      if (user === null) return null;
      return {
        principal: { kind: 'user', domain: user.domain, extension: user.extension, role: user.role, site: user.site, fresh },
        channel: 'portal', name: `${user.extension}@${user.domain}`, csrfToken: session.csrfToken,
      };
    }
    const operator = await this.#store(() => findOperatorById(this.deps.db, session.operatorId!));
    if (operator === null) return null;
    return { principal: { kind: 'operator', name: operator.name }, channel: 'portal', name: `operator:${operator.name}`, csrfToken: session.csrfToken };
  }

  /** An operator's API token (channel admin), or null. */
  async actorOfToken(token: string): Promise<Actor | null> {
    const operator = await this.#store(() => operatorOfToken(this.deps.db, token));
    return operator === null ? null : { principal: { kind: 'operator', name: operator.name }, channel: 'admin', name: `token:${operator.name}` };
  }

  csrfMatches(actor: Actor, given: string | undefined): boolean {
    return actor.csrfToken !== undefined && given !== undefined && constantTimeEqual(actor.csrfToken, given);
  }

  async signOut(sessionId: string): Promise<void> {
    await this.#store(() => deleteSession(this.deps.db, sessionId));
  }

  // --- mailboxes ---------------------------------------------------------------------------------

  /** The mailboxes of a domain the actor may see: their own, shared ones they belong to, and those in their scope. */
  async mailboxes(actor: Actor, domain: string): Promise<MailboxSummary[]> {
    if (!inDomain(actor.principal, domain)) throw new PortalError(403, 'other_domain', 'not your domain');
    const all = await this.#store(() => listMailboxes(this.deps.db, domain));
    return all.filter((m) => decide(actor.principal, 'view', targetOf(domain, m)).allowed);
  }

  /**
   * Of the mailboxes the actor may see — `visible`, as mailboxes(actor, domain) loaded them — which
   * management acts (MANAGER_ACTIONS) they may take on each; those with none are left out. Pure,
   * so a page that has the list already derives this without reading it again.
   */
  managed(actor: Actor, domain: string, visible: readonly MailboxSummary[]): Array<{ mailbox: MailboxSummary; may: ReadonlySet<ManagerAction> }> {
    return visible
      .map((mailbox) => ({ mailbox, may: new Set(MANAGER_ACTIONS.filter((a) => decide(actor.principal, a, targetOf(domain, mailbox)).allowed)) }))
      .filter((m) => m.may.size > 0);
  }

  /** The domains an actor may manage: a user's own; an operator's, all of them. */
  async domains(actor: Actor): Promise<string[]> {
    if (actor.principal.kind === 'user') return [actor.principal.domain];
    return this.#store(() => listDomains(this.deps.db));
  }

  /**
   * What changing one's own code needs right now — asked of decide(), the rule the change itself
   * goes through, so "My voicemail" never shows a form the change would then refuse: nothing
   * (fresh sign-in), the current code, or a new sign-in (no code yet and the sign-in is stale).
   */
  ownCodeNeeds(actor: Actor, mailbox: MailboxSummary): OwnCodeNeeds {
    if (actor.principal.kind !== 'user') return 'fresh_sign_in';
    const target = targetOf(actor.principal.domain, mailbox);
    if (decide(actor.principal, 'change_own_access_code', target, { withCurrentCode: false }).allowed) return 'nothing';
    if (decide(actor.principal, 'change_own_access_code', target, { withCurrentCode: true }).allowed) return 'current_code';
    return 'fresh_sign_in';
  }

  /** Which of these mailboxes are locked after failed logins (null: the counters are unreachable). */
  async lockedOf(domain: string, mailboxes: readonly MailboxSummary[]): Promise<Map<string, boolean | null>> {
    const entries = await Promise.all(mailboxes.map(async (m) => {
      try {
        return [m.number, await this.deps.guard.isLocked(domain.toLowerCase(), m.number)] as const;
      } catch {
        return [m.number, null] as const;
      }
    }));
    return new Map(entries);
  }

  /**
   * The mailbox, if the actor may do `action` on it. To someone who does not manage the whole
   * domain, a number with no mailbox and a mailbox outside their scope answer the same (403
   * not_in_scope, same body): the API must not tell them which numbers exist.
   */
  async #mailbox(actor: Actor, domain: string, number: string, action: Action, opts: { withCurrentCode?: boolean } = {}): Promise<MailboxSummary> {
    if (!inDomain(actor.principal, domain)) throw new PortalError(403, 'other_domain', 'not your domain');
    const [mailbox] = await this.#store(() => listMailboxes(this.deps.db, domain, number));
    if (mailbox === undefined) {
      if (decide(actor.principal, 'view', noMailboxTarget(domain.toLowerCase(), number)).allowed) throw new PortalError(404, 'no_such_mailbox', 'no such mailbox');
      throw notInScope();
    }
    this.#check(actor, domain, mailbox, action, opts);
    return mailbox;
  }

  /**
   * #mailbox's decision on a mailbox already loaded (of `domain`, which inDomain() has admitted):
   * nothing when the actor may do `action` on it; else 403 not_in_scope when they may not even
   * see it, or 403 with decide()'s reason.
   */
  #check(actor: Actor, domain: string, mailbox: MailboxSummary, action: Action, opts: { withCurrentCode?: boolean } = {}): void {
    const target = targetOf(domain, mailbox);
    const decision = decide(actor.principal, action, target, opts);
    if (decision.allowed) return;
    if (!decide(actor.principal, 'view', target).allowed) throw notInScope();
    throw new PortalError(403, decision.reason, 'not allowed');
  }

  #ctx(actor: Actor): CallContext {
    return { channel: actor.channel, actor: actor.name, callId: null };
  }

  /**
   * Sets a mailbox's access code. Someone else's (an administrator): the new code only — never
   * the owner's old code or password. One's own: with the current code, or within 5 minutes of
   * signing in. The phone's rules apply either way; a refusal names the rule (400).
   */
  async setAccessCode(actor: Actor, domain: string, number: string, request: { newCode: string; currentCode?: string | undefined; mustChange?: boolean }): Promise<void> {
    const own = actor.principal.kind === 'user' && (await this.#store(() => listMailboxes(this.deps.db, domain, number)))[0]?.owner?.extension === actor.principal.extension;
    if (own) {
      await this.#mailbox(actor, domain, number, 'change_own_access_code', { withCurrentCode: request.currentCode !== undefined });
      if (request.currentCode !== undefined) {
        const login = await this.deps.accessCodes.verifyLogin(domain, number, request.currentCode, this.#ctx(actor));
        if (login.result === 'unavailable') throw new PortalError(503, 'unavailable', 'try again later');
        if (login.result !== 'ok') throw new PortalError(400, 'current_code_incorrect', 'the current access code is not correct');
      }
    } else {
      await this.#mailbox(actor, domain, number, 'set_access_code');
    }
    const result = await this.deps.accessCodes.changeAccessCode(domain, number, request.newCode, this.#ctx(actor));
    if (result.result === 'rejected') throw new PortalError(400, 'policy', 'the access code is refused', { reason: result.reason });
    if (result.result === 'unavailable') throw new PortalError(503, 'unavailable', 'try again later');
    if (request.mustChange === true && !own) await this.requireChange(actor, domain, number);
  }

  /** The owner must choose a new code right after their next phone login. */
  async requireChange(actor: Actor, domain: string, number: string): Promise<void> {
    const mailbox = await this.#mailbox(actor, domain, number, 'require_change');
    if (!mailbox.hasCode) throw new PortalError(409, 'no_access_code', 'the mailbox has no access code yet');
    await this.#store(() => this.deps.db.transaction(async (tx) => {
      await tx.query('UPDATE access_code_credentials SET must_change = true WHERE mailbox_id = $1', [mailbox.id]);
      await this.#audit(tx, actor, domain, number, 'pin_change_required');
    }));
  }

  async unlock(actor: Actor, domain: string, number: string): Promise<{ wasLocked: boolean }> {
    await this.#mailbox(actor, domain, number, 'unlock');
    try {
      return await this.deps.accessCodes.unlockMailbox(domain, number, this.#ctx(actor));
    } catch (err) {
      this.deps.logger.error({ error: describeError(err) }, 'unlock failed');
      throw new PortalError(503, 'unavailable', 'unlock failed; try again later');
    }
  }

  /**
   * Audit events of a domain, oldest first, only the rows the actor may read (decide()
   * 'read_audit' per mailbox; rows of numbers with no mailbox as decide() says of those). The
   * filtering is done by the database: since/until as instants (ISO-8601 with a zone, else 400),
   * at most `limit` rows (default 1000, at most 10 000); `truncated` says there are more — ask
   * again with `since` set to the last row's time.
   */
  async audit(actor: Actor, domain: string, filter: AuditFilter): Promise<{ events: AuditEvent[]; truncated: boolean }> {
    if (!inDomain(actor.principal, domain)) throw new PortalError(403, 'other_domain', 'not your domain');
    const since = parseInstant(filter.since);
    const until = parseInstant(filter.until);
    if (since === null || until === null) throw new PortalError(400, 'bad_request', 'since and until are ISO-8601 times with a zone, e.g. 2025-01-31T09:30:00Z');
    const limit = filter.limit ?? AUDIT_LIMIT_DEFAULT;
    if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_LIMIT_MAX) throw new PortalError(400, 'bad_request', `limit is 1 to ${AUDIT_LIMIT_MAX}`);
    const p = actor.principal;
    const all = await this.#store(() => listMailboxes(this.deps.db, domain));
    if (filter.mailbox !== undefined) {
      const one = all.find((m) => m.number === filter.mailbox);
      // A number with no mailbox: its rows (failed logins as typed) are for those who may see such numbers.
      if (one !== undefined) this.#check(actor, domain, one, 'read_audit');
      else if (!decide(p, 'read_audit', noMailboxTarget(domain.toLowerCase(), filter.mailbox)).allowed) throw notInScope();
    }
    const readable = (m: MailboxSummary): boolean => decide(p, 'read_audit', targetOf(domain, m)).allowed;
    const mailboxes = decide(p, 'read_audit', noMailboxTarget(domain.toLowerCase(), '')).allowed
      ? { except: all.filter((m) => !readable(m)).map((m) => m.number) }
      : { only: all.filter(readable).map((m) => m.number) };
    const rows = await this.#store(() => listAuditEvents(this.deps.db, {
      domain, mailbox: filter.mailbox, mailboxes, events: filter.event === undefined ? undefined : [filter.event], since, until, limit: limit + 1,
    }));
    return { events: rows.slice(0, limit), truncated: rows.length > limit };
  }

  // --- reset and recycle -------------------------------------------------------------------------

  /** How many messages a reset or recycle of this user's mailbox would delete. */
  async preview(actor: Actor, domain: string, number: string, kind: 'reset' | 'recycle'): Promise<{ messages: number }> {
    const mailbox = await this.#mailbox(actor, domain, number, kind);
    return { messages: mailbox.messages.new + mailbox.messages.saved };
  }

  /**
   * Reset (same person, fresh start) or recycle (the extension handed to someone new): access
   * code and its history cleared (first-time setup on the phone), greeting and name cleared,
   * messages deleted irrecoverably; recycle also removes the portal password and signs the old
   * person out everywhere. Only when `confirmMessages` equals the count the preview showed — a
   * message that arrived since changes it, and the request is refused (409) with the new count.
   * The rows go in one transaction; the audio files after it commits.
   */
  async resetOrRecycle(actor: Actor, domain: string, number: string, kind: 'reset' | 'recycle', confirmMessages: number): Promise<{ messagesDeleted: number }> {
    const mailbox = await this.#mailbox(actor, domain, number, kind);
    const keys = await this.#store(() => this.deps.db.transaction(async (tx) => {
      await tx.query('SELECT id FROM mailboxes WHERE id = $1 FOR UPDATE', [mailbox.id]);
      const messages = await tx.query<{ audio_key: string }>('SELECT audio_key FROM messages WHERE mailbox_id = $1 FOR UPDATE', [mailbox.id]);
      if (messages.length !== confirmMessages) {
        throw new PortalError(409, 'confirmation_mismatch', `${messages.length} messages would be deleted, not ${confirmMessages}`, { messages: messages.length });
      }
      const media = await tx.query<{ greeting_key: string | null; name_key: string | null }>('SELECT greeting_key, name_key FROM mailboxes WHERE id = $1', [mailbox.id]);
      await tx.query('DELETE FROM messages WHERE mailbox_id = $1', [mailbox.id]);
      await tx.query('DELETE FROM access_code_credentials WHERE mailbox_id = $1', [mailbox.id]);
      await tx.query('DELETE FROM access_code_history WHERE mailbox_id = $1', [mailbox.id]);
      await tx.query('UPDATE mailboxes SET greeting_key = NULL, name_key = NULL WHERE id = $1', [mailbox.id]);
      if (kind === 'recycle' && mailbox.owner !== null) {
        const owner = await tx.query<{ id: number }>(
          'SELECT u.id FROM users u JOIN domains d ON d.id = u.domain_id WHERE d.name = $1 AND u.extension = $2', [domain.toLowerCase(), mailbox.owner.extension]);
        if (owner[0] !== undefined) {
          await tx.query('DELETE FROM portal_accounts WHERE user_id = $1', [owner[0].id]);
          await tx.query('DELETE FROM portal_sessions WHERE user_id = $1', [owner[0].id]);
        }
      }
      await this.#audit(tx, actor, domain, number, kind === 'reset' ? 'mailbox_reset' : 'mailbox_recycled');
      // The other servers' lights follow at COMMIT, as for every other change of the counts.
      await this.deps.messages?.announce(tx, domain, number);
      return [...messages.map((m) => m.audio_key), ...[media[0]?.greeting_key, media[0]?.name_key].filter((k): k is string => typeof k === 'string')];
    }));
    await this.deps.guard.unlock(domain.toLowerCase(), number).catch(() => undefined);
    await this.deps.audio.delete(keys).catch((err: unknown) => this.deps.logger.error({ error: describeError(err) }, 'message audio not deleted after reset/recycle'));
    // The message-waiting light goes out (RFC 3842 NOTIFY with 0/0).
    this.deps.messages?.changed(domain, number);
    return { messagesDeleted: confirmMessages };
  }

  async #audit(tx: Pick<Database, 'query'>, actor: Actor, domain: string, mailbox: string, event: AuditEventName): Promise<void> {
    await appendAuditEvent(tx, { domain, mailbox, event, channel: actor.channel, actor: actor.name, callId: null });
  }

  async #store<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof PortalError) throw err;
      this.deps.logger.error({ error: describeError(err) }, 'portal store request failed');
      throw new PortalError(503, 'unavailable', 'try again later');
    }
  }
}

export function targetOf(domain: string, m: MailboxSummary): MailboxTarget {
  return {
    domain: domain.toLowerCase(), number: m.number, members: m.members, hasCode: m.hasCode,
    owner: m.owner === null ? null : { extension: m.owner.extension, role: m.owner.role, site: m.owner.site },
  };
}

/** The one answer for "not yours to see", whether the mailbox exists or not. */
function notInScope(): PortalError {
  return new PortalError(403, 'not_in_scope', 'not allowed');
}
