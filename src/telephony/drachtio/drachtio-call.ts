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
 */
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { PromptId } from '../../ivr/prompts.js';
import type { CallControl } from '../call-control.js';
import type { MediaEndpoint, SrfDialog } from './drachtio-types.js';

export interface DrachtioCallOptions {
  readonly dialog: SrfDialog;
  readonly endpoint: MediaEndpoint;
  readonly callId: string;
  /** The prompt folder as FreeSWITCH sees it (absolute), with one subfolder per language. */
  readonly promptsDir: string;
  /** Host of the domain, for the Refer-To URI of a transfer. */
  readonly domain: string;
  readonly logger: Logger;
}

export class DrachtioCall implements CallControl {
  readonly callId: string;
  #generation = 0;
  /** Playbacks sent to FreeSWITCH whose CHANNEL_EXECUTE_COMPLETE has not come back yet. */
  #playing = 0;
  #ended = false;

  constructor(private readonly opts: DrachtioCallOptions) {
    this.callId = opts.callId;
  }

  /** Absolute path of a prompt for FreeSWITCH's playback. */
  promptPath(id: PromptId): string {
    return join(this.opts.promptsDir, 'en', `${id}.wav`);
  }

  play(prompts: readonly PromptId[], onFinished: () => void): void {
    if (this.#ended) return;
    // Replace whatever plays now (the port's contract).
    if (this.#playing > 0) this.#break();
    const generation = ++this.#generation;
    if (prompts.length === 0) {
      queueMicrotask(() => { if (generation === this.#generation && !this.#ended) onFinished(); });
      return;
    }
    this.#playing += 1;
    const files = prompts.map((id) => this.promptPath(id));
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
