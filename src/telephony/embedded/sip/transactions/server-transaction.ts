/** Common shape of the two server transactions (RFC 3261 §17.2). */
import type { SipRequest, SipResponse } from '../message.js';
import { Transaction, type TransactionEnvironment, type TransactionState } from './transaction.js';

export abstract class ServerTransaction extends Transaction {
  protected constructor(
    id: string,
    readonly request: SipRequest,
    env: TransactionEnvironment,
    initial: TransactionState,
  ) {
    super(id, env, initial);
  }

  get destination(): TransactionEnvironment['destination'] {
    return this.env.destination;
  }

  /** A request from the transport matched this transaction. True when absorbed here; false: pass to the TU. */
  abstract receiveRequest(request: SipRequest): boolean;

  /** A response from the TU. */
  abstract respond(response: SipResponse): void;

  /** Whether a final response (2xx–6xx) was sent. */
  abstract get finalResponseSent(): boolean;
}
