/**
 * INVITE server transaction: RFC 3261 §17.2.1 as updated by RFC 6026 (the "Accepted" state).
 *
 *                      |INVITE  pass INV to TU, send 100 Trying
 *                      V
 *                 Proceeding ----1xx from TU: send----+
 *          300-699 |      | 2xx from TU: send         |
 *          send    |      +--------> Accepted --Timer L--> Terminated
 *                  V
 *              Completed --Timer G: resend-- (UDP)    Timer H: fail --> Terminated
 *                  | ACK
 *                  V
 *              Confirmed --Timer I--> Terminated
 */
import type { SipRequest, SipResponse } from '../message.js';
import { createResponse } from '../response.js';
import { sixtyFourT1 } from '../timers.js';
import { ServerTransaction } from './server-transaction.js';
import { TransactionState, type TransactionEnvironment } from './transaction.js';

export interface InviteServerTransactionUser {
  /** Timer H fired: the ACK for our final response never came (§17.2.1). */
  onAckTimeout?(): void;
  /** Sending failed (RFC 6026 §8.8: inform the TU, stay in the state). */
  onTransportError?(err: unknown): void;
}

const TRANSITIONS = {
  [TransactionState.Accepted]: [TransactionState.Proceeding],
  [TransactionState.Completed]: [TransactionState.Proceeding],
  [TransactionState.Confirmed]: [TransactionState.Completed],
  [TransactionState.Terminated]: [TransactionState.Accepted, TransactionState.Completed, TransactionState.Confirmed],
} as const;

export class InviteServerTransaction extends ServerTransaction {
  private lastProvisional: SipResponse | undefined;
  private lastFinal: SipResponse | undefined;
  /** Current Timer G interval: T1, doubling up to T2. */
  private timerGInterval = 0;
  /** The To tag the TU answers with: the 200 to a CANCEL carries it too (§9.2). */
  localTag: string | undefined;
  /** What the TU does when a CANCEL matches this transaction while it is Proceeding (§9.2). */
  cancelHandler: (() => void) | undefined;
  user: InviteServerTransactionUser = {};

  /**
   * "When a server transaction is constructed for a request, it enters the "Proceeding" state.
   * The server transaction MUST generate a 100 (Trying) response unless it knows that the TU will
   * generate a provisional or final response within 200 ms" (§17.2.1). We never know that.
   */
  constructor(id: string, request: SipRequest, env: TransactionEnvironment) {
    super(id, request, env, TransactionState.Proceeding);
    this.lastProvisional = createResponse(request, 100, 'Trying');
    this.transmit(this.lastProvisional, '100 Trying');
  }

  protected get kind(): string {
    return 'INVITE server transaction';
  }

  protected get transitions(): typeof TRANSITIONS {
    return TRANSITIONS;
  }

  get finalResponseSent(): boolean {
    return this.lastFinal !== undefined;
  }

  receiveRequest(request: SipRequest): boolean {
    const method = request.method;
    switch (this.state) {
      case TransactionState.Proceeding:
        // "If a request retransmission is received while in the "Proceeding" state, the most
        // recent provisional response that was received from the TU MUST be passed to the
        // transport layer for retransmission." (§17.2.1)
        if (method === 'INVITE' && this.lastProvisional) this.transmit(this.lastProvisional, 'provisional retransmission');
        return true;
      case TransactionState.Accepted:
        // "While in the "Accepted" state, any retransmissions of the INVITE received will match
        // this transaction state machine and will be absorbed by the machine without changing its
        // state. These retransmissions are not passed onto the TU." (RFC 6026 §8.7)
        // An ACK matching here (a UAC reusing the INVITE branch) is for the 2xx: "ACK / to TU"
        // (RFC 6026 Figure 7).
        return method !== 'ACK';
      case TransactionState.Completed:
        // "while in the "Completed" state, if a request retransmission is received, the server
        // SHOULD pass the response to the transport for retransmission." (§17.2.1)
        if (method === 'INVITE' && this.lastFinal) {
          this.transmit(this.lastFinal, 'final response retransmission');
          return true;
        }
        // "If an ACK is received while the server transaction is in the "Completed" state, the
        // server transaction MUST transition to the "Confirmed" state. As Timer G is ignored in
        // this state, any retransmissions of the response will cease." (§17.2.1)
        if (method === 'ACK') this.enterConfirmed();
        return true;
      case TransactionState.Confirmed:
      case TransactionState.Terminated:
        // "The purpose of the "Confirmed" state is to absorb any additional ACK messages that
        // arrive, triggered from retransmissions of the final response." (§17.2.1)
        return true;
      default:
        return true;
    }
  }

  respond(response: SipResponse): void {
    const status = response.status;
    if (status < 100 || status > 699) throw new Error(`invalid status ${status}`);
    switch (this.state) {
      case TransactionState.Proceeding:
        if (status < 200) {
          // "The TU passes any number of provisional responses to the server transaction. So long
          // as the server transaction is in the "Proceeding" state, each of these MUST be passed
          // to the transport layer for transmission. They are not sent reliably by the transaction
          // layer" (§17.2.1)
          this.lastProvisional = response;
          this.transmit(response, 'provisional response');
          return;
        }
        this.lastFinal = response;
        if (status < 300) {
          // "If, while in the "Proceeding" state, the TU passes a 2xx response to the server
          // transaction, the server transaction MUST pass this response to the transport layer for
          // transmission. It is not retransmitted by the server transaction; retransmissions of
          // 2xx responses are handled by the TU. The server transaction MUST then transition to
          // the "Accepted" state." (RFC 6026 §8.5)
          this.transition(TransactionState.Accepted);
          this.transmit(response, '2xx response');
          this.startTimer('L', sixtyFourT1(this.env.timers), () => this.timerL());
          return;
        }
        // "While in the "Proceeding" state, if the TU passes a response with status code from
        // 300 to 699 to the server transaction, the response MUST be passed to the transport
        // layer for transmission, and the state machine MUST enter the "Completed" state."
        // (§17.2.1)
        this.transition(TransactionState.Completed);
        this.transmit(response, 'final response');
        this.enterCompleted();
        return;
      case TransactionState.Accepted:
        // "While in the "Accepted" state, if the TU passes a 2xx response, the server transaction
        // MUST pass the response to the transport layer for transmission." (RFC 6026 §8.7)
        if (status >= 200 && status < 300) {
          this.transmit(response, '2xx retransmission');
          return;
        }
        break;
      default:
        break;
    }
    this.env.logger.debug({ transaction: this.id, status, state: this.state }, `${this.kind}: response from TU ignored`);
  }

  /**
   * "For unreliable transports, timer G is set to fire in T1 seconds, and is not set to fire for
   * reliable transports." "When the "Completed" state is entered, timer H MUST be set to fire in
   * 64*T1 seconds for all transports." (§17.2.1)
   */
  private enterCompleted(): void {
    if (!this.reliable) {
      this.timerGInterval = this.env.timers.T1;
      this.startTimer('G', this.timerGInterval, () => this.timerG());
    }
    this.startTimer('H', sixtyFourT1(this.env.timers), () => this.timerH());
  }

  /**
   * "If timer G fires, the response is passed to the transport layer once more for
   * retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds. From then on, when timer
   * G fires, the response is passed to the transport again for transmission, and timer G is reset
   * with a value that doubles, unless that value exceeds T2, in which case it is reset with the
   * value of T2." (§17.2.1)
   */
  private timerG(): void {
    if (this.state !== TransactionState.Completed || !this.lastFinal) return;
    this.transmit(this.lastFinal, 'final response retransmission (Timer G)');
    this.timerGInterval = Math.min(2 * this.timerGInterval, this.env.timers.T2);
    this.startTimer('G', this.timerGInterval, () => this.timerG());
  }

  /**
   * "If timer H fires while in the "Completed" state, it implies that the ACK was never received.
   * In this case, the server transaction MUST transition to the "Terminated" state, and MUST
   * indicate to the TU that a transaction failure has occurred." (§17.2.1)
   */
  private timerH(): void {
    if (this.state !== TransactionState.Completed) return;
    this.env.logger.debug({ transaction: this.id }, `${this.kind}: Timer H fired, no ACK`);
    this.transition(TransactionState.Terminated);
    this.user.onAckTimeout?.();
  }

  /**
   * "The purpose of the "Confirmed" state is to absorb any additional ACK messages that arrive...
   * When this state is entered, timer I is set to fire in T4 seconds for unreliable transports,
   * and zero seconds for reliable transports." (§17.2.1)
   */
  private enterConfirmed(): void {
    this.transition(TransactionState.Confirmed);
    this.stopTimer('G');
    this.stopTimer('H');
    this.startTimer('I', this.reliable ? 0 : this.env.timers.T4, () => this.timerI());
  }

  /** "Once timer I fires, the server MUST transition to the "Terminated" state." (§17.2.1) */
  private timerI(): void {
    if (this.state === TransactionState.Confirmed) this.transition(TransactionState.Terminated);
  }

  /** "If Timer L fires while the INVITE server transaction is in the "Accepted" state, the transaction MUST transition to the "Terminated" state." (RFC 6026 §8.7) */
  private timerL(): void {
    if (this.state === TransactionState.Accepted) this.transition(TransactionState.Terminated);
  }

  protected onTransportError(err: unknown): void {
    // RFC 6026 §8.8: the transaction "SHOULD inform the TU that a failure has occurred, and MUST
    // remain in the current state".
    this.user.onTransportError?.(err);
  }
}
