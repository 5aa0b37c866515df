/**
 * Voicemail messages: deposit (the caller's recording into a mailbox), list, mark heard/saved,
 * delete — the store's rows and the audio store's files kept in step, and a change of a mailbox's
 * counts announced (message-waiting lights, RFC 3842).
 *
 * All or nothing: a deposit writes the audio first and the row second, and removes the audio if
 * the row cannot be written; a delete removes the row (with its audit event) in one transaction
 * and the audio after it commits. What a crash between the two steps can leave — an audio file
 * without a row — is removed by sweepOrphans() at start. A row without audio cannot happen.
 */
import { EventEmitter } from 'node:events';
import { readdir } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { CallContext } from '../mailbox/access-code-service.js';
import type { AudioStore } from './audio-store.js';
import { appendAuditEvent } from '../store/audit.js';
import { describeError, type Database } from '../store/database.js';

export interface StoredMessage {
  readonly id: string;
  readonly caller: string;
  readonly callerName: string | null;
  readonly receivedAt: Date;
  readonly durationMs: number;
  readonly state: 'new' | 'saved';
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

interface MessageRow {
  id: string;
  caller: string;
  caller_name: string | null;
  received_at: Date | string;
  duration_ms: number;
  state: 'new' | 'saved';
  audio_key: string;
}

function toMessage(r: MessageRow): StoredMessage {
  return {
    id: String(r.id), caller: r.caller, callerName: r.caller_name, receivedAt: new Date(r.received_at),
    durationMs: r.duration_ms, state: r.state, audioKey: r.audio_key,
  };
}

export interface MessageServiceEvents {
  /** A mailbox's counts may have changed (domain lower-cased). */
  changed: [domain: string, mailbox: string];
}

export class MessageService extends EventEmitter<MessageServiceEvents> {
  constructor(private readonly deps: { db: Database; audio: AudioStore; logger: Logger }) {
    super();
  }

  /** Announces a change of a mailbox's counts (the MWI notifier listens). */
  changed(domain: string, mailbox: string): void {
    this.emit('changed', domain.toLowerCase(), mailbox);
  }

  /** Stores a message: audio, then the row; the audio goes again if the row cannot be written. */
  async deposit(d: Deposit): Promise<{ result: 'saved' | 'tooShort' | 'unavailable'; id?: string }> {
    if (d.durationMs < MIN_MESSAGE_MS) return { result: 'tooShort' };
    const key = this.deps.audio.newKey();
    try {
      await this.deps.audio.put(key, d.wav);
    } catch (err) {
      this.deps.logger.error({ error: describeError(err) }, 'message audio could not be written');
      return { result: 'unavailable' };
    }
    try {
      const rows = await this.deps.db.query<{ id: string }>(
        `INSERT INTO messages (mailbox_id, caller, caller_name, duration_ms, audio_key)
         SELECT m.id, $3, $4, $5, $6 FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE d.name = $1 AND m.number = $2
         RETURNING id`,
        [d.domain.toLowerCase(), d.mailbox, d.caller.slice(0, CALLER_MAX), d.callerName?.slice(0, CALLER_MAX) ?? null, Math.round(d.durationMs), key]);
      if (rows[0] === undefined) throw new Error('no such mailbox');
      this.changed(d.domain, d.mailbox);
      return { result: 'saved', id: String(rows[0].id) };
    } catch (err) {
      this.deps.logger.error({ domain: d.domain, error: describeError(err) }, 'message could not be stored');
      await this.deps.audio.delete([key]).catch(() => undefined);
      return { result: 'unavailable' };
    }
  }

  /** A mailbox's messages, newest first. */
  async list(domain: string, mailbox: string): Promise<StoredMessage[]> {
    const rows = await this.deps.db.query<MessageRow>(
      `SELECT x.id, x.caller, x.caller_name, x.received_at, x.duration_ms, x.state, x.audio_key
         FROM messages x JOIN mailboxes m ON m.id = x.mailbox_id JOIN domains d ON d.id = m.domain_id
        WHERE d.name = $1 AND m.number = $2
        ORDER BY x.received_at DESC, x.id DESC`, [domain.toLowerCase(), mailbox]);
    return rows.map(toMessage);
  }

  async get(domain: string, mailbox: string, id: string): Promise<StoredMessage | null> {
    if (!/^\d{1,18}$/.test(id)) return null;
    const rows = await this.deps.db.query<MessageRow>(
      `SELECT x.id, x.caller, x.caller_name, x.received_at, x.duration_ms, x.state, x.audio_key
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
    if (!/^\d{1,18}$/.test(id)) return false;
    const rows = await this.deps.db.query<{ state: string }>(
      `UPDATE messages x SET state = 'saved'
         FROM mailboxes m JOIN domains d ON d.id = m.domain_id
        WHERE x.mailbox_id = m.id AND d.name = $1 AND m.number = $2 AND x.id = $3
        RETURNING x.state`, [domain.toLowerCase(), mailbox, id]);
    if (rows.length > 0) this.changed(domain, mailbox);
    return rows.length > 0;
  }

  /** Deletes a message for good: the row and its audit event in one transaction, then the audio. */
  async delete(domain: string, mailbox: string, id: string, ctx: CallContext): Promise<boolean> {
    if (!/^\d{1,18}$/.test(id)) return false;
    const key = await this.deps.db.transaction(async (tx) => {
      const rows = await tx.query<{ audio_key: string }>(
        `DELETE FROM messages x USING mailboxes m, domains d
          WHERE x.mailbox_id = m.id AND m.domain_id = d.id AND d.name = $1 AND m.number = $2 AND x.id = $3
          RETURNING x.audio_key`, [domain.toLowerCase(), mailbox, id]);
      if (rows[0] === undefined) return null;
      // No digits, no audio: only that a message of this mailbox was deleted, by whom.
      await appendAuditEvent(tx, { domain, mailbox, event: 'message_deleted', channel: ctx.channel, actor: ctx.actor, callId: ctx.callId });
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

  /**
   * Removes audio files no row refers to (left by a crash between the two steps of a deposit or
   * a delete). `dir` lists the store's files; greetings and names are referenced from mailboxes.
   */
  async sweepOrphans(dir: string): Promise<number> {
    let files: string[];
    try {
      files = (await readdir(dir)).filter((f) => /^[0-9a-f]{32}\.wav$/.test(f));
    } catch {
      return 0;
    }
    if (files.length === 0) return 0;
    const used = new Set((await this.deps.db.query<{ key: string }>(
      `SELECT audio_key AS key FROM messages WHERE audio_key = ANY($1)
        UNION SELECT greeting_key FROM mailboxes WHERE greeting_key = ANY($1)
        UNION SELECT name_key FROM mailboxes WHERE name_key = ANY($1)`, [files])).map((r) => r.key));
    const orphans = files.filter((f) => !used.has(f));
    await this.deps.audio.delete(orphans);
    if (orphans.length > 0) this.deps.logger.warn({ orphans: orphans.length }, 'removed message audio without a message');
    return orphans.length;
  }
}
