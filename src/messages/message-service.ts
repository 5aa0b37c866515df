/**
 * Voicemail messages: deposit (the caller's recording into a mailbox), list, mark heard/saved,
 * delete — the store's rows and the audio store's bytes kept in step, and a change of a mailbox's
 * counts announced (message-waiting lights, RFC 3842) to this server and, through the change bus
 * (./mailbox-changes.ts), to the others sharing the store.
 *
 * All or nothing: a deposit writes the row and its audio in one transaction (./audio-store.ts:
 * the database kind inserts the bytes in it; the file kind renames its file into place just
 * before COMMIT and removes it if the transaction rolls back). A delete removes the row with its
 * audit event in one transaction (the database kind's bytes go with it, by trigger) and the file
 * after it commits. What a crash can leave — a file without a row — is removed by the orphan
 * sweep (./orphan-sweep.ts) once it is old enough to be sure. A row without audio cannot happen.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { CallContext } from '../mailbox/access-code-service.js';
import type { AudioStore } from './audio-store.js';
import { LocalChangeBus, type MailboxChangeBus } from './mailbox-changes.js';
import { appendAuditEvent } from '../store/audit.js';
import { describeError, type Database, type Queryable } from '../store/database.js';

export interface StoredMessage {
  readonly id: string;
  readonly caller: string;
  readonly callerName: string | null;
  readonly receivedAt: Date;
  readonly durationMs: number;
  readonly state: 'new' | 'saved';
  /** Where the message is filed ('inbox' for everything a caller leaves); state is separate. */
  readonly folder: string;
  readonly audioKey: string;
}

export interface MessageCounts {
  readonly new: number;
  readonly saved: number;
}

export interface Deposit {
  readonly domain: string;
  readonly mailbox: string;
  readonly caller: string;
  readonly callerName?: string | null;
  /** 8 kHz mono 16-bit PCM WAV. */
  readonly wav: Buffer;
  readonly durationMs: number;
}

/** Shorter recordings are not kept ("anything under 1 s is dropped"). */
export const MIN_MESSAGE_MS = 1000;
const CALLER_MAX = 128;
const MESSAGE_ID = /^\d{1,18}$/;

const COLUMNS = 'x.id, x.caller, x.caller_name, x.received_at, x.duration_ms, x.state, x.folder, x.audio_key';

interface MessageRow {
  id: string;
  caller: string;
  caller_name: string | null;
  received_at: Date | string;
  duration_ms: number;
  state: 'new' | 'saved';
  folder: string;
  audio_key: string;
}

function toMessage(r: MessageRow): StoredMessage {
  return {
    id: String(r.id), caller: r.caller, callerName: r.caller_name, receivedAt: new Date(r.received_at),
    durationMs: r.duration_ms, state: r.state, folder: r.folder, audioKey: r.audio_key,
  };
}

export interface MessageServiceEvents {
  /** A mailbox's counts may have changed, here or on another server (domain lower-cased). */
  changed: [domain: string, mailbox: string];
  /** Changes of other servers may have been missed: whoever shows counts re-reads them. */
  resync: [];
}

export interface MessageServiceDeps {
  readonly db: Database;
  readonly audio: AudioStore;
  readonly logger: Logger;
  /** How other servers learn of changes (default: none — PGlite, one process). */
  readonly changes?: MailboxChangeBus;
}

export class MessageService extends EventEmitter<MessageServiceEvents> {
  private readonly changes: MailboxChangeBus;

  constructor(private readonly deps: MessageServiceDeps) {
    super();
    this.changes = deps.changes ?? new LocalChangeBus();
  }

  /** Starts taking other servers' changes (the serving process; CLI commands only send). */
  listenToOtherServers(): void {
    this.changes.listen({
      changed: (domain, mailbox) => this.changed(domain, mailbox),
      resync: () => this.emit('resync'),
    });
  }

  /**
   * Tells this server that a mailbox's counts changed (domain lower-cased for the listeners): after
   * this service's own commits, for other servers' changes, and for changes that committed outside
   * this service (reset, recycle) — whose transaction told the other servers with announce().
   */
  changed(domain: string, mailbox: string): void {
    this.emit('changed', domain.toLowerCase(), mailbox);
  }

  /**
   * Inside the transaction that changes a mailbox's counts (this service's own, or the portal's
   * reset/recycle): the other servers hear of it when (and only if) it commits.
   */
  async announce(tx: Queryable, domain: string, mailbox: string): Promise<void> {
    await this.changes.publish(tx, domain, mailbox);
  }

  /** Stores a message: row and audio in one transaction. */
  async deposit(d: Deposit): Promise<{ result: 'saved' | 'tooShort' | 'unavailable'; id?: string }> {
    if (d.durationMs < MIN_MESSAGE_MS) return { result: 'tooShort' };
    const { audio, logger } = this.deps;
    const key = audio.newKey();
    // Set once the body is done: a failure after it is the COMMIT's, whose outcome is unknown.
    let committing = false;
    try {
      const id = await this.deps.db.transaction(async (tx) => {
        const rows = await tx.query<{ id: string }>(
          `INSERT INTO messages (mailbox_id, caller, caller_name, duration_ms, audio_key)
           SELECT m.id, $3, $4, $5, $6 FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE d.name = $1 AND m.number = $2
           RETURNING id`,
          [d.domain.toLowerCase(), d.mailbox, d.caller.slice(0, CALLER_MAX), d.callerName?.slice(0, CALLER_MAX) ?? null, Math.round(d.durationMs), key]);
        if (rows[0] === undefined) throw new Error('no such mailbox');
        await this.announce(tx, d.domain, d.mailbox);
        // Last: the file kind renames its file into place here, right before COMMIT.
        await audio.put(tx, key, d.wav);
        committing = true;
        return String(rows[0].id);
      });
      this.changed(d.domain, d.mailbox);
      return { result: 'saved', id };
    } catch (err) {
      if (committing) {
        // The row may or may not have committed: its audio stays, and the orphan sweep removes it
        // later should no row name it.
        logger.error({ domain: d.domain, error: describeError(err) }, 'message storage in doubt (COMMIT failed); audio left to the orphan sweep');
      } else {
        logger.error({ domain: d.domain, error: describeError(err) }, 'message could not be stored');
        await audio.discard(key).catch((e: unknown) => logger.warn({ error: describeError(e) }, 'audio of a failed deposit not removed'));
      }
      return { result: 'unavailable' };
    }
  }

  /** A mailbox's messages, newest first. */
  async list(domain: string, mailbox: string): Promise<StoredMessage[]> {
    const rows = await this.deps.db.query<MessageRow>(
      `SELECT ${COLUMNS}
         FROM messages x JOIN mailboxes m ON m.id = x.mailbox_id JOIN domains d ON d.id = m.domain_id
        WHERE d.name = $1 AND m.number = $2
        ORDER BY x.received_at DESC, x.id DESC`, [domain.toLowerCase(), mailbox]);
    return rows.map(toMessage);
  }

  async get(domain: string, mailbox: string, id: string): Promise<StoredMessage | null> {
    if (!MESSAGE_ID.test(id)) return null;
    const rows = await this.deps.db.query<MessageRow>(
      `SELECT ${COLUMNS}
         FROM messages x JOIN mailboxes m ON m.id = x.mailbox_id JOIN domains d ON d.id = m.domain_id
        WHERE d.name = $1 AND m.number = $2 AND x.id = $3`, [domain.toLowerCase(), mailbox, id]);
    return rows[0] === undefined ? null : toMessage(rows[0]);
  }

  async counts(domain: string, mailbox: string): Promise<MessageCounts> {
    const rows = await this.deps.db.query<{ new: number; saved: number }>(
      `SELECT count(*) FILTER (WHERE x.state = 'new')::int AS new, count(*) FILTER (WHERE x.state = 'saved')::int AS saved
         FROM messages x JOIN mailboxes m ON m.id = x.mailbox_id JOIN domains d ON d.id = m.domain_id
        WHERE d.name = $1 AND m.number = $2`, [domain.toLowerCase(), mailbox]);
    return { new: rows[0]?.new ?? 0, saved: rows[0]?.saved ?? 0 };
  }

  /** Marks a message heard/saved (new → saved); false when there is no such message. */
  async markSaved(domain: string, mailbox: string, id: string): Promise<boolean> {
    if (!MESSAGE_ID.test(id)) return false;
    const changed = await this.deps.db.transaction(async (tx) => {
      const rows = await tx.query<{ id: string }>(
        `UPDATE messages x SET state = 'saved'
           FROM mailboxes m JOIN domains d ON d.id = m.domain_id
          WHERE x.mailbox_id = m.id AND d.name = $1 AND m.number = $2 AND x.id = $3
          RETURNING x.id`, [domain.toLowerCase(), mailbox, id]);
      if (rows.length > 0) await this.announce(tx, domain, mailbox);
      return rows.length > 0;
    });
    if (changed) this.changed(domain, mailbox);
    return changed;
  }

  /**
   * Deletes a message for good: the row, its audit event (and in the database kind its audio) in
   * one transaction, then the audio file.
   */
  async delete(domain: string, mailbox: string, id: string, ctx: CallContext): Promise<boolean> {
    if (!MESSAGE_ID.test(id)) return false;
    const key = await this.deps.db.transaction(async (tx) => {
      const rows = await tx.query<{ audio_key: string }>(
        `DELETE FROM messages x USING mailboxes m, domains d
          WHERE x.mailbox_id = m.id AND m.domain_id = d.id AND d.name = $1 AND m.number = $2 AND x.id = $3
          RETURNING x.audio_key`, [domain.toLowerCase(), mailbox, id]);
      if (rows[0] === undefined) return null;
      // No digits, no audio: only that a message of this mailbox was deleted, by whom.
      await appendAuditEvent(tx, { domain, mailbox, event: 'message_deleted', channel: ctx.channel, actor: ctx.actor, callId: ctx.callId });
      await this.announce(tx, domain, mailbox);
      return rows[0].audio_key;
    });
    if (key === null) return false;
    await this.deps.audio.delete([key]).catch((err: unknown) => this.deps.logger.error({ error: describeError(err) }, 'deleted message audio not removed'));
    this.changed(domain, mailbox);
    return true;
  }

  async audio(message: StoredMessage): Promise<Buffer> {
    return this.deps.audio.get(message.audioKey);
  }

  async close(): Promise<void> {
    await this.changes.close();
  }
}
