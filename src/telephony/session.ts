/**
 * The session runner: the only place where the IVR machine's commands become I/O and where I/O
 * results come back as machine events. One per call.
 */
import type { Logger } from '../log.js';
import { initialState, step } from '../ivr/machine.js';
import type { LocalTime, RejectionReason } from '../ivr/prompts.js';
import type {
  Digit, Entry, IvrCommand, IvrEvent, IvrSettings, IvrState, MessageSummary, StoreOutcome, TimerName,
} from '../ivr/types.js';
import type { AccessCodeService, CallContext } from '../mailbox/access-code-service.js';
import type { MessageService, StoredMessage } from '../messages/message-service.js';
import { RecordingFailedError, type CallControl, type CallEvents, type DigitMethod, type Recording } from './call-control.js';
import type { Metrics } from '../metrics/metrics.js';
import type { CallerId } from './router.js';

/** The store operations the IVR needs: the access-code service's, behind a port for tests. */
export type AccessCodeOperations = Pick<AccessCodeService, 'verifyLogin' | 'checkNewAccessCode' | 'changeAccessCode'>;
/** …and the message store's. */
export type MessageOperations = Pick<MessageService, 'list' | 'deposit' | 'markSaved' | 'delete'>;

/**
 * A message's arrival time as the caller hears it, in `timeZone` (IANA name; default: the
 * server's, i.e. TZ). The machine has no clock and no calendar: the runner does this.
 */
export function localTime(at: Date, timeZone?: string): LocalTime {
  const parts = new Intl.DateTimeFormat('en-US', {
    month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', hourCycle: 'h23',
    ...(timeZone === undefined ? {} : { timeZone }),
  }).formatToParts(at);
  const part = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return { month: part('month'), day: part('day'), hour: part('hour') % 24, minute: part('minute') };
}

function toSummary(m: StoredMessage, timeZone: string | undefined): MessageSummary {
  return { id: m.id, audioKey: m.audioKey, caller: m.caller, state: m.state, receivedAt: localTime(m.receivedAt, timeZone) };
}

export interface CallSessionOptions {
  readonly call: CallControl;
  readonly domain: string;
  readonly entry: Entry;
  readonly settings: IvrSettings;
  readonly accessCodes: AccessCodeOperations;
  readonly messages: MessageOperations;
  /** Caller ID kept with a message left on this call. */
  readonly caller: CallerId;
  /** Time zone message times are spoken in (IANA name); default the server's. */
  readonly timeZone?: string;
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
  private recording: Recording | null = null;
  /** Work that must finish before the call is over (storing a message left on it). */
  private readonly pending = new Set<Promise<unknown>>();

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
    this.endByHangup(reason, 'remoteHangup');
  }

  /**
   * The server ends the call on its own, whatever the IVR was doing (the shutdown grace ran
   * out): BYE to the caller, the machine stopped as on a hang-up (its timers too), a message
   * being left kept, and the call counted as ended by the server.
   */
  hangupByServer(reason: string): void {
    this.endByHangup(reason, 'localHangup');
  }

  /** A hang-up from either side: by the caller ('remoteHangup') or by the server ('localHangup', which sends the BYE). */
  private endByHangup(reason: string, side: SessionEndReason): void {
    if (this.finished) return;
    this.log.info({ reason, phase: this.state.phase }, side === 'remoteHangup' ? 'caller hung up' : 'server hangs up');
    // Hanging up ends a message being left; what was said is kept.
    this.recording?.stop();
    this.dispatch({ type: 'hangup' });
    if (side === 'localHangup') this.opts.call.hangup();
    this.finish(side);
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
      case 'listMessages':
        this.opts.messages.list(this.opts.domain, c.mailbox).then(
          (list) => this.dispatch({
            type: 'messagesListed', requestId: c.requestId, result: 'ok', messages: list.map((m) => toSummary(m, this.opts.timeZone)),
          }),
          (err: unknown) => {
            this.log.error({ err }, 'messages could not be listed');
            this.dispatch({ type: 'messagesListed', requestId: c.requestId, result: 'unavailable' });
          },
        );
        return;
      case 'deleteMessage':
      case 'saveMessage': {
        const update = c.type === 'deleteMessage'
          ? this.opts.messages.delete(this.opts.domain, c.mailbox, c.messageId, this.ctx)
          : this.opts.messages.markSaved(this.opts.domain, c.mailbox, c.messageId);
        // false = already gone (deleted from the portal meanwhile): for the caller that is done too.
        update.then(
          () => this.dispatch({ type: 'messageUpdated', requestId: c.requestId, result: 'ok' }),
          (err: unknown) => {
            this.log.error({ err }, 'message could not be updated');
            this.dispatch({ type: 'messageUpdated', requestId: c.requestId, result: 'unavailable' });
          },
        );
        return;
      }
      case 'markHeard':
        this.track(this.opts.messages.markSaved(this.opts.domain, c.mailbox, c.messageId).catch((err: unknown) => {
          this.log.warn({ err }, 'heard message not marked saved');
        }));
        return;
      case 'startRecording':
        this.startRecording(c.requestId, c.mailbox, c.maxMs, c.silenceMs);
        return;
      case 'stopRecording':
        this.recording?.stop();
        return;
      case 'hangup':
        this.opts.call.hangup();
        this.finish('localHangup');
        return;
    }
  }

  /** Records the caller and stores the message; the store's answer goes back to the machine. */
  private startRecording(requestId: number, mailbox: string, maxMs: number, silenceMs: number): void {
    const recording = this.opts.call.record({ maxMs, silenceMs });
    this.recording = recording;
    const stored = recording.done.then(async (audio) => {
      if (this.recording === recording) this.recording = null;
      if (audio === null) return 'tooShort' as const;
      const { result } = await this.opts.messages.deposit({
        domain: this.opts.domain, mailbox, caller: this.opts.caller.number, callerName: this.opts.caller.name,
        wav: audio.wav, durationMs: audio.durationMs,
      });
      this.log.info({ mailbox, durationMs: Math.round(audio.durationMs), result }, 'message left');
      return result;
    }).catch((err: unknown) => {
      // A recording that exists but cannot be used (RecordingFailedError) is a failure the caller
      // hears as "try again later", never the goodbye of a message too short to keep.
      this.log.error({ err }, err instanceof RecordingFailedError ? 'recording unusable: message not stored' : 'message could not be stored');
      return 'unavailable' as const;
    });
    this.track(stored.then((result) => this.dispatch({ type: 'recordingStopped', requestId, result })));
  }

  private track(work: Promise<unknown>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
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
    // A message left just before the hang-up is stored before the call counts as over (drain).
    void Promise.allSettled([...this.pending]).then(() => this.resolveEnded(reason));
  }
}
