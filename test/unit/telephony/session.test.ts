/**
 * The session runner between the pure machine and I/O, with a fake call (FakeCall records what
 * an engine would do) and fake access-code operations; timers run on vitest's fake clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { DEFAULT_IVR_SETTINGS, type PlayItem } from '../../../src/ivr/types.js';
import type { CallControl, RecordedAudio, Recording, RecordingLimits } from '../../../src/telephony/call-control.js';
import {
  CallSession, KEY_BURST, KEY_RATE_PER_S, localTime, type AccessCodeOperations, type MessageOperations,
} from '../../../src/telephony/session.js';
import type { Deposit, StoredMessage } from '../../../src/messages/message-service.js';
import { Metrics } from '../../../src/metrics/metrics.js';

class FakeCall implements CallControl {
  readonly callId = 'fake-call-1';
  plays: Array<readonly PlayItem[]> = [];
  recordings: Array<{ limits: RecordingLimits; stopped: number; end: (audio: RecordedAudio | null) => void }> = [];
  stops = 0;
  hangups = 0;
  transfers: string[] = [];
  transferAnswer = true;
  private finish: (() => void) | null = null;

  record(limits: RecordingLimits): Recording {
    let end!: (audio: RecordedAudio | null) => void;
    const done = new Promise<RecordedAudio | null>((resolve) => { end = resolve; });
    const entry = { limits, stopped: 0, end };
    this.recordings.push(entry);
    return { stop: () => { entry.stopped += 1; }, done };
  }
  play(prompts: readonly PlayItem[], onFinished: () => void): void {
    this.plays.push(prompts);
    this.finish = onFinished;
  }
  stopPlayback(): void {
    this.stops += 1;
    this.finish = null;
  }
  hangup(): void {
    this.hangups += 1;
  }
  transfer(target: string): Promise<boolean> {
    this.transfers.push(target);
    return Promise.resolve(this.transferAnswer);
  }
  /** The engine reports the current prompt played to its end. */
  endPrompt(): void {
    const f = this.finish;
    this.finish = null;
    f?.();
  }
  lastPlay(): readonly PlayItem[] | undefined {
    return this.plays[this.plays.length - 1];
  }
}

function operations(overrides: Partial<AccessCodeOperations> = {}): AccessCodeOperations & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    verifyLogin: async (_d, mailbox, code, ctx) => {
      calls.push(`verify ${mailbox} ${ctx.actor} ${ctx.callId}`);
      return code === '4826' ? { result: 'ok', mustChange: false } : { result: 'rejected' };
    },
    checkNewAccessCode: async () => ({ result: 'ok' }),
    changeAccessCode: async (_d, mailbox, _code, _ctx, opts) => {
      calls.push(`change ${mailbox} initial=${opts?.initial === true}`);
      return { result: 'ok' };
    },
    ...overrides,
  };
}

function messageOps(stored: StoredMessage[] = []): MessageOperations & { deposits: Deposit[]; calls: string[] } {
  const deposits: Deposit[] = [];
  const calls: string[] = [];
  return {
    deposits, calls,
    list: async () => stored,
    deposit: async (d) => {
      deposits.push(d);
      return d.durationMs < 1000 ? { result: 'tooShort' } : { result: 'saved', id: '1' };
    },
    markSaved: async (_d, m, id) => { calls.push(`saved ${m} ${id}`); return true; },
    delete: async (_d, m, id, ctx) => { calls.push(`delete ${m} ${id} ${ctx.actor}`); return true; },
  };
}

function session(
  call: FakeCall, ops: AccessCodeOperations, entry = { kind: 'ownMailbox' as const, mailbox: '201', firstTimeSetup: false },
  messages: MessageOperations = messageOps(),
): CallSession {
  return new CallSession({
    call, domain: 'demo.local', entry, settings: DEFAULT_IVR_SETTINGS, accessCodes: ops, messages,
    caller: { number: '5551234', name: 'Pat' }, actor: '201@demo.local', logger: silentLogger,
  });
}

const flush = async (): Promise<void> => { await vi.advanceTimersByTimeAsync(0); };

describe('CallSession', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it('plays, verifies through the operations with the call context, and hangs up on *', async () => {
    const call = new FakeCall();
    const ops = operations();
    const s = session(call, ops);
    s.start();
    expect(call.lastPlay()).toEqual(['enter-access-code']);
    for (const d of '4826#') s.digit(d as '4', 'rfc4733');
    expect(call.stops).toBe(1); // the first key stopped the prompt
    await flush();
    expect(ops.calls).toEqual(['verify 201 201@demo.local fake-call-1']);
    expect(call.lastPlay()).toEqual(['main-menu']);
    s.digit('*', 'info');
    expect(call.lastPlay()).toEqual(['goodbye']);
    call.endPrompt();
    expect(call.hangups).toBe(1);
    await expect(s.ended).resolves.toBe('localHangup');
  });

  it('runs the no-input timer only after the prompt ends, replays once, then says goodbye', async () => {
    const call = new FakeCall();
    const s = session(call, operations());
    s.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(call.plays).toHaveLength(1); // the prompt never ended, so no timer ran
    call.endPrompt();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(call.plays).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(call.lastPlay()).toEqual(['enter-access-code']);
    call.endPrompt();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(call.lastPlay()).toEqual(['goodbye']);
    call.endPrompt();
    expect(call.hangups).toBe(1);
  });

  it('a store operation that throws is heard as "try again later"', async () => {
    const call = new FakeCall();
    const s = session(call, operations({ verifyLogin: () => Promise.reject(new Error('boom')) }));
    s.start();
    for (const d of '4826#') s.digit(d as '4', 'rfc4733');
    await flush();
    expect(call.lastPlay()).toEqual(['try-again-later', 'goodbye']);
  });

  it('the caller hanging up while a verify is pending: timers stop, the late answer changes nothing', async () => {
    const call = new FakeCall();
    let answer: (v: { result: 'ok'; mustChange: boolean }) => void = () => undefined;
    const s = session(call, operations({ verifyLogin: () => new Promise((r) => { answer = r; }) }));
    s.start();
    for (const d of '48') s.digit(d as '4', 'rfc4733');
    expect(vi.getTimerCount()).toBe(1); // inter-digit
    for (const d of '26#') s.digit(d as '4', 'rfc4733');
    s.remoteHangup('bye');
    await expect(s.ended).resolves.toBe('remoteHangup');
    expect(vi.getTimerCount()).toBe(0);
    answer({ result: 'ok', mustChange: false });
    await flush();
    expect(call.lastPlay()).toEqual(['enter-access-code']);
    expect(call.hangups).toBe(0);
  });

  it('first-time setup saves with initial=true', async () => {
    const call = new FakeCall();
    const ops = operations();
    const s = session(call, ops, { kind: 'ownMailbox', mailbox: '203', firstTimeSetup: true });
    s.start();
    for (const d of '2580#') s.digit(d as '2', 'rfc4733');
    await flush();
    for (const d of '2580#') s.digit(d as '2', 'rfc4733');
    await flush();
    expect(ops.calls).toEqual(['change 203 initial=true']);
    expect(call.lastPlay()).toEqual(['access-code-set', 'main-menu']);
  });

  it('transfers through the call-control port and hangs up when the peer accepts', async () => {
    const call = new FakeCall();
    const s = session(call, operations(), { kind: 'autoAttendant', options: [{ digit: '0', action: 'transfer', target: '201' }] } as never);
    s.start();
    s.digit('0', 'rfc4733');
    await flush();
    expect(call.transfers).toEqual(['201']);
    expect(call.hangups).toBe(1);
  });

  it('a key flood is cut by the per-call rate limit (burst, then the refill rate), counted, never logged', async () => {
    const call = new FakeCall();
    const metrics = new Metrics({ defaultMetrics: false });
    const s = new CallSession({
      call, domain: 'demo.local', entry: { kind: 'accountNumber' }, settings: DEFAULT_IVR_SETTINGS,
      accessCodes: operations(), messages: messageOps(), caller: { number: '', name: null }, actor: 'x', logger: silentLogger, metrics,
    });
    s.start();
    for (let i = 0; i < KEY_BURST + 5; i++) s.digit('1', 'rfc4733');
    const count = async (name: string): Promise<number> => (await metrics.registry.getSingleMetric(name)!.get()).values.reduce((n, v) => n + v.value, 0);
    expect(await count('vmaccess_dtmf_total')).toBe(KEY_BURST);
    expect(await count('vmaccess_dtmf_dropped_total')).toBe(5);
    await vi.advanceTimersByTimeAsync(500); // half a second refills KEY_RATE_PER_S / 2 keys
    for (let i = 0; i < KEY_RATE_PER_S / 2 + 1; i++) s.digit('1', 'rfc4733');
    expect(await count('vmaccess_dtmf_total')).toBe(KEY_BURST + KEY_RATE_PER_S / 2);
    expect(await count('vmaccess_dtmf_dropped_total')).toBe(6);
    s.remoteHangup('bye');
  });

  it('deposit: greeting, then the recording is stored with the caller ID, then "recorded" and goodbye', async () => {
    const call = new FakeCall();
    const msgs = messageOps();
    const s = session(call, operations(), { kind: 'deposit', mailbox: '201' } as never, msgs);
    s.start();
    expect(call.lastPlay()).toContain('person-at-extension');
    call.endPrompt();
    expect(call.recordings).toHaveLength(1);
    expect(call.recordings[0]!.limits).toEqual({ maxMs: 180_000, silenceMs: 5_000 });
    s.digit('#', 'rfc4733');
    expect(call.recordings[0]!.stopped).toBe(1);
    call.recordings[0]!.end({ wav: Buffer.from('RIFF'), durationMs: 2500 });
    await flush();
    expect(msgs.deposits).toEqual([{ domain: 'demo.local', mailbox: '201', caller: '5551234', callerName: 'Pat', wav: Buffer.from('RIFF'), durationMs: 2500 }]);
    expect(call.lastPlay()).toEqual(['message-recorded', 'goodbye']);
  });

  it('a caller who hangs up while recording still leaves the message, and the call ends after it is stored', async () => {
    const call = new FakeCall();
    const msgs = messageOps();
    const s = session(call, operations(), { kind: 'deposit', mailbox: '201' } as never, msgs);
    let ended = false;
    void s.ended.then(() => { ended = true; });
    s.start();
    call.endPrompt();
    s.remoteHangup('bye');
    expect(call.recordings[0]!.stopped).toBe(1);
    await flush();
    expect(ended).toBe(false); // still storing
    call.recordings[0]!.end({ wav: Buffer.from('RIFF'), durationMs: 4000 });
    await flush();
    expect(msgs.deposits).toHaveLength(1);
    expect(ended).toBe(true);
  });

  it('listening: lists through the message operations, marks a played message heard, deletes with the call context', async () => {
    const call = new FakeCall();
    const stored: StoredMessage[] = [{ id: '7', caller: '5551234', callerName: null, receivedAt: new Date('2026-03-04T14:05:00Z'), durationMs: 3000, state: 'new', folder: 'inbox', audioKey: 'a'.repeat(32) + '.wav' }];
    const msgs = messageOps(stored);
    const s = new CallSession({
      call, domain: 'demo.local', entry: { kind: 'ownMailbox', mailbox: '201', firstTimeSetup: false }, settings: DEFAULT_IVR_SETTINGS,
      accessCodes: operations(), messages: msgs, caller: { number: '201', name: null }, timeZone: 'UTC', actor: '201@demo.local', logger: silentLogger,
    });
    s.start();
    for (const k of '4826#') s.digit(k as never, 'rfc4733');
    await flush();
    s.digit('1', 'rfc4733');
    await flush();
    const played = call.lastPlay()!;
    expect(played.slice(0, 4)).toEqual(['you-have', 'num-1', 'new-message', 'message-received']);
    expect(played).toContainEqual({ audio: 'a'.repeat(32) + '.wav' });
    expect(played).toEqual(expect.arrayContaining(['month-3', 'num-4', 'num-14', 'num-oh', 'num-5']));
    call.endPrompt();
    await flush();
    expect(msgs.calls).toEqual(['saved 201 7']);
    s.digit('7', 'rfc4733');
    await flush();
    expect(msgs.calls).toEqual(['saved 201 7', 'delete 201 7 201@demo.local']);
    expect(call.lastPlay()).toEqual(['message-deleted', 'no-more-messages', 'main-menu']);
    s.remoteHangup('bye');
  });

  it('localTime speaks the time in the given zone, 24-hour', () => {
    expect(localTime(new Date('2026-12-31T23:59:00Z'), 'UTC')).toEqual({ month: 12, day: 31, hour: 23, minute: 59 });
    expect(localTime(new Date('2026-12-31T23:59:00Z'), 'Europe/Berlin')).toEqual({ month: 1, day: 1, hour: 0, minute: 59 });
    expect(localTime(new Date('2026-06-01T00:00:00Z'), 'UTC')).toEqual({ month: 6, day: 1, hour: 0, minute: 0 });
  });
});
