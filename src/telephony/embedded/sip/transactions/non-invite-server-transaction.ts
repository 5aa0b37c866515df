/**
 * Non-INVITE server transaction (RFC 3261 §17.2.2).
 *
 *        Trying --1xx from TU: send--> Proceeding --1xx: send--+
 *          | final from TU: send          | final from TU: send
 *          +-------------> Completed <----+
 *                            | Timer J (64*T1 UDP, 0 TCP)
 *                            V
 *                        Terminated
 */
import type { SipRequest, SipResponse } from '../message.js';
import { sixtyFourT1 } from '../timers.js';
import { ServerTransaction } from './server-transaction.js';
import { TransactionState, type TransactionEnvironment } from './transaction.js';

const TRANSITIONS = {
  [TransactionState.Proceeding]: [TransactionState.Trying],
  [TransactionState.Completed]: [TransactionState.Trying, TransactionState.Proceeding],
  [TransactionState.Terminated]: [TransactionState.Trying, TransactionState.Proceeding, TransactionState.Completed],
} as const;

export class NonInviteServerTransaction extends ServerTransaction {
  private lastProvisional: SipResponse | undefined;
  private lastFinal: SipResponse | undefined;

  /** "The state machine is initialized in the "Trying" state" (§17.2.2). */
  constructor(id: string, request: SipRequest, env: TransactionEnvironment) {
    super(id, request, env, TransactionState.Trying);
    // Not in the RFC: a TU that never answers would keep this transaction forever. The client
    // gives up after Timer F = 64*T1 (§17.1.2.2), after which no answer is of any use, so the
    // transaction ends then too.
    this.startTimer('TU', sixtyFourT1(env.timers), () => this.tuTimeout());
  }

  protected get kind(): string {
    return 'non-INVITE server transaction';
  }

  protected get transitions(): typeof TRANSITIONS {
    return TRANSITIONS;
  }

  get finalResponseSent(): boolean {
    return this.lastFinal !== undefined;
  }

  receiveRequest(_request: SipRequest): boolean {
    switch (this.state) {
      case TransactionState.Trying:
        // "Once in the "Trying" state, any further request retransmissions are discarded." (§17.2.2)
        return true;
      case TransactionState.Proceeding:
        // "If a retransmission of the request is received while in the "Proceeding" state, the
        // most recently sent provisional response MUST be passed to the transport layer for
        // retransmission." (§17.2.2)
        if (this.lastProvisional) this.transmit(this.lastProvisional, 'provisional retransmission');
        return true;
      case TransactionState.Completed:
        // "While in the "Completed" state, the server transaction MUST pass the final response to
        // the transport layer for retransmission whenever a retransmission of the request is
        // received." (§17.2.2)
        if (this.lastFinal) this.transmit(this.lastFinal, 'final response retransmission');
        return true;
      default:
        return true;
    }
  }

  respond(response: SipResponse): void {
    const status = response.status;
    if (status < 100 || status > 699) throw new Error(`invalid status ${status}`);
    if (this.state !== TransactionState.Trying && this.state !== TransactionState.Proceeding) {
      this.env.logger.debug({ transaction: this.id, status, state: this.state }, `${this.kind}: response from TU ignored`);
      return;
    }
    if (status < 200) {
      // "While in the "Trying" state, if the TU passes a provisional response to the server
      // transaction, the server transaction MUST enter the "Proceeding" state. The response MUST
      // be passed to the transport layer for transmission." (§17.2.2)
      if (this.state === TransactionState.Trying) this.transition(TransactionState.Proceeding);
      this.lastProvisional = response;
      this.transmit(response, 'provisional response');
      return;
    }
    // "If the TU passes a final response (status codes 200-699) to the server while in the
    // "Trying" or "Proceeding" state, the transaction MUST enter the "Completed" state, and the
    // response MUST be passed to the transport layer for transmission." (§17.2.2)
    this.lastFinal = response;
    this.stopTimer('TU');
    this.transition(TransactionState.Completed);
    this.transmit(response, 'final response');
    // "When the server transaction enters the "Completed" state, it MUST set Timer J to fire in
    // 64*T1 seconds for unreliable transports, and zero seconds for reliable transports." (§17.2.2)
    this.startTimer('J', this.reliable ? 0 : sixtyFourT1(this.env.timers), () => this.timerJ());
  }

  /** "When the timer fires, the server transaction MUST transition to the "Terminated" state." (§17.2.2) */
  private timerJ(): void {
    if (this.state === TransactionState.Completed) this.transition(TransactionState.Terminated);
  }

  private tuTimeout(): void {
    if (this.state !== TransactionState.Trying && this.state !== TransactionState.Proceeding) return;
    this.env.logger.warn({ transaction: this.id, method: this.request.method }, `${this.kind}: no response from the TU`);
    this.transition(TransactionState.Terminated);
  }

  /**
   * "If the server transaction ... receives a transport error, it MUST inform the TU" (§17.2.4);
   * nothing can be done about a lost response, so it is only logged (by transmit).
   */
  protected onTransportError(_err: unknown): void {}
}
