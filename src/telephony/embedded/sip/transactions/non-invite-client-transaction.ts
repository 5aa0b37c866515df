/**
 * Non-INVITE client transaction (RFC 3261 §17.1.2).
 *
 *   Trying --1xx--> Proceeding       Timer E (UDP): resend, E = min(2E, T2) in Trying, T2 in Proceeding
 *     | 200-699        | 200-699     Timer F (64*T1): timeout --> Terminated
 *     +---> Completed <+
 *             | Timer K (T4 UDP, 0 TCP)
 *             V
 *         Terminated
 */
import type { SipRequest, SipResponse } from '../message.js';
import { sixtyFourT1 } from '../timers.js';
import { Transaction, TransactionState, type TransactionEnvironment } from './transaction.js';

export interface ClientTransactionUser {
  /** Every response of the transaction (provisional and the one final); not retransmissions. */
  onResponse(response: SipResponse): void;
  /** Timer F fired: "treated as a 408 (Request Timeout)" by the TU (§8.1.3.1). */
  onTimeout(): void;
  /** The request could not be sent: "treated as a 503 (Service Unavailable)" (§8.1.3.1). */
  onTransportError(err: unknown): void;
}

const TRANSITIONS = {
  [TransactionState.Proceeding]: [TransactionState.Trying],
  [TransactionState.Completed]: [TransactionState.Trying, TransactionState.Proceeding],
  [TransactionState.Terminated]: [TransactionState.Trying, TransactionState.Proceeding, TransactionState.Completed],
} as const;

export class NonInviteClientTransaction extends Transaction {
  private timerEInterval: number;

  /**
   * "The "Trying" state is entered when the TU initiates a new client transaction with a request.
   * When entering this state, the client transaction SHOULD set timer F to fire in 64*T1 seconds.
   * The request MUST be passed to the transport layer for transmission. If an unreliable
   * transport is in use, the client transaction MUST set timer E to fire in T1 seconds." (§17.1.2.2)
   */
  constructor(
    id: string,
    readonly request: SipRequest,
    env: TransactionEnvironment,
    private readonly user: ClientTransactionUser,
  ) {
    super(id, env, TransactionState.Trying);
    this.timerEInterval = env.timers.T1;
    this.startTimer('F', sixtyFourT1(env.timers), () => this.timerF());
    if (!this.reliable) this.startTimer('E', this.timerEInterval, () => this.timerE());
    this.transmit(request, `${request.method} request`);
  }

  protected get kind(): string {
    return 'non-INVITE client transaction';
  }

  protected get transitions(): typeof TRANSITIONS {
    return TRANSITIONS;
  }

  receiveResponse(response: SipResponse): void {
    const status = response.status;
    switch (this.state) {
      case TransactionState.Trying:
      case TransactionState.Proceeding:
        if (status < 200) {
          // "If a provisional response is received while in the "Trying" state, the response
          // MUST be passed to the TU, and then the client transaction SHOULD move to the
          // "Proceeding" state." (§17.1.2.2)
          if (this.state === TransactionState.Trying) this.transition(TransactionState.Proceeding);
          this.user.onResponse(response);
          return;
        }
        // "If a final response (status codes 200-699) is received while in the "Trying" [or
        // "Proceeding"] state, the response MUST be passed to the TU, and the client transaction
        // MUST transition to the "Completed" state." (§17.1.2.2)
        this.stopTimer('E');
        this.stopTimer('F');
        this.transition(TransactionState.Completed);
        this.user.onResponse(response);
        // "Once the client transaction enters the "Completed" state, it MUST set Timer K to fire
        // in T4 seconds for unreliable transports, and zero seconds for reliable transports. The
        // "Completed" state exists to buffer any additional response retransmissions that may be
        // received" (§17.1.2.2)
        this.startTimer('K', this.reliable ? 0 : this.env.timers.T4, () => this.timerK());
        return;
      default:
        // Completed: absorb retransmissions of the final response.
        return;
    }
  }

  /**
   * "If timer E fires while still in [the Trying] state, the timer is reset, but this time with a
   * value of MIN(2*T1, T2)... If Timer E fires while in the "Proceeding" state, the request MUST
   * be passed to the transport layer for retransmission, and Timer E MUST be reset with a value of
   * T2 seconds." (§17.1.2.2)
   */
  private timerE(): void {
    if (this.state !== TransactionState.Trying && this.state !== TransactionState.Proceeding) return;
    this.transmit(this.request, `${this.request.method} retransmission (Timer E)`);
    this.timerEInterval =
      this.state === TransactionState.Trying ? Math.min(2 * this.timerEInterval, this.env.timers.T2) : this.env.timers.T2;
    this.startTimer('E', this.timerEInterval, () => this.timerE());
  }

  /**
   * "If Timer F fires while the client transaction is still in the "Trying" [or "Proceeding"]
   * state, the client transaction SHOULD inform the TU about the timeout, and then it SHOULD
   * enter the "Terminated" state." (§17.1.2.2)
   */
  private timerF(): void {
    if (this.state !== TransactionState.Trying && this.state !== TransactionState.Proceeding) return;
    this.transition(TransactionState.Terminated);
    this.user.onTimeout();
  }

  /** "If Timer K fires while in this state, the client transaction MUST transition to the "Terminated" state." (§17.1.2.2) */
  private timerK(): void {
    if (this.state === TransactionState.Completed) this.transition(TransactionState.Terminated);
  }

  /**
   * "the client transaction SHOULD inform the TU that a transport failure has occurred, and the
   * client transaction SHOULD transition directly to the "Terminated" state." (§17.1.4)
   */
  protected onTransportError(err: unknown): void {
    if (this.state !== TransactionState.Trying && this.state !== TransactionState.Proceeding) return;
    this.transition(TransactionState.Terminated);
    this.user.onTransportError(err);
  }

  /** Endpoint shutdown: stop and tell the TU the request cannot complete. */
  abort(): void {
    const pending = this.state === TransactionState.Trying || this.state === TransactionState.Proceeding;
    this.dispose();
    if (pending) this.user.onTransportError(new Error('SIP endpoint closed'));
  }
}
