/**
 * Telling every server that a mailbox's counts changed, so the message-waiting light of a phone
 * subscribed on server B follows a message left, heard, deleted, reset or recycled on server A.
 *
 * - Postgres (several servers may share it): a NOTIFY on MAILBOX_CHANGES_CHANNEL with the domain
 *   and mailbox, sent inside the transaction that made the change — Postgres delivers it at
 *   COMMIT and drops it on ROLLBACK — and a LISTEN on a connection of its own, reconnected when
 *   it is lost. Changes made while it was down are not replayed by Postgres, so every (re)connect
 *   asks for a resync: each server re-reads the counts of the mailboxes it serves.
 * - PGlite (one process holds the store): nothing leaves the process; the message service
 *   announces its changes to this server only.
 *
 * A server ignores its own notifications (the payload names the sender): it announced those
 * already, at once, after its COMMIT.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../log.js';
import { describeError, type Queryable } from '../store/database.js';

export const MAILBOX_CHANGES_CHANNEL = 'vmaccess_mailbox_changes';
/** application_name of the LISTEN connection (visible in pg_stat_activity). */
export const LISTEN_APPLICATION_NAME = 'vmaccess-mailbox-changes';

export interface ChangeHandlers {
  /** Another server changed this mailbox's counts (domain lower-cased). */
  changed(domain: string, mailbox: string): void;
  /** Changes may have been missed (the LISTEN connection was (re)established): re-read them all. */
  resync(): void;
}

export interface MailboxChangeBus {
  /**
   * Tells the other servers, as part of `q`'s transaction when `q` is one (delivered at its COMMIT,
   * not at all on ROLLBACK), else at once.
   */
  publish(q: Queryable, domain: string, mailbox: string): Promise<void>;
  /** Starts receiving the other servers' changes. Once. */
  listen(handlers: ChangeHandlers): void;
  close(): Promise<void>;
}

/** PGlite: the store has one process, so there is nobody else to tell. */
export class LocalChangeBus implements MailboxChangeBus {
  async publish(): Promise<void> {}
  listen(): void {}
  async close(): Promise<void> {}
}

interface Payload {
  /** The sending server. */
  o: string;
  d: string;
  m: string;
}

function parsePayload(text: string): Payload | null {
  try {
    const p = JSON.parse(text) as Partial<Payload>;
    return typeof p.o === 'string' && typeof p.d === 'string' && typeof p.m === 'string' ? { o: p.o, d: p.d, m: p.m } : null;
  } catch {
    return null;
  }
}

export interface PostgresChangeBusOptions {
  readonly databaseUrl: string;
  readonly logger: Logger;
  /** Delay before the first reconnect attempt, doubled up to maxRetryMs (defaults 500 ms, 30 s). */
  readonly minRetryMs?: number;
  readonly maxRetryMs?: number;
}

export class PostgresChangeBus implements MailboxChangeBus {
  readonly #origin = randomBytes(8).toString('hex');
  readonly #log: Logger;
  #handlers: ChangeHandlers | null = null;
  #client: pg.Client | null = null;
  #retryMs: number;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(private readonly opts: PostgresChangeBusOptions) {
    this.#log = opts.logger.child({ component: 'mailbox-changes' });
    this.#retryMs = opts.minRetryMs ?? 500;
  }

  async publish(q: Queryable, domain: string, mailbox: string): Promise<void> {
    const payload: Payload = { o: this.#origin, d: domain.toLowerCase(), m: mailbox };
    // pg_notify(), not NOTIFY: the channel and payload are parameters, never SQL text.
    await q.query('SELECT pg_notify($1, $2)', [MAILBOX_CHANGES_CHANNEL, JSON.stringify(payload)]);
  }

  listen(handlers: ChangeHandlers): void {
    if (this.#handlers !== null || this.#closed) return;
    this.#handlers = handlers;
    void this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.opts.databaseUrl,
      application_name: LISTEN_APPLICATION_NAME,
      connectionTimeoutMillis: 3_000,
      keepAlive: true,
    });
    let lost = false;
    const onLost = (err?: Error): void => {
      if (lost) return;
      lost = true;
      if (this.#client === client) this.#client = null;
      if (this.#closed) return;
      this.#log.warn({ error: err === undefined ? undefined : describeError(err), retryMs: this.#retryMs }, 'mailbox change feed lost; reconnecting');
      client.end().catch(() => undefined);
      this.#retryTimer = setTimeout(() => { void this.#connect(); }, this.#retryMs);
      this.#retryTimer.unref();
      this.#retryMs = Math.min(this.#retryMs * 2, this.opts.maxRetryMs ?? 30_000);
    };
    // pg.Client emits 'error' for a connection lost while idle; unhandled, it would end the process.
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (msg) => this.#receive(msg));
    try {
      await client.connect();
      await client.query(`LISTEN ${MAILBOX_CHANGES_CHANNEL}`);
    } catch (err) {
      onLost(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.#closed || lost) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#retryMs = this.opts.minRetryMs ?? 500;
    this.#log.debug('listening for mailbox changes of other servers');
    // Whatever changed while nobody listened is re-read now.
    this.#handlers?.resync();
  }

  #receive(msg: pg.Notification): void {
    if (msg.channel !== MAILBOX_CHANGES_CHANNEL || msg.payload === undefined) return;
    const p = parsePayload(msg.payload);
    if (p === null) {
      this.#log.warn('unreadable mailbox change notification ignored');
      return;
    }
    if (p.o === this.#origin) return;
    this.#handlers?.changed(p.d, p.m);
  }
}
