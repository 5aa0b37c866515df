import type { PromptId } from '../ivr/prompts.js';
import type { Digit } from '../ivr/types.js';

/**
 * The call-control port: everything the session runner needs from a call, and nothing about
 * which engine carries it (the embedded SIP/RTP engine, or drachtio-server + FreeSWITCH).
 */
export interface CallControl {
  /** SIP Call-ID, for logs and audit rows. */
  readonly callId: string;
  /**
   * Plays the prompts in order, replacing whatever plays now. `onFinished` is called once if and
   * only if the last prompt plays to its end (not when stopped or replaced).
   */
  play(prompts: readonly PromptId[], onFinished: () => void): void;
  /** Stops the current prompt at once (barge-in). */
  stopPlayback(): void;
  /** Ends the call from our side (BYE). Idempotent. */
  hangup(): void;
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
