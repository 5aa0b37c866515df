import type { SipMessage } from './message.js';

export interface SipParseErrorOptions {
  /** Status code a UAS should answer with (400, or 505 for a foreign SIP version). */
  status?: number;
  /**
   * The message as far as it could be read (start line and headers) when the error is about its
   * meaning rather than its framing: a UAS may still answer it (RFC 3261 §8.2, §18.3).
   */
  partial?: SipMessage;
  cause?: unknown;
}

/**
 * The one error the parser throws. `reason` is short, fixed text (never a piece of the input), so
 * it can be used as a SIP reason phrase and logged without leaking what a caller sent.
 */
export class SipParseError extends Error {
  override readonly name = 'SipParseError';
  readonly reason: string;
  readonly status: number;
  readonly partial: SipMessage | undefined;

  constructor(reason: string, options: SipParseErrorOptions = {}) {
    super(reason, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.status = options.status ?? 400;
    this.partial = options.partial;
  }
}
