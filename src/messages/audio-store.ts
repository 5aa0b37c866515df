/**
 * Where message audio (and recorded greetings and names) lives: one interface, two kinds
 * (MESSAGE_AUDIO_STORE):
 *
 * - `file` (default): WAV files under DATA_DIR/messages, named by the key, mode 0600.
 * - `database`: the bytes in the `message_audio` table (bytea) of the same database as the rows,
 *   for operators who want one place to back up and replicate.
 *
 * Keys are opaque random names; the store never sees who a message is for. Audio is written as
 * part of the transaction that writes the row naming it (`put(tx, …)`), so the two commit
 * together: the database kind inserts in that transaction; the file kind writes the bytes into
 * `incoming/` first and renames them into place just before COMMIT, so a reader never sees half a
 * recording and the orphan sweep (./orphan-sweep.ts) can tell a fresh file from a leftover.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Queryable } from '../store/database.js';

export type AudioStoreKind = 'file' | 'database';

export interface AudioStore {
  readonly kind: AudioStoreKind;
  /** A fresh key for a new recording. */
  newKey(): string;
  /**
   * Stores `audio` under `key` as part of `tx`, the transaction that writes the row naming it:
   * the audio is there for readers once that transaction commits, and must be discard()ed if it
   * does not.
   */
  put(tx: Queryable, key: string, audio: Buffer): Promise<void>;
  /** Undoes a put() whose transaction rolled back (the file kind's file; the database's went with it). */
  discard(key: string): Promise<void>;
  /** The audio of a key; rejects when there is none. */
  get(key: string): Promise<Buffer>;
  /**
   * After the transaction that removed the rows naming `keys` committed: removes their audio (the
   * database kind's bytes already went in that transaction, by trigger). A key already gone is fine.
   */
  delete(keys: readonly string[]): Promise<void>;
}

/** The key format: 128 random bits, hex, `.wav`. Anything else is refused, never joined into a path. */
export const AUDIO_KEY = /^[0-9a-f]{32}\.wav$/;

/** Subfolder of the message folder for audio being written: recordings in progress, files about to be renamed. */
export const INCOMING_DIR = 'incoming';
/** Subfolder for short-lived copies FreeSWITCH plays from (database kind on the drachtio engine). */
export const PLAYBACK_DIR = 'playback';

export function newAudioKey(): string {
  return `${randomBytes(16).toString('hex')}.wav`;
}

/** `key` when it has the key format; throws otherwise (so it is never joined into a path). */
export function checkKey(key: string): string {
  if (!AUDIO_KEY.test(key)) throw new Error('invalid audio key');
  return key;
}

export class FileAudioStore implements AudioStore {
  readonly kind = 'file' as const;

  constructor(private readonly dir: string) {}

  newKey(): string {
    return newAudioKey();
  }

  #path(key: string): string {
    return join(this.dir, checkKey(key));
  }

  #incoming(key: string): string {
    return join(this.dir, INCOMING_DIR, checkKey(key));
  }

  /**
   * The bytes go to incoming/<key> and are renamed to <key> inside the caller's transaction, just
   * before its COMMIT: until then the file is in no place a reader looks, and its fresh mtime keeps
   * it from every server's orphan sweep until the row is long committed.
   */
  async put(_tx: Queryable, key: string, audio: Buffer): Promise<void> {
    const final = this.#path(key);
    const incoming = this.#incoming(key);
    await mkdir(join(this.dir, INCOMING_DIR), { recursive: true, mode: 0o700 });
    try {
      await writeFile(incoming, audio, { mode: 0o600 });
      await rename(incoming, final);
    } catch (err) {
      await rm(incoming, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async discard(key: string): Promise<void> {
    await Promise.all([rm(this.#incoming(key), { force: true }), rm(this.#path(key), { force: true })]);
  }

  get(key: string): Promise<Buffer> {
    return readFile(this.#path(key));
  }

  async delete(keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map((key) => rm(this.#path(key), { force: true })));
  }
}

export class DatabaseAudioStore implements AudioStore {
  readonly kind = 'database' as const;

  constructor(private readonly db: Queryable) {}

  newKey(): string {
    return newAudioKey();
  }

  async put(tx: Queryable, key: string, audio: Buffer): Promise<void> {
    await tx.query('INSERT INTO message_audio (key, wav) VALUES ($1, $2)', [checkKey(key), audio]);
  }

  async discard(): Promise<void> {
    // The INSERT rolled back with its transaction: nothing outside the database to undo.
  }

  async get(key: string): Promise<Buffer> {
    const rows = await this.db.query<{ wav: Uint8Array }>('SELECT wav FROM message_audio WHERE key = $1', [checkKey(key)]);
    const wav = rows[0]?.wav;
    if (wav === undefined) throw Object.assign(new Error('no such audio'), { code: 'ENOENT' });
    // pg gives a Buffer, PGlite a Uint8Array.
    return Buffer.isBuffer(wav) ? wav : Buffer.from(wav.buffer, wav.byteOffset, wav.byteLength);
  }

  async delete(): Promise<void> {
    // Already gone, in the transaction that removed the rows naming them: the triggers of
    // migration 004 (store/migrations/004_message_folders_and_audio.sql) delete a message's bytes
    // with its row and a greeting's or name's when its key is cleared or its mailbox removed —
    // which covers both callers (MessageService.delete, PortalService.resetOrRecycle).
  }
}
