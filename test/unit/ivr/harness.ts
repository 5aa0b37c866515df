import { initialState, step } from '../../../src/ivr/machine.js';
import {
  DEFAULT_IVR_SETTINGS, type Digit, type Entry, type IvrCommand, type IvrEvent, type IvrSettings, type IvrState,
  type MessageSummary, type PlayItem, type TimerName,
} from '../../../src/ivr/types.js';
import type { RejectionReason } from '../../../src/ivr/prompts.js';

/**
 * Drives the pure machine the way the session runner does, remembering the ids it handed out,
 * so tests read as call flows: `h.press('4826#')`, `h.finishPrompt()`, `h.answerLogin('ok')`.
 */
export class Harness {
  state: IvrState;
  log: IvrCommand[] = [];
  last: readonly IvrCommand[] = [];
  private timers = new Map<TimerName, number>();

  constructor(settings: IvrSettings = DEFAULT_IVR_SETTINGS) {
    this.state = initialState(settings);
  }

  static start(entry: Entry, settings?: IvrSettings): Harness {
    const h = new Harness(settings);
    h.send({ type: 'callStarted', entry });
    return h;
  }

  send(event: IvrEvent): readonly IvrCommand[] {
    const t = step(this.state, event);
    this.state = t.state;
    this.last = t.commands;
    this.log.push(...t.commands);
    for (const c of t.commands) {
      if (c.type === 'startTimer') this.timers.set(c.timer, c.timerId);
      if (c.type === 'cancelTimer') this.timers.delete(c.timer);
    }
    return t.commands;
  }

  press(keys: string): readonly IvrCommand[] {
    const all: IvrCommand[] = [];
    for (const k of keys) all.push(...this.send({ type: 'digit', digit: k as Digit }));
    this.last = all;
    return all;
  }

  finishPrompt(): readonly IvrCommand[] {
    const playing = this.state.playing;
    if (playing === null) throw new Error('no prompt is playing');
    return this.send({ type: 'promptFinished', playId: playing });
  }

  fire(timer: TimerName): readonly IvrCommand[] {
    const timerId = this.timers.get(timer);
    if (timerId === undefined) throw new Error(`timer ${timer} is not running`);
    this.timers.delete(timer);
    return this.send({ type: 'timerFired', timer, timerId });
  }

  running(timer: TimerName): boolean {
    return this.state.timers[timer] !== undefined;
  }

  pending(): IvrCommand & { requestId: number } {
    const awaiting = this.state.awaiting;
    const c = [...this.log].reverse().find((x) => 'requestId' in x && x.requestId === awaiting);
    if (c === undefined || !('requestId' in c)) throw new Error('no pending request');
    return c;
  }

  answerLogin(result: 'ok' | 'rejected' | 'unavailable', mustChange = false): readonly IvrCommand[] {
    return this.send({ type: 'loginResult', requestId: this.pending().requestId, result, mustChange });
  }

  answerCheck(result: 'ok' | 'rejected' | 'unavailable', reason?: RejectionReason): readonly IvrCommand[] {
    return this.send({ type: 'checkResult', requestId: this.pending().requestId, result, reason });
  }

  answerChange(result: 'ok' | 'rejected' | 'unavailable', reason?: RejectionReason): readonly IvrCommand[] {
    return this.send({ type: 'changeResult', requestId: this.pending().requestId, result, reason });
  }

  answerTransfer(result: 'ok' | 'failed'): readonly IvrCommand[] {
    return this.send({ type: 'transferResult', requestId: this.pending().requestId, result });
  }

  answerMessages(result: 'ok' | 'unavailable', messages: readonly MessageSummary[] = []): readonly IvrCommand[] {
    return this.send({ type: 'messagesListed', requestId: this.pending().requestId, result, messages });
  }

  answerUpdate(result: 'ok' | 'unavailable'): readonly IvrCommand[] {
    return this.send({ type: 'messageUpdated', requestId: this.pending().requestId, result });
  }

  answerRecording(result: 'saved' | 'tooShort' | 'unavailable'): readonly IvrCommand[] {
    return this.send({ type: 'recordingStopped', requestId: this.pending().requestId, result });
  }

  /** Prompts of the most recent play command among the last commands, or null. */
  lastPlayed(): readonly PlayItem[] | null {
    const plays = this.last.filter((c) => c.type === 'play');
    const p = plays[plays.length - 1];
    return p?.type === 'play' ? p.prompts : null;
  }

  lastOf<T extends IvrCommand['type']>(type: T): Extract<IvrCommand, { type: T }> | undefined {
    return [...this.last].reverse().find((c) => c.type === type) as Extract<IvrCommand, { type: T }> | undefined;
  }
}
