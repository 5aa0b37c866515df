/**
 * The call-control port on the embedded engine: prompts go out through this call's RtpSession,
 * hangup is a BYE on its SIP dialog, transfer is a REFER (RFC 3515).
 */
import type { Logger } from '../../log.js';
import type { PromptId } from '../../ivr/prompts.js';
import type { CallControl } from '../call-control.js';
import type { Dialog } from './sip/index.js';
import type { PromptLibrary } from './rtp/prompt-library.js';
import type { RtpSession } from './rtp/rtp-session.js';
import type { AudioCodec } from './rtp/g711.js';

export interface EmbeddedCallOptions {
  readonly dialog: Dialog;
  readonly rtp: RtpSession;
  readonly codec: AudioCodec;
  readonly prompts: PromptLibrary;
  /** Host of the domain, for the Refer-To URI of a transfer. */
  readonly domain: string;
  readonly logger: Logger;
  readonly onHangup: () => void;
}

export class EmbeddedCall implements CallControl {
  private hungUp = false;

  constructor(private readonly opts: EmbeddedCallOptions) {}

  get callId(): string {
    return this.opts.dialog.callId;
  }

  play(prompts: readonly PromptId[], onFinished: () => void): void {
    const frames: Buffer[] = [];
    for (const id of prompts) {
      if (!this.opts.prompts.has(id)) {
        this.opts.logger.error({ prompt: id }, 'prompt missing; skipped');
        continue;
      }
      frames.push(...this.opts.prompts.frames(id, this.opts.codec));
    }
    this.opts.rtp.play(frames, onFinished);
  }

  stopPlayback(): void {
    this.opts.rtp.stopPlayback();
  }

  hangup(): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.opts.rtp.stopPlayback();
    this.opts.dialog.bye().catch((err: unknown) => this.opts.logger.warn({ err }, 'BYE failed'));
    this.opts.onHangup();
  }

  async transfer(target: string): Promise<boolean> {
    // RFC 3515 §2.4.1: 2xx to REFER means the peer will try; anything else is a refusal.
    const referTo = `<sip:${target}@${this.opts.domain}>`;
    try {
      const response = await this.opts.dialog.request('REFER', {
        headers: { 'Refer-To': referTo, 'Referred-By': `<sip:vmaccess@${this.opts.domain}>` },
      });
      return response.status >= 200 && response.status < 300;
    } catch (err) {
      this.opts.logger.warn({ err }, 'REFER failed');
      return false;
    }
  }
}
