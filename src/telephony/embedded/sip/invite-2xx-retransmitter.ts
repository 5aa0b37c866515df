/**
 * The UAS core's reliability for 2xx responses to INVITE (RFC 3261 §13.3.1.4): the INVITE server
 * transaction sends a 2xx once and leaves (RFC 6026), so the core repeats it until the ACK comes.
 */
import type { SipTimers } from './timers.js';
import { sixtyFourT1 } from './timers.js';

export interface Invite2xxRetransmitterOptions {
  timers: SipTimers;
  /** Over TCP nothing is retransmitted; the wait for the ACK still ends after 64*T1. */
  reliable: boolean;
  retransmit(): void;
  /** No ACK within 64*T1. */
  onGiveUp(): void;
}

export class Invite2xxRetransmitter {
  private interval: number;
  private retransmitTimer: NodeJS.Timeout | undefined;
  private giveUpTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: Invite2xxRetransmitterOptions) {
    this.interval = options.timers.T1;
  }

  /**
   * "The 2xx response is passed to the transport with an interval that starts at T1 seconds and
   * doubles for each retransmission until it reaches T2 seconds... If the server retransmits the
   * 2xx response for 64*T1 seconds without receiving an ACK, the dialog is confirmed, but the
   * session SHOULD be terminated. This is accomplished with a BYE" (§13.3.1.4)
   */
  start(): void {
    if (!this.options.reliable) this.scheduleRetransmission();
    this.giveUpTimer = setTimeout(() => {
      this.giveUpTimer = undefined;
      this.stop();
      this.options.onGiveUp();
    }, sixtyFourT1(this.options.timers));
  }

  private scheduleRetransmission(): void {
    this.retransmitTimer = setTimeout(() => {
      this.options.retransmit();
      this.interval = Math.min(2 * this.interval, this.options.timers.T2);
      this.scheduleRetransmission();
    }, this.interval);
  }

  /** "Response retransmissions cease when an ACK request for the response is received." (§13.3.1.4) */
  stop(): void {
    if (this.retransmitTimer !== undefined) clearTimeout(this.retransmitTimer);
    if (this.giveUpTimer !== undefined) clearTimeout(this.giveUpTimer);
    this.retransmitTimer = undefined;
    this.giveUpTimer = undefined;
  }
}
