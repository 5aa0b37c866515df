/**
 * The session runner between the pure machine and I/O, with a fake call (FakeCall records what
 * an engine would do) and fake access-code operations; timers run on vitest's fake clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import type { PromptId } from '../../../src/ivr/prompts.js';
import { DEFAULT_IVR_SETTINGS } from '../../../src/ivr/types.js';
import type { CallControl } from '../../../src/telephony/call-control.js';
import { CallSession, KEY_BURST, KEY_RATE_PER_S, type AccessCodeOperations } from '../../../src/telephony/session.js';
import { Metrics } from '../../../src/metrics/metrics.js';

class FakeCall implements CallControl {
  readonly callId = 'fake-call-1';
  plays: Array<readonly PromptId[]> = [];
  stops = 0;
  hangups = 0;
  transfers: string[] = [];
  transferAnswer = true;
  private finish: (() => void) | null = null;

  play(prompts: readonly PromptId[], onFinished: () => void): void {
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
  lastPlay(): readonly PromptId[] | undefined {
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

function session(call: FakeCall, ops: AccessCodeOperations, entry = { kind: 'ownMailbox' as const, mailbox: '201', firstTimeSetup: false }): CallSession {
  return new CallSession({
    call, domain: 'demo.local', entry, settings: DEFAULT_IVR_SETTINGS, accessCodes: ops, actor: '201@demo.local', logger: silentLogger,
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
      accessCodes: operations(), actor: 'x', logger: silentLogger, metrics,
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
});
