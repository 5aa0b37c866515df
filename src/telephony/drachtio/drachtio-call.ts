/**
 * The call-control port on the drachtio engine: the caller's SIP dialog lives in drachtio-server
 * (an srf UAS dialog), the media in a FreeSWITCH channel (an fsmrf Endpoint).
 *
 * - play: FreeSWITCH's `playback` of the prompt files, several joined with `!`
 *   (playback_delimiter), read from FREESWITCH_PROMPTS_DIR — the same `ivr-prompts/` files the
 *   embedded engine streams itself.
 * - stopPlayback: `uuid_break` while a playback is running. The official image's dialplan sets
 *   `playback_terminators=none`, so FreeSWITCH never cuts a prompt on a digit by itself; the
 *   session runner decides (type-ahead), as on the embedded engine. A broken playback still ends
 *   with "FILE PLAYED", so every play has a generation number and only the current, unstopped
 *   one reports that it finished.
 * - hangup: BYE to the caller and `hangup` of the FreeSWITCH channel (its BYE ends that leg).
 * - transfer: REFER (RFC 3515) in the caller's dialog; 2xx means the phone will try.
 * - messages: FreeSWITCH records and plays them as files in the message folder it shares with us
 *   (FREESWITCH_MESSAGES_DIR; ./message-files.ts). A recording goes to `incoming/` under a fresh
 *   name; when `record` ends (# through uuid_break, FreeSWITCH's own silence detection, the time
 *   limit, or the hang-up) we read it back, cut the silence that ended it (as the embedded
 *   recorder does, messages/silence.ts), hand it to the deposit and remove the file. A recording
 *   that cannot be read is an error the caller hears ("try again later"), not "too short".
 */
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { PromptId } from '../../ivr/prompts.js';
import type { PlayItem } from '../../ivr/types.js';
import { trimTrailingSilence } from '../../messages/silence.js';
import { decodePcmWav, encodePcmWav, NO_AUDIO_SAMPLES, pcmDurationMs, WavFormatError } from '../../messages/wav.js';
import { RecordingFailedError, type CallControl, type RecordedAudio, type Recording, type RecordingLimits } from '../call-control.js';
import type { MediaEndpoint, SrfDialog } from './drachtio-types.js';
import type { FreeswitchMessageFiles, PlayableFile, RecordingFile } from './message-files.js';

export interface DrachtioCallOptions {
  readonly dialog: SrfDialog;
  readonly endpoint: MediaEndpoint;
  readonly callId: string;
  /** The prompt folder as FreeSWITCH sees it (absolute), with one subfolder per language. */
  readonly promptsDir: string;
  /** Host of the domain, for the Refer-To URI of a transfer. */
  readonly domain: string;
  /** The message folder FreeSWITCH records into and plays from (./message-files.ts). */
  readonly messageFiles: FreeswitchMessageFiles;
  readonly logger: Logger;
}

/**
 * FreeSWITCH `record` silence threshold (energy per sample, its scale): speech is in the
 * thousands, a quiet line under 100. Its silence_hits argument is in seconds (mod_dptools record).
 */
const RECORD_SILENCE_THRESHOLD = 200;

export class DrachtioCall implements CallControl {
  readonly callId: string;
  #generation = 0;
  /** Playbacks sent to FreeSWITCH whose CHANNEL_EXECUTE_COMPLETE has not come back yet. */
  #playing = 0;
  #ended = false;
  #recording = false;

  constructor(private readonly opts: DrachtioCallOptions) {
    this.callId = opts.callId;
  }

  /** Absolute path of a prompt for FreeSWITCH's playback. */
  promptPath(id: PromptId): string {
    return join(this.opts.promptsDir, 'en', `${id}.wav`);
  }

  play(items: readonly PlayItem[], onFinished: () => void): void {
    if (this.#ended) return;
    // Replace whatever plays now (the port's contract).
    if (this.#playing > 0) this.#break();
    const generation = ++this.#generation;
    const current = (): boolean => generation === this.#generation && !this.#ended;
    if (items.every((item) => typeof item === 'string')) {
      this.#start(items.map((id) => this.promptPath(id as PromptId)), [], current, onFinished);
      return;
    }
    // Stored messages need a file FreeSWITCH can read (a copy, with the database store) first.
    void this.#files(items).then(({ files, held }) => {
      if (!current()) {
        for (const f of held) f.release();
        return;
      }
      this.#start(files, held, current, onFinished);
    });
  }

  /** The files to play for `items`; a message that cannot be had is skipped and logged (the port's contract). */
  async #files(items: readonly PlayItem[]): Promise<{ files: string[]; held: PlayableFile[] }> {
    const parts = await Promise.all(items.map(async (item): Promise<PlayableFile | string | null> => {
      if (typeof item === 'string') return this.promptPath(item);
      try {
        return await this.opts.messageFiles.playable(item.audio);
      } catch (err) {
        this.opts.logger.error({ err: (err as Error).message }, 'message audio unreadable; skipped');
        return null;
      }
    }));
    const held = parts.filter((p): p is PlayableFile => typeof p === 'object' && p !== null);
    const files = parts.filter((p) => p !== null).map((p) => (typeof p === 'string' ? p : p.freeswitchPath));
    return { files, held };
  }

  #start(files: string[], held: readonly PlayableFile[], current: () => boolean, onFinished: () => void): void {
    const release = (): void => { for (const f of held) f.release(); };
    if (files.length === 0) {
      queueMicrotask(() => { if (current()) onFinished(); });
      return;
    }
    this.#playing += 1;
    this.opts.endpoint.play(files.length === 1 ? files[0]! : files).then(
      () => {
        this.#playing -= 1;
        release();
        if (current()) onFinished();
      },
      (err: unknown) => {
        this.#playing -= 1;
        release();
        if (this.#ended) return;
        // A missing file or a channel that went away: never leave the caller in silence forever;
        // the IVR's no-input timer still runs only after "finished", so report it like the end.
        this.opts.logger.error({ err: (err as Error).message, files }, 'FreeSWITCH playback failed');
        if (current()) onFinished();
      },
    );
  }

  stopPlayback(): void {
    this.#generation += 1;
    if (this.#playing > 0) this.#break();
  }

  #break(): void {
    const { endpoint } = this.opts;
    endpoint.api('uuid_break', endpoint.uuid).catch((err: unknown) => {
      this.opts.logger.debug({ err: (err as Error).message }, 'uuid_break failed');
    });
  }

  record(limits: RecordingLimits): Recording {
    const { endpoint, messageFiles, logger } = this.opts;
    const file = messageFiles.newRecording();
    this.#recording = true;
    // Set when we end it (# or the hang-up): everything is kept then, as on the embedded engine.
    let stopped = false;
    const args = [
      file.freeswitchPath, String(Math.ceil(limits.maxMs / 1000)),
      String(RECORD_SILENCE_THRESHOLD), String(Math.max(1, Math.round(limits.silenceMs / 1000))),
    ].join(' ');
    const done = endpoint.execute('record', args)
      .catch((err: unknown) => {
        // The channel went away mid-recording (the caller hung up): what was written is kept.
        logger.debug({ err: (err as Error).message }, 'FreeSWITCH record ended with an error');
      })
      .then(async (): Promise<RecordedAudio | null> => {
        this.#recording = false;
        try {
          return await this.#takeRecording(file, stopped);
        } finally {
          await file.remove().catch(() => undefined);
        }
      });
    return {
      stop: () => {
        stopped = true;
        if (this.#recording && endpoint.connected) this.#break();
      },
      done,
    };
  }

  /**
   * The message FreeSWITCH recorded: null when nothing was said (no file because the caller left
   * before it was opened, a file without samples, or nothing but silence); RecordingFailedError
   * when there is a recording we cannot use — the caller must not be told "goodbye" as if the
   * message had been too short.
   */
  async #takeRecording(file: RecordingFile, stopped: boolean): Promise<RecordedAudio | null> {
    const { endpoint, logger } = this.opts;
    let bytes: Buffer;
    try {
      bytes = await file.read();
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      if (missing && (this.#ended || !endpoint.connected || !this.opts.dialog.connected)) {
        logger.debug('no recording: the caller left before FreeSWITCH wrote one');
        return null;
      }
      logger.error({ err: (err as Error).message }, 'FreeSWITCH recording unreadable');
      throw new RecordingFailedError('FreeSWITCH recording unreadable', { cause: err });
    }
    let pcm: Int16Array;
    try {
      pcm = decodePcmWav(bytes);
    } catch (err) {
      if (err instanceof WavFormatError && err.reason === NO_AUDIO_SAMPLES) return null;
      logger.error({ err: (err as Error).message }, 'FreeSWITCH recording is not 8 kHz mono 16-bit WAV');
      throw new RecordingFailedError('FreeSWITCH recording unusable', { cause: err });
    }
    // FreeSWITCH stopped on its own (silence, or the limit) with that silence in the file: cut it.
    if (!stopped) {
      const trimmed = trimTrailingSilence(pcm);
      if (trimmed.length === 0) return null;
      if (trimmed.length < pcm.length) {
        pcm = trimmed;
        bytes = encodePcmWav(pcm);
      }
    }
    return { wav: bytes, durationMs: pcmDurationMs(pcm) };
  }

  hangup(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#generation += 1;
    void this.release();
  }

  /** Ends both legs (idempotent): BYE to the caller if the dialog is up, hang up the channel. */
  async release(): Promise<void> {
    this.#ended = true;
    const { dialog, endpoint, logger } = this.opts;
    const steps: Promise<unknown>[] = [];
    if (dialog.connected) steps.push(dialog.destroy().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'BYE to the caller failed')));
    if (endpoint.connected) steps.push(endpoint.destroy().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'FreeSWITCH hangup failed')));
    await Promise.all(steps);
  }

  async transfer(target: string): Promise<boolean> {
    const referTo = `<sip:${target}@${this.opts.domain}>`;
    try {
      const response = await this.opts.dialog.request({
        method: 'REFER',
        headers: { 'Refer-To': referTo, 'Referred-By': `<sip:vmaccess@${this.opts.domain}>` },
      });
      return response.status >= 200 && response.status < 300;
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'REFER failed');
      return false;
    }
  }
}
