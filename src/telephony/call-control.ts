import type { Digit, PlayItem } from '../ivr/types.js';

/** A message as recorded from the caller: 8 kHz mono 16-bit PCM WAV. */
export interface RecordedAudio {
  readonly wav: Buffer;
  readonly durationMs: number;
}

export interface RecordingLimits {
  /** The recording ends by itself after this much audio. */
  readonly maxMs: number;
  /** …or after this much silence (which is then cut off the end). */
  readonly silenceMs: number;
}

/** A recording in progress. */
export interface Recording {
  /** Ends it now (`#`, the caller hung up). Idempotent. */
  stop(): void;
  /**
   * What was said, once the recording ended by any cause; null if nothing was said. Rejects
   * (RecordingFailedError) when a recording was made but cannot be used: the caller then hears
   * the store-trouble prompt, not the goodbye of a message too short to keep.
   */
  readonly done: Promise<RecordedAudio | null>;
}

/** A recording exists but cannot be read or is not audio we can store. */
export class RecordingFailedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecordingFailedError';
  }
}

/**
 * The call-control port: everything the session runner needs from a call, and nothing about
 * which engine carries it (the embedded SIP/RTP engine, or drachtio-server + FreeSWITCH).
 */
export interface CallControl {
  /** SIP Call-ID, for logs and audit rows. */
  readonly callId: string;
  /**
   * Plays the prompts and stored recordings (message audio by key) in order, replacing whatever
   * plays now. `onFinished` is called once if and only if the last item plays to its end (not
   * when stopped or replaced). A recording that cannot be read is skipped (and logged).
   */
  play(items: readonly PlayItem[], onFinished: () => void): void;
  /** Stops the current prompt at once (barge-in). */
  stopPlayback(): void;
  /** Ends the call from our side (BYE). Idempotent. */
  hangup(): void;
  /** Records the caller (a message being left) until stopped, silence, the limit or hang-up. */
  record(limits: RecordingLimits): Recording;
  /** Blind transfer of the caller (RFC 3515 REFER); resolves false if the peer refused it. */
  transfer(target: string): Promise<boolean>;
}

/** How a digit reached us; counted in metrics, never logged with its value. */
export type DigitMethod = 'rfc4733' | 'info' | 'inband';

/** What an engine tells the session about a call. */
export interface CallEvents {
  digit(digit: Digit, method: DigitMethod): void;
  /** The caller hung up (BYE received, CANCEL, or media/transport failure). */
  remoteHangup(reason: string): void;
}
