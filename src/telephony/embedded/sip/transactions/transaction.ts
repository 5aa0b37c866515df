/**
 * What every RFC 3261 §17 transaction shares: a state, named timers and a way to send.
 */
import type { Logger } from '../../../../log.js';
import type { SipMessage } from '../message.js';
import type { SipTimers } from '../timers.js';
import type { TransportAddress } from '../transport.js';

export const TransactionState = {
  Trying: 'Trying',
  Proceeding: 'Proceeding',
  Completed: 'Completed',
  Confirmed: 'Confirmed',
  /** RFC 6026 §7.1: an INVITE server transaction that sent a 2xx. */
  Accepted: 'Accepted',
  Terminated: 'Terminated',
} as const;
export type TransactionState = (typeof TransactionState)[keyof typeof TransactionState];

/** Timer names as in RFC 3261 Table 4 and RFC 6026 (L). */
export type TimerName = 'E' | 'F' | 'G' | 'H' | 'I' | 'J' | 'K' | 'L' | 'TU';

export interface TransactionEnvironment {
  timers: SipTimers;
  logger: Logger;
  /** Where this transaction's messages go: the response destination (§18.2.2) or the next hop. */
  destination: TransportAddress;
  /** Sends a message to `destination`; rejects on a transport error. */
  send(message: SipMessage): Promise<void>;
  /** Called once, when the transaction reaches Terminated: the owner forgets it. */
  onTerminated(transaction: Transaction): void;
}

export abstract class Transaction {
  private current: TransactionState;
  private readonly running = new Map<TimerName, NodeJS.Timeout>();

  protected constructor(
    /** The key this transaction is matched by (RFC 3261 §17.1.3 / §17.2.3). */
    readonly id: string,
    protected readonly env: TransactionEnvironment,
    initial: TransactionState,
  ) {
    this.current = initial;
  }

  get state(): TransactionState {
    return this.current;
  }

  /** Reliable transports (TCP) need no retransmissions and no waiting for them (§17.1.2.2, §17.2.1). */
  get reliable(): boolean {
    return this.env.destination.transport === 'tcp';
  }

  /** For logs. */
  protected abstract get kind(): string;

  /** The state transitions this kind of transaction allows: next state → allowed previous states. */
  protected abstract get transitions(): Partial<Record<TransactionState, readonly TransactionState[]>>;

  /** Changes state, asserting the transition is one the RFC's state machine has. */
  protected transition(next: TransactionState): void {
    const allowedFrom = this.transitions[next];
    if (!allowedFrom?.includes(this.current)) {
      throw new Error(`${this.kind}: invalid transition ${this.current} -> ${next}`);
    }
    this.env.logger.trace({ transaction: this.id, from: this.current, to: next }, `${this.kind} state change`);
    this.current = next;
    if (next === TransactionState.Terminated) {
      this.clearTimers();
      this.env.onTerminated(this);
    }
  }

  /** Starts (or restarts) a named timer. A zero duration fires at once, as the RFC's "zero seconds". */
  protected startTimer(name: TimerName, ms: number, fire: () => void): void {
    this.stopTimer(name);
    if (ms <= 0) {
      fire();
      return;
    }
    this.running.set(
      name,
      setTimeout(() => {
        this.running.delete(name);
        fire();
      }, ms),
    );
  }

  protected stopTimer(name: TimerName): void {
    const timer = this.running.get(name);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.running.delete(name);
    }
  }

  protected clearTimers(): void {
    for (const timer of this.running.values()) clearTimeout(timer);
    this.running.clear();
  }

  /** Sends without waiting; a failure goes to onTransportError (§17.1.4, §17.2.4). */
  protected transmit(message: SipMessage, what: string): void {
    this.env.send(message).catch((err: unknown) => {
      this.env.logger.debug({ transaction: this.id, err }, `${this.kind}: transport error sending ${what}`);
      this.onTransportError(err);
    });
  }

  protected abstract onTransportError(err: unknown): void;

  /** Stops everything without telling anyone (endpoint shutdown). */
  dispose(): void {
    this.clearTimers();
    this.current = TransactionState.Terminated;
  }
}
