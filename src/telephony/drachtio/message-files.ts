/**
 * The message folder as FreeSWITCH uses it on the drachtio engine: it records into files and
 * plays from files, in the folder DATA_DIR/messages that it reaches as FREESWITCH_MESSAGES_DIR
 * (one host, or a shared volume).
 *
 * - Recording: into `incoming/<fresh key>` — a place no reader looks and where the orphan sweep
 *   only removes files nobody has written for ten minutes, so a 3-minute recording is never
 *   swept from under FreeSWITCH (messages/orphan-sweep.ts). The file is read back, handed to the
 *   deposit (which stores the audio with its row, in either store kind) and removed.
 * - Playback: the file store's own file; with MESSAGE_AUDIO_STORE=database a copy written to
 *   `playback/` for the length of one playback, removed when it ends.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { checkKey, INCOMING_DIR, newAudioKey, PLAYBACK_DIR, type AudioStore } from '../../messages/audio-store.js';

export interface RecordingFile {
  /** Where FreeSWITCH writes it, as FreeSWITCH sees it. */
  readonly freeswitchPath: string;
  read(): Promise<Buffer>;
  remove(): Promise<void>;
}

export interface PlayableFile {
  /** What FreeSWITCH plays, as FreeSWITCH sees it. */
  readonly freeswitchPath: string;
  /** The playback is over (idempotent). */
  release(): void;
}

export interface FreeswitchMessageFiles {
  newRecording(): RecordingFile;
  /** A file FreeSWITCH can play the stored audio `key` from; rejects when there is no such audio. */
  playable(key: string): Promise<PlayableFile>;
}

export interface FreeswitchMessageFilesOptions {
  readonly audio: AudioStore;
  /** The message folder as we see it (DATA_DIR/messages). */
  readonly localDir: string;
  /** The same folder as FreeSWITCH sees it (FREESWITCH_MESSAGES_DIR). */
  readonly freeswitchDir: string;
  readonly logger: Logger;
}

export function freeswitchMessageFiles(opts: FreeswitchMessageFilesOptions): FreeswitchMessageFiles {
  const { audio, localDir, freeswitchDir, logger } = opts;
  /** playback/ made once per instance; a failed attempt is tried again by the next playback. */
  let playbackDir: Promise<unknown> | undefined;
  const playbackDirReady = (): Promise<unknown> => (playbackDir ??= mkdir(join(localDir, PLAYBACK_DIR), { recursive: true, mode: 0o700 })
    .catch((err: unknown) => {
      playbackDir = undefined;
      throw err;
    }));
  return {
    newRecording(): RecordingFile {
      const name = newAudioKey();
      const local = join(localDir, INCOMING_DIR, name);
      return {
        freeswitchPath: join(freeswitchDir, INCOMING_DIR, name),
        read: () => readFile(local),
        remove: () => rm(local, { force: true }),
      };
    },
    async playable(key: string): Promise<PlayableFile> {
      if (audio.kind === 'file') {
        // A bad key or a missing file is refused here (the item is skipped), not left to FreeSWITCH.
        await stat(join(localDir, checkKey(key)));
        return { freeswitchPath: join(freeswitchDir, key), release: () => undefined };
      }
      const bytes = await audio.get(key);
      const name = newAudioKey();
      const local = join(localDir, PLAYBACK_DIR, name);
      await playbackDirReady();
      await writeFile(local, bytes, { mode: 0o600 });
      let released = false;
      return {
        freeswitchPath: join(freeswitchDir, PLAYBACK_DIR, name),
        release: () => {
          if (released) return;
          released = true;
          rm(local, { force: true }).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'playback copy not removed'));
        },
      };
    },
  };
}
