/**
 * Operator actions shared by the CLI and the server's admin endpoint. The CLI runs them against
 * the store directly (LocalAdmin), or — when a server owns the data directory — asks that
 * server over HTTP (RemoteAdmin), so the embedded store is only ever opened by one process.
 */
import type { Logger } from '../log.js';
import type { AccessCodeHasher } from '../domain/access-code-hasher.js';
import type { AccessCodeService } from '../mailbox/access-code-service.js';
import { listAuditEvents, type AuditEvent } from '../store/audit.js';
import type { Database } from '../store/database.js';
import { seedDemo, type DemoSeedResult } from '../store/demo.js';
import { migrate } from '../store/migrate.js';

export interface AuditFilter {
  readonly domain: string;
  readonly mailbox?: string | undefined;
}

export interface UnlockRequest {
  readonly domain: string;
  readonly mailbox: string;
  /** Who asks, for the audit row (channel cli), e.g. `cli:<os user>`. */
  readonly actor: string;
}

export interface AdminOperations {
  audit(filter: AuditFilter): Promise<AuditEvent[]>;
  migrate(): Promise<string[]>;
  seedDemo(): Promise<DemoSeedResult>;
  /** Clears a mailbox's failed-login lock (audited `mailbox_unlocked`, channel cli). */
  unlock(request: UnlockRequest): Promise<{ wasLocked: boolean }>;
}

export class LocalAdmin implements AdminOperations {
  constructor(private readonly deps: { db: Database; hasher: AccessCodeHasher; logger: Logger; accessCodes: AccessCodeService }) {}

  /** In a server the counters are its own (in-process) or shared ones (Redis); in the CLI, Redis or none. */
  unlock(request: UnlockRequest): Promise<{ wasLocked: boolean }> {
    return this.deps.accessCodes.unlockMailbox(request.domain, request.mailbox, { channel: 'cli', actor: request.actor, callId: null });
  }

  audit(filter: AuditFilter): Promise<AuditEvent[]> {
    return listAuditEvents(this.deps.db, filter);
  }

  migrate(): Promise<string[]> {
    return migrate(this.deps.db, this.deps.logger);
  }

  seedDemo(): Promise<DemoSeedResult> {
    return seedDemo(this.deps.db, this.deps.hasher);
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

  private async call<T>(method: 'GET' | 'POST', path: string, query?: Record<string, string | undefined>): Promise<T> {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.token}` },
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new AdminRequestError(`the running server at ${this.baseUrl} did not answer (${(err as Error).message})`, 0);
    }
    const body = await res.json().catch(() => ({})) as { error?: string } & T;
    if (!res.ok) throw new AdminRequestError(body.error ?? `the server answered ${res.status}`, res.status);
    return body;
  }

  async audit(filter: AuditFilter): Promise<AuditEvent[]> {
    return (await this.call<{ events: AuditEvent[] }>('GET', '/admin/audit', { domain: filter.domain, mailbox: filter.mailbox })).events;
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
}
