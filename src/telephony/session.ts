/**
 * The session runner: the only place where the IVR machine's commands become I/O and where I/O
 * results come back as machine events. One per call.
 */
import type { Logger } from '../log.js';
import { initialState, step } from '../ivr/machine.js';
import type { RejectionReason } from '../ivr/prompts.js';
import type {
  Digit, Entry, IvrCommand, IvrEvent, IvrSettings, IvrState, StoreOutcome, TimerName,
} from '../ivr/types.js';
import type { AccessCodeService, CallContext } from '../mailbox/access-code-service.js';
import type { CallControl, CallEvents, DigitMethod } from './call-control.js';
import type { Metrics } from '../metrics/metrics.js';

/** The store operations the IVR needs: the access-code service's, behind a port for tests. */
export type AccessCodeOperations = Pick<AccessCodeService, 'verifyLogin' | 'checkNewAccessCode' | 'changeAccessCode'>;

export interface CallSessionOptions {
  readonly call: CallControl;
  readonly domain: string;
  readonly entry: Entry;
  readonly settings: IvrSettings;
  readonly accessCodes: AccessCodeOperations;
  readonly actor: string;
  /** Who the per-source failed-login limit counts (guard/login-guard.ts failedLoginSource). */
  readonly loginSource?: string;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Milliseconds clock for the key rate limit (tests inject one). */
  readonly now?: () => number;
}

/**
 * Per-call key rate limit: a token bucket of KEY_BURST keys refilled at KEY_RATE_PER_S. A person
 * presses at most a few keys a second (a held key is one press); a flood of RFC 4733 events or
 * INFO requests from one call is cut here, before the machine, so it cannot take the event loop
 * from the other calls. Dropped keys are counted (vmaccess_dtmf_dropped_total), never logged.
 */
export const KEY_BURST = 20;
export const KEY_RATE_PER_S = 10;

export type SessionEndReason = 'localHangup' | 'remoteHangup';

export class CallSession implements CallEvents {
  private state: IvrState;
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();
  private readonly queue: IvrEvent[] = [];
  private dispatching = false;
  private finished = false;
  private resolveEnded!: (reason: SessionEndReason) => void;
  /** Resolves when the call is over, from either side. */
  readonly ended: Promise<SessionEndReason>;
  private readonly ctx: CallContext;
  private readonly log: Logger;
  private keyTokens = KEY_BURST;
  private keyRefilledAt: number;
  private keysDropped = 0;

  constructor(private readonly opts: CallSessionOptions) {
    this.state = initialState(opts.settings);
    this.ended = new Promise((resolve) => { this.resolveEnded = resolve; });
    this.ctx = { channel: 'phone', actor: opts.actor, callId: opts.call.callId, loginSource: opts.loginSource };
    this.log = opts.logger.child({ callId: opts.call.callId, domain: opts.domain });
    this.keyRefilledAt = (opts.now ?? Date.now)();
  }

  get phase(): IvrState['phase'] {
    return this.state.phase;
  }

  start(): void {
    this.log.info({ entry: this.opts.entry.kind }, 'ivr session started');
    this.dispatch({ type: 'callStarted', entry: this.opts.entry });
  }

  digit(digit: Digit, method: DigitMethod): void {
    if (this.finished) return;
    const now = (this.opts.now ?? Date.now)();
    this.keyTokens = Math.min(KEY_BURST, this.keyTokens + ((now - this.keyRefilledAt) * KEY_RATE_PER_S) / 1000);
    this.keyRefilledAt = now;
    if (this.keyTokens < 1) {
      this.opts.metrics?.dtmfDropped.inc();
      if (this.keysDropped++ === 0) this.log.warn({ method }, 'key flood: keys dropped (per-call key rate limit)');
      return;
    }
    this.keyTokens -= 1;
    this.opts.metrics?.dtmf.inc({ method });
    // The digit itself is never logged: it may be part of an access code.
    this.log.trace({ method }, 'key pressed');
    this.dispatch({ type: 'digit', digit });
  }

  remoteHangup(reason: string): void {
    if (this.finished) return;
    this.log.info({ reason, phase: this.state.phase }, 'caller hung up');
    this.dispatch({ type: 'hangup' });
    this.finish('remoteHangup');
  }

  /** Events are queued so an answer delivered while a step runs never re-enters the machine. */
  private dispatch(event: IvrEvent): void {
    this.queue.push(event);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
        const before = this.state.phase;
        const t = step(this.state, next);
        this.state = t.state;
        if (t.state.phase !== before) this.log.debug({ from: before, to: t.state.phase }, 'ivr phase');
        for (const command of t.commands) this.execute(command);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private execute(c: IvrCommand): void {
    switch (c.type) {
      case 'play':
        this.opts.call.play(c.prompts, () => this.dispatch({ type: 'promptFinished', playId: c.playId }));
        return;
      case 'stopPlayback':
        this.opts.call.stopPlayback();
        return;
      case 'startTimer': {
        this.clearTimer(c.timer);
        const handle = setTimeout(() => {
          this.timers.delete(c.timer);
          this.dispatch({ type: 'timerFired', timer: c.timer, timerId: c.timerId });
        }, c.ms);
        this.timers.set(c.timer, handle);
        return;
      }
      case 'cancelTimer':
        this.clearTimer(c.timer);
        return;
      case 'verifyLogin':
        this.answer(c.requestId, 'loginResult',
          this.opts.accessCodes.verifyLogin(this.opts.domain, c.mailbox, c.accessCode, this.ctx));
        return;
      case 'checkNewAccessCode':
        this.answer(c.requestId, 'checkResult',
          this.opts.accessCodes.checkNewAccessCode(this.opts.domain, c.mailbox, c.accessCode));
        return;
      case 'changeAccessCode':
        this.answer(c.requestId, 'changeResult',
          this.opts.accessCodes.changeAccessCode(this.opts.domain, c.mailbox, c.accessCode, this.ctx, { initial: c.initial }));
        return;
      case 'transfer':
        this.opts.call.transfer(c.target).then(
          (ok) => this.dispatch({ type: 'transferResult', requestId: c.requestId, result: ok ? 'ok' : 'failed' }),
          (err: unknown) => {
            this.log.warn({ err }, 'transfer failed');
            this.dispatch({ type: 'transferResult', requestId: c.requestId, result: 'failed' });
          },
        );
        return;
      case 'hangup':
        this.opts.call.hangup();
        this.finish('localHangup');
        return;
    }
  }

  /** Turns a store promise into the machine's answer event; a thrown error is "unavailable". */
  private answer(
    requestId: number,
    type: 'loginResult' | 'checkResult' | 'changeResult',
    promise: Promise<{ result: StoreOutcome; mustChange?: boolean; reason?: RejectionReason }>,
  ): void {
    promise.then(
      (r) => {
        if (type === 'loginResult') {
          this.dispatch({ type, requestId, result: r.result, mustChange: r.mustChange === true });
        } else {
          this.dispatch({ type, requestId, result: r.result, reason: r.reason });
        }
      },
      (err: unknown) => {
        this.log.error({ err }, 'access-code operation failed');
        this.dispatch({ type, requestId, result: 'unavailable' });
      },
    );
  }

  private clearTimer(timer: TimerName): void {
    const handle = this.timers.get(timer);
    if (handle !== undefined) clearTimeout(handle);
    this.timers.delete(timer);
  }

  private finish(reason: SessionEndReason): void {
    if (this.finished) return;
    this.finished = true;
    for (const timer of [...this.timers.keys()]) this.clearTimer(timer);
    this.log.info({ reason }, 'ivr session ended');
    this.resolveEnded(reason);
  }
}
