/**
 * The call-control port on the embedded engine: prompts go out through this call's RtpSession,
 * hangup is a BYE on its SIP dialog, transfer is a REFER (RFC 3515).
 */
import type { Logger } from '../../log.js';
import type { PlayItem } from '../../ivr/types.js';
import { decodePcmWav } from '../../messages/wav.js';
import type { CallControl, RecordedAudio, Recording, RecordingLimits } from '../call-control.js';
import type { Dialog } from './sip/index.js';
import { pcmFrames, type PromptLibrary } from './rtp/prompt-library.js';
import type { RtpSession } from './rtp/rtp-session.js';
import type { AudioCodec } from './rtp/g711.js';
import { MessageRecorder } from './rtp/message-recorder.js';

/** How often the recording watchdog looks for a peer that stopped sending packets. */
const WATCHDOG_MS = 250;

export interface EmbeddedCallOptions {
  readonly dialog: Dialog;
  readonly rtp: RtpSession;
  readonly codec: AudioCodec;
  readonly prompts: PromptLibrary;
  /** Host of the domain, for the Refer-To URI of a transfer. */
  readonly domain: string;
  /** Reads a stored recording (message audio) by key: a WAV, 8 kHz mono 16-bit. */
  readonly loadAudio: (key: string) => Promise<Buffer>;
  readonly logger: Logger;
  readonly onHangup: () => void;
}

export class EmbeddedCall implements CallControl {
  private hungUp = false;
  /** Bumped by every play/stop, so a recording still loading does not start after it was replaced. */
  private playGeneration = 0;

  constructor(private readonly opts: EmbeddedCallOptions) {}

  get callId(): string {
    return this.opts.dialog.callId;
  }

  play(items: readonly PlayItem[], onFinished: () => void): void {
    const generation = ++this.playGeneration;
    if (items.every((item) => typeof item === 'string')) {
      this.opts.rtp.play(this.promptFrames(items as readonly string[]), onFinished);
      return;
    }
    // Stored recordings are read first (prompts are in memory, messages are not); until then the
    // previous playback stops, as it would on a replace.
    this.opts.rtp.stopPlayback();
    void this.framesOf(items).then((frames) => {
      if (generation === this.playGeneration && !this.hungUp) this.opts.rtp.play(frames, onFinished);
    });
  }

  private promptFrames(ids: readonly string[]): Buffer[] {
    const frames: Buffer[] = [];
    for (const id of ids) {
      if (!this.opts.prompts.has(id)) {
        this.opts.logger.error({ prompt: id }, 'prompt missing; skipped');
        continue;
      }
      frames.push(...this.opts.prompts.frames(id, this.opts.codec));
    }
    return frames;
  }

  private async framesOf(items: readonly PlayItem[]): Promise<Buffer[]> {
    const parts = await Promise.all(items.map(async (item) => {
      if (typeof item === 'string') return this.promptFrames([item]);
      try {
        return pcmFrames(this.opts.codec, decodePcmWav(await this.opts.loadAudio(item.audio)));
      } catch (err) {
        this.opts.logger.error({ err }, 'message audio unreadable; skipped');
        return [];
      }
    }));
    return parts.flat();
  }

  stopPlayback(): void {
    this.playGeneration++;
    this.opts.rtp.stopPlayback();
  }

  record(limits: RecordingLimits): Recording {
    const rtp = this.opts.rtp;
    let finish!: (audio: RecordedAudio | null) => void;
    const done = new Promise<RecordedAudio | null>((resolve) => { finish = resolve; });
    let lastPacketAt = Date.now();
    const startedAt = lastPacketAt;
    const onAudio = (payload: Uint8Array): void => {
      lastPacketAt = Date.now();
      recorder.push(payload);
    };
    const recorder = new MessageRecorder(this.opts.codec, limits, () => {
      clearInterval(watchdog);
      rtp.off('audio', onAudio);
      finish(recorder.result());
    });
    // A peer that sends nothing (muted, on hold, gone without BYE) is silence too; and the limit
    // is kept by the wall clock as well as by the samples counted.
    const watchdog = setInterval(() => {
      const now = Date.now();
      if (now - lastPacketAt >= limits.silenceMs) recorder.end('silence');
      else if (now - startedAt >= limits.maxMs + limits.silenceMs) recorder.end('maxLength');
    }, WATCHDOG_MS);
    rtp.on('audio', onAudio);
    return { stop: () => recorder.end('stopped'), done };
  }

  hangup(): void {
    if (this.hungUp) return;
    this.hungUp = true;
    this.stopPlayback();
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
