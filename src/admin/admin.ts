/**
 * Operator actions shared by the CLI and the server's admin endpoint. The CLI runs them against
 * the store directly (LocalAdmin), or — when a server owns the data directory — asks that
 * server over HTTP (RemoteAdmin), so the embedded store is only ever opened by one process.
 */
import type { Logger } from '../log.js';
import type { AccessCodeHasher } from '../domain/access-code-hasher.js';
import type { AccessCodeService } from '../mailbox/access-code-service.js';
import { appendAuditEvent, CONTRACT_AUDIT_EVENTS, listAuditEvents, OPERATORS_AUDIT_DOMAIN, type AuditEvent, type AuditEventName } from '../store/audit.js';
import type { Database, Queryable } from '../store/database.js';
import { seedDemo, type DemoSeedResult } from '../store/demo.js';
import { migrate } from '../store/migrate.js';
import { randomBytes } from 'node:crypto';
import { ROLES, type Role } from '../domain/permissions.js';
import { passwordProblem } from '../domain/password-hasher.js';
import { createApiToken, findOperator, findPortalUser, revokeApiTokens, setPortalPassword, upsertOperator } from '../store/accounts.js';

export interface AuditFilter {
  readonly domain: string;
  readonly mailbox?: string | undefined;
  /** Every event; otherwise only the CONTRACT's six (what external tools validate against). */
  readonly all?: boolean | undefined;
}

/** Who runs an account command, for its audit row (channel cli), e.g. `cli:<os user>`. */
export interface ByWhom {
  readonly actor: string;
}

export interface UnlockRequest {
  readonly domain: string;
  readonly mailbox: string;
  /** Who asks, for the audit row (channel cli), e.g. `cli:<os user>`. */
  readonly actor: string;
}

export interface NewUser extends ByWhom {
  readonly domain: string;
  readonly extension: string;
  readonly displayName: string;
  readonly role: Role;
  readonly site?: string | undefined;
  /** A portal (web) password; none → no portal account yet. */
  readonly password?: string | undefined;
}

export interface AdminOperations {
  audit(filter: AuditFilter): Promise<AuditEvent[]>;
  /** A user with a personal mailbox (no access code yet: first-time setup on the phone). Audited. */
  createUser(user: NewUser): Promise<void>;
  /** Sets (or creates) a user's portal password and ends their sessions. Audited. */
  setUserPassword(request: { domain: string; extension: string; password: string } & ByWhom): Promise<void>;
  /** Creates an operator (reseller/superuser, all domains) or sets its password. Audited. */
  setOperator(request: { name: string; password?: string | undefined } & ByWhom): Promise<void>;
  /** A new API token for an operator; returned once, only its hash is kept. Audited. */
  createToken(request: { operator: string; label: string } & ByWhom): Promise<{ token: string }>;
  /** Revokes an operator's active tokens: the one given, or all with the label. Audited. */
  revokeToken(request: { operator: string; label?: string | undefined; token?: string | undefined } & ByWhom): Promise<{ revoked: number }>;
  migrate(): Promise<string[]>;
  seedDemo(): Promise<DemoSeedResult>;
  /** Clears a mailbox's failed-login lock (audited `mailbox_unlocked`, channel cli). */
  unlock(request: UnlockRequest): Promise<{ wasLocked: boolean }>;
}

/**
 * Who ran a command, as recorded (channel cli): at most 200 characters, never empty. Applied
 * here, where every command arrives — from the CLI itself or through the server's /admin/*.
 */
function cliActor(actor: string): string {
  return actor.slice(0, 200) || 'cli';
}

/** An account change made on the command line: channel cli, never a password or token in it. */
function auditCli(q: Queryable, actor: string, domain: string, mailbox: string, event: AuditEventName): Promise<void> {
  return appendAuditEvent(q, { domain, mailbox, event, channel: 'cli', actor: cliActor(actor), callId: null });
}

export class LocalAdmin implements AdminOperations {
  constructor(private readonly deps: { db: Database; hasher: AccessCodeHasher; passwords: AccessCodeHasher; logger: Logger; accessCodes: AccessCodeService }) {}

  async createUser(user: NewUser): Promise<void> {
    const problem = user.password === undefined ? null : passwordProblem(user.password);
    if (problem !== null) throw new AdminRequestError(problem, 400);
    if (!ROLES.includes(user.role)) throw new AdminRequestError(`role must be one of ${ROLES.join(', ')}`, 400);
    if (!/^[0-9]{1,15}$/.test(user.extension)) throw new AdminRequestError('the extension must be 1 to 15 digits', 400);
    const passwordHash = user.password === undefined ? null : await this.deps.passwords.hash(user.password);
    const domainName = user.domain.toLowerCase();
    await this.deps.db.transaction(async (tx) => {
      const domain = await tx.query<{ id: number }>('SELECT id FROM domains WHERE name = $1', [domainName]);
      if (domain[0] === undefined) throw new AdminRequestError(`no domain ${user.domain}`, 400);
      const taken = await tx.query('SELECT 1 FROM users WHERE domain_id = $1 AND extension = $2', [domain[0].id, user.extension]);
      if (taken.length > 0) throw new AdminRequestError(`user ${user.extension} already exists in ${user.domain}`, 400);
      const created = await tx.query<{ id: number }>(
        'INSERT INTO users (domain_id, extension, display_name, role, site) VALUES ($1, $2, $3, $4, $5) RETURNING id',
        [domain[0].id, user.extension, user.displayName, user.role, user.site ?? null]);
      await tx.query('INSERT INTO mailboxes (domain_id, number, owner_user_id) VALUES ($1, $2, $3) ON CONFLICT (domain_id, number) DO NOTHING',
        [domain[0].id, user.extension, created[0]!.id]);
      await auditCli(tx, user.actor, domainName, user.extension, 'user_created');
      if (passwordHash !== null) {
        await setPortalPassword(tx, created[0]!.id, passwordHash);
        await auditCli(tx, user.actor, domainName, user.extension, 'portal_password_set');
      }
    });
  }

  async setUserPassword(request: { domain: string; extension: string; password: string } & ByWhom): Promise<void> {
    const problem = passwordProblem(request.password);
    if (problem !== null) throw new AdminRequestError(problem, 400);
    const user = await findPortalUser(this.deps.db, request.domain, request.extension);
    if (user === null) throw new AdminRequestError(`no user ${request.extension} in ${request.domain}`, 400);
    const hash = await this.deps.passwords.hash(request.password);
    // The new password, the end of the old sessions and the audit row: all or nothing.
    await this.deps.db.transaction(async (tx) => {
      await setPortalPassword(tx, user.userId, hash);
      await auditCli(tx, request.actor, user.domain, user.extension, 'portal_password_set');
    });
  }

  async setOperator(request: { name: string; password?: string | undefined } & ByWhom): Promise<void> {
    if (!/^[a-z0-9._-]{1,64}$/.test(request.name)) throw new AdminRequestError('an operator name is 1 to 64 of a-z 0-9 . _ -', 400);
    const problem = request.password === undefined ? null : passwordProblem(request.password);
    if (problem !== null) throw new AdminRequestError(problem, 400);
    const hash = request.password === undefined ? null : await this.deps.passwords.hash(request.password);
    await this.deps.db.transaction(async (tx) => {
      await upsertOperator(tx, request.name, hash);
      await auditCli(tx, request.actor, OPERATORS_AUDIT_DOMAIN, request.name, 'operator_set');
    });
  }

  async createToken(request: { operator: string; label: string } & ByWhom): Promise<{ token: string }> {
    const operator = await this.#operator(request.operator);
    const token = randomBytes(32).toString('base64url');
    await this.deps.db.transaction(async (tx) => {
      await createApiToken(tx, operator.id, request.label.slice(0, 100) || 'token', token);
      await auditCli(tx, request.actor, OPERATORS_AUDIT_DOMAIN, operator.name, 'api_token_created');
    });
    return { token };
  }

  async revokeToken(request: { operator: string; label?: string | undefined; token?: string | undefined } & ByWhom): Promise<{ revoked: number }> {
    if ((request.label === undefined) === (request.token === undefined)) throw new AdminRequestError('give either a label or the token', 400);
    const operator = await this.#operator(request.operator);
    const revoked = await this.deps.db.transaction(async (tx) => {
      const n = await revokeApiTokens(tx, operator.id, request.token !== undefined ? { token: request.token } : { label: request.label! });
      if (n > 0) await auditCli(tx, request.actor, OPERATORS_AUDIT_DOMAIN, operator.name, 'api_token_revoked');
      return n;
    });
    if (revoked === 0) {
      throw new AdminRequestError(request.token !== undefined
        ? `operator ${operator.name} has no such active token`
        : `operator ${operator.name} has no active token labelled ${request.label}`, 400);
    }
    return { revoked };
  }

  async #operator(name: string): Promise<{ id: number; name: string }> {
    const operator = await findOperator(this.deps.db, name);
    if (operator === null) throw new AdminRequestError(`no operator ${name} (vmaccess operator set --name ${name})`, 400);
    return operator;
  }

  /** In a server the counters are its own (in-process) or shared ones (Redis); in the CLI, Redis or none. */
  unlock(request: UnlockRequest): Promise<{ wasLocked: boolean }> {
    return this.deps.accessCodes.unlockMailbox(request.domain, request.mailbox, { channel: 'cli', actor: cliActor(request.actor), callId: null });
  }

  audit(filter: AuditFilter): Promise<AuditEvent[]> {
    return listAuditEvents(this.deps.db, { domain: filter.domain, mailbox: filter.mailbox, events: filter.all === true ? undefined : CONTRACT_AUDIT_EVENTS });
  }

  migrate(): Promise<string[]> {
    return migrate(this.deps.db, this.deps.logger);
  }

  seedDemo(): Promise<DemoSeedResult> {
    return seedDemo(this.deps.db, this.deps.hasher, this.deps.passwords);
  }
}

/** An admin request the server refused or could not carry out; the message is for the operator. */
export class AdminRequestError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = 'AdminRequestError';
  }
}

export class RemoteAdmin implements AdminOperations {
  constructor(private readonly baseUrl: string, private readonly token: string) {}

  private async call<T>(method: 'GET' | 'POST', path: string, query?: Record<string, string | undefined>, body?: unknown): Promise<T> {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new AdminRequestError(`the running server at ${this.baseUrl} did not answer (${(err as Error).message})`, 0);
    }
    const answer = await res.json().catch(() => ({})) as { error?: string } & T;
    if (!res.ok) throw new AdminRequestError(answer.error ?? `the server answered ${res.status}`, res.status);
    return answer;
  }

  async audit(filter: AuditFilter): Promise<AuditEvent[]> {
    return (await this.call<{ events: AuditEvent[] }>('GET', '/admin/audit', { domain: filter.domain, mailbox: filter.mailbox, all: filter.all === true ? '1' : undefined })).events;
  }

  async migrate(): Promise<string[]> {
    return (await this.call<{ applied: string[] }>('POST', '/admin/migrate')).applied;
  }

  async seedDemo(): Promise<DemoSeedResult> {
    return this.call<DemoSeedResult>('POST', '/admin/demo');
  }

  async unlock(request: UnlockRequest): Promise<{ wasLocked: boolean }> {
    const body = await this.call<{ wasLocked?: unknown }>('POST', '/admin/unlock', { ...request });
    return { wasLocked: body.wasLocked === true };
  }

  async createUser(user: NewUser): Promise<void> {
    await this.call('POST', '/admin/users', undefined, user);
  }

  async setUserPassword(request: { domain: string; extension: string; password: string } & ByWhom): Promise<void> {
    await this.call('POST', '/admin/user-password', undefined, request);
  }

  async setOperator(request: { name: string; password?: string | undefined } & ByWhom): Promise<void> {
    await this.call('POST', '/admin/operators', undefined, request);
  }

  async createToken(request: { operator: string; label: string } & ByWhom): Promise<{ token: string }> {
    return this.call<{ token: string }>('POST', '/admin/tokens', undefined, request);
  }

  async revokeToken(request: { operator: string; label?: string | undefined; token?: string | undefined } & ByWhom): Promise<{ revoked: number }> {
    const body = await this.call<{ revoked?: unknown }>('POST', '/admin/tokens/revoke', undefined, request);
    return { revoked: typeof body.revoked === 'number' ? body.revoked : 0 };
  }
}
