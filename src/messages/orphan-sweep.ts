/**
 * The orphan sweep of the message folder (run by every server at start). Several servers may
 * share the folder, and some of its files are legitimately without a row for a while:
 *
 * - `incoming/<key>`: FreeSWITCH recording a message (up to 3 minutes, the file growing), or
 *   the bytes of a deposit about to be renamed into place;
 * - `<key>`: renamed into place just before the COMMIT of its row (./audio-store.ts);
 * - `playback/<name>`: a copy FreeSWITCH plays from while a message is heard (database kind).
 *
 * So nothing is removed by name alone: only files whose last write (mtime) is older than
 * ORPHAN_MIN_AGE_MS — far longer than any recording, playback or transaction lasts — and, in
 * the folder itself, only those no row names. What is left is what a crash left behind.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { Queryable } from '../store/database.js';
import { AUDIO_KEY, INCOMING_DIR, PLAYBACK_DIR } from './audio-store.js';

/** 10 minutes: a 3-minute recording, a transaction (5 s statement timeout), some clock skew on a shared volume. */
export const ORPHAN_MIN_AGE_MS = 10 * 60_000;

export interface SweepResult {
  /** Files in the folder no row names. */
  readonly orphans: number;
  /** Leftovers of recordings, deposits and playbacks. */
  readonly leftovers: number;
}

export interface SweepOptions {
  readonly db: Queryable;
  /** The message folder (DATA_DIR/messages). */
  readonly dir: string;
  readonly logger: Logger;
  /** Default Date.now(). */
  readonly now?: number;
  /** Default ORPHAN_MIN_AGE_MS. */
  readonly minAgeMs?: number;
}

/** Files of `dir` matching `pattern` whose mtime is before `before`; [] when the folder is missing. */
async function oldFiles(dir: string, pattern: RegExp, before: number): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => pattern.test(f));
  } catch {
    return [];
  }
  const old = await Promise.all(names.map(async (name) => {
    try {
      const s = await stat(join(dir, name));
      return s.isFile() && s.mtimeMs < before ? name : null;
    } catch {
      return null; // gone meanwhile (renamed into place, or another server swept it)
    }
  }));
  return old.filter((n): n is string => n !== null);
}

export async function sweepMessageFolder(opts: SweepOptions): Promise<SweepResult> {
  const before = (opts.now ?? Date.now()) - (opts.minAgeMs ?? ORPHAN_MIN_AGE_MS);

  const leftovers = [
    // What this server writes there is named like a key (newAudioKey), nothing else.
    ...(await oldFiles(join(opts.dir, INCOMING_DIR), AUDIO_KEY, before)).map((f) => join(opts.dir, INCOMING_DIR, f)),
    ...(await oldFiles(join(opts.dir, PLAYBACK_DIR), AUDIO_KEY, before)).map((f) => join(opts.dir, PLAYBACK_DIR, f)),
  ];
  await Promise.all(leftovers.map((path) => rm(path, { force: true })));

  const candidates = await oldFiles(opts.dir, AUDIO_KEY, before);
  let orphans: string[] = [];
  if (candidates.length > 0) {
    const used = new Set((await opts.db.query<{ key: string }>(
      `SELECT audio_key AS key FROM messages WHERE audio_key = ANY($1)
        UNION SELECT greeting_key FROM mailboxes WHERE greeting_key = ANY($1)
        UNION SELECT name_key FROM mailboxes WHERE name_key = ANY($1)`, [candidates])).map((r) => r.key));
    orphans = candidates.filter((f) => !used.has(f));
    await Promise.all(orphans.map((f) => rm(join(opts.dir, f), { force: true })));
  }
  if (orphans.length > 0 || leftovers.length > 0) {
    opts.logger.warn({ orphans: orphans.length, leftovers: leftovers.length }, 'removed message audio a crash left without a message');
  }
  return { orphans: orphans.length, leftovers: leftovers.length };
}
