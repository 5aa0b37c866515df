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
 * - messages: FreeSWITCH plays and records them in the message store folder itself
 *   (FREESWITCH_MESSAGES_DIR — DATA_DIR/messages on a shared volume). A recording is made
 *   under a fresh store key, read back by us when `record` ends (# through uuid_break, 5 s of
 *   silence, the time limit, or the hang-up), handed to the deposit, and removed; should we crash
 *   in between, the store's orphan sweep removes it at the next start.
 */
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { PromptId } from '../../ivr/prompts.js';
import type { PlayItem } from '../../ivr/types.js';
import { decodePcmWav, pcmDurationMs } from '../../messages/wav.js';
import type { CallControl, RecordedAudio, Recording, RecordingLimits } from '../call-control.js';
import type { MediaEndpoint, SrfDialog } from './drachtio-types.js';

export interface DrachtioCallOptions {
  readonly dialog: SrfDialog;
  readonly endpoint: MediaEndpoint;
  readonly callId: string;
  /** The prompt folder as FreeSWITCH sees it (absolute), with one subfolder per language. */
  readonly promptsDir: string;
  /** Host of the domain, for the Refer-To URI of a transfer. */
  readonly domain: string;
  /** The message store folder as FreeSWITCH sees it (absolute). */
  readonly messagesDir: string;
  /** Our side of that folder: a fresh key, reading and removing a file FreeSWITCH wrote. */
  readonly recordings: {
    newKey(): string;
    get(key: string): Promise<Buffer>;
    delete(keys: readonly string[]): Promise<void>;
  };
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

  /** Absolute path of a prompt or a stored message for FreeSWITCH's playback. */
  itemPath(item: PlayItem): string {
    return typeof item === 'string' ? this.promptPath(item) : join(this.opts.messagesDir, item.audio);
  }

  play(prompts: readonly PlayItem[], onFinished: () => void): void {
    if (this.#ended) return;
    // Replace whatever plays now (the port's contract).
    if (this.#playing > 0) this.#break();
    const generation = ++this.#generation;
    if (prompts.length === 0) {
      queueMicrotask(() => { if (generation === this.#generation && !this.#ended) onFinished(); });
      return;
    }
    this.#playing += 1;
    const files = prompts.map((item) => this.itemPath(item));
    this.opts.endpoint.play(files.length === 1 ? files[0]! : files).then(
      () => {
        this.#playing -= 1;
        if (generation === this.#generation && !this.#ended) onFinished();
      },
      (err: unknown) => {
        this.#playing -= 1;
        if (this.#ended) return;
        // A missing file or a channel that went away: never leave the caller in silence forever;
        // the IVR's no-input timer still runs only after "finished", so report it like the end.
        this.opts.logger.error({ err: (err as Error).message, prompts }, 'FreeSWITCH playback failed');
        if (generation === this.#generation) onFinished();
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
    const { endpoint, recordings, logger } = this.opts;
    const key = recordings.newKey();
    this.#recording = true;
    const args = [
      join(this.opts.messagesDir, key), String(Math.ceil(limits.maxMs / 1000)),
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
          const wav = await recordings.get(key);
          return { wav, durationMs: pcmDurationMs(decodePcmWav(wav)) };
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'FreeSWITCH recording unreadable');
          return null;
        } finally {
          await recordings.delete([key]).catch(() => undefined);
        }
      });
    return {
      stop: () => {
        if (this.#recording && endpoint.connected) this.#break();
      },
      done,
    };
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
