/**
 * Property and exhaustive-exploration tests of the pure IVR machine.
 *
 * Safety: no event sequence reaches the main menu (or sets `authenticated`) unless the store
 * answered "ok" to the login request the machine itself issued — or, for a trusted caller's
 * mailbox without a code, the first-time setup was saved.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { initialState, step } from '../../../src/ivr/machine.js';
import {
  DEFAULT_IVR_SETTINGS, DIGITS, type Entry, type IvrEvent, type IvrState, type MessageSummary, type Phase, type TimerName,
} from '../../../src/ivr/types.js';

const at = { month: 3, day: 4, hour: 14, minute: 5 };
const MESSAGES: MessageSummary[] = [
  { id: '2', audioKey: `${'b'.repeat(32)}.wav`, caller: '5551234', state: 'new', receivedAt: at },
  { id: '1', audioKey: `${'a'.repeat(32)}.wav`, caller: '', state: 'saved', receivedAt: at },
];

const ENTRIES: Entry[] = [
  { kind: 'ownMailbox', mailbox: '201', firstTimeSetup: false },
  { kind: 'ownMailbox', mailbox: '203', firstTimeSetup: true },
  { kind: 'accountNumber' },
  { kind: 'autoAttendant', options: [{ digit: '9', action: 'voicemailLogin' }, { digit: '0', action: 'transfer', target: '201' }] },
  { kind: 'deposit', mailbox: '201' },
];
const TIMERS: TimerName[] = ['noInput', 'interDigit', 'goodbyeGuard'];
const OUTCOMES = ['ok', 'rejected', 'unavailable'] as const;

/** An abstract event; `fresh` picks the id the machine is waiting for, else a stale/foreign id. */
type Abstract =
  | { k: 'digit'; digit: (typeof DIGITS)[number] }
  | { k: 'prompt'; fresh: boolean }
  | { k: 'timer'; timer: TimerName; fresh: boolean }
  | { k: 'login' | 'check' | 'change'; outcome: (typeof OUTCOMES)[number]; fresh: boolean; mustChange: boolean }
  | { k: 'transfer'; ok: boolean; fresh: boolean }
  | { k: 'listed'; ok: boolean; count: 0 | 1 | 2; fresh: boolean }
  | { k: 'updated'; ok: boolean; fresh: boolean }
  | { k: 'recorded'; result: 'saved' | 'tooShort' | 'unavailable'; fresh: boolean }
  | { k: 'hangup' };

function concretise(a: Abstract, s: IvrState): IvrEvent {
  const stale = s.nextId + 1000;
  switch (a.k) {
    case 'digit': return { type: 'digit', digit: a.digit };
    case 'prompt': return { type: 'promptFinished', playId: a.fresh && s.playing !== null ? s.playing : stale };
    case 'timer': {
      const id = s.timers[a.timer];
      return { type: 'timerFired', timer: a.timer, timerId: a.fresh && id !== undefined ? id : stale };
    }
    case 'login':
    case 'check':
    case 'change': {
      const requestId = a.fresh && s.awaiting !== null ? s.awaiting : stale;
      if (a.k === 'login') return { type: 'loginResult', requestId, result: a.outcome, mustChange: a.mustChange };
      const reason = a.outcome === 'rejected' ? 'tooShort' as const : undefined;
      return { type: a.k === 'check' ? 'checkResult' : 'changeResult', requestId, result: a.outcome, reason };
    }
    case 'transfer': {
      const requestId = a.fresh && s.awaiting !== null ? s.awaiting : stale;
      return { type: 'transferResult', requestId, result: a.ok ? 'ok' : 'failed' };
    }
    case 'listed':
    case 'updated':
    case 'recorded': {
      const requestId = a.fresh && s.awaiting !== null ? s.awaiting : stale;
      if (a.k === 'listed') {
        return a.ok ? { type: 'messagesListed', requestId, result: 'ok', messages: MESSAGES.slice(0, a.count) } : { type: 'messagesListed', requestId, result: 'unavailable' };
      }
      if (a.k === 'updated') return { type: 'messageUpdated', requestId, result: a.ok ? 'ok' : 'unavailable' };
      return { type: 'recordingStopped', requestId, result: a.result };
    }
    case 'hangup': return { type: 'hangup' };
  }
}

const abstractEvent: fc.Arbitrary<Abstract> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...DIGITS).map((digit) => ({ k: 'digit' as const, digit })) },
  { weight: 3, arbitrary: fc.boolean().map((fresh) => ({ k: 'prompt' as const, fresh: fresh || Math.random() < 0.8 })) },
  { weight: 2, arbitrary: fc.record({ timer: fc.constantFrom(...TIMERS), fresh: fc.boolean() }).map((r) => ({ k: 'timer' as const, ...r })) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constantFrom('login' as const, 'check' as const, 'change' as const),
      outcome: fc.constantFrom(...OUTCOMES), fresh: fc.boolean(), mustChange: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ ok: fc.boolean(), fresh: fc.boolean() }).map((r) => ({ k: 'transfer' as const, ...r })) },
  {
    weight: 2,
    arbitrary: fc.record({ ok: fc.boolean(), count: fc.constantFrom(0 as const, 1 as const, 2 as const), fresh: fc.boolean() })
      .map((r) => ({ k: 'listed' as const, ...r })),
  },
  { weight: 1, arbitrary: fc.record({ ok: fc.boolean(), fresh: fc.boolean() }).map((r) => ({ k: 'updated' as const, ...r })) },
  {
    weight: 1,
    arbitrary: fc.record({ result: fc.constantFrom('saved' as const, 'tooShort' as const, 'unavailable' as const), fresh: fc.boolean() })
      .map((r) => ({ k: 'recorded' as const, ...r })),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'hangup' as const }) },
);

/** What an honest observer outside the machine knows about how the caller got in. */
interface Ghost { verifiedOk: boolean; firstTimeSaved: boolean; hungUp: boolean }

function observe(ghost: Ghost, before: IvrState, event: IvrEvent): void {
  if (event.type === 'loginResult' && event.result === 'ok' && before.phase === 'verifying' && event.requestId === before.awaiting) {
    ghost.verifiedOk = true;
  }
  if (event.type === 'changeResult' && event.result === 'ok' && before.phase === 'savingAccessCode'
    && event.requestId === before.awaiting && before.changeMode === 'firstTime') {
    ghost.firstTimeSaved = true;
  }
}

const AUTHENTICATED_PHASES: ReadonlySet<Phase> = new Set(['mainMenu', 'listingMessages', 'messageMenu', 'updatingMessage']);
/** Commands that read or change a mailbox's messages: only after a login. */
const MESSAGE_COMMANDS: ReadonlySet<string> = new Set(['listMessages', 'deleteMessage', 'saveMessage', 'markHeard']);

describe('IVR safety properties', () => {
  it('no random digit/timer/answer stream reaches the main menu without a successful verify', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ENTRIES), fc.array(abstractEvent, { maxLength: 120 }), (entry, events) => {
        let s = step(initialState(), { type: 'callStarted', entry }).state;
        const ghost: Ghost = { verifiedOk: false, firstTimeSaved: false, hungUp: false };
        for (const a of events) {
          const event = concretise(a, s);
          observe(ghost, s, event);
          const t = step(s, event);
          // No command may follow a hangup, and an ended call stays ended.
          if (ghost.hungUp) expect(t.commands).toEqual([]);
          if (t.commands.some((c) => c.type === 'hangup')) ghost.hungUp = true;
          s = t.state;
          const allowedIn = ghost.verifiedOk || (entry.kind === 'ownMailbox' && entry.firstTimeSetup && ghost.firstTimeSaved);
          // Messages are listened to, saved and deleted only after a login; a deposit never logs in.
          if (t.commands.some((c) => MESSAGE_COMMANDS.has(c.type))) expect(allowedIn).toBe(true);
          if (entry.kind === 'deposit') expect(s.authenticated).toBe(false);
          // Only a deposit call records, and only for its own mailbox.
          for (const c of t.commands) if (c.type === 'startRecording') expect(entry).toEqual({ kind: 'deposit', mailbox: c.mailbox });
          if (AUTHENTICATED_PHASES.has(s.phase) || s.authenticated) expect(allowedIn).toBe(true);
          // An untrusted/unknown caller never gets first-time setup: that needs a trusted entry.
          if (s.changeMode === 'firstTime') expect(entry.kind === 'ownMailbox' && entry.firstTimeSetup).toBe(true);
          expect(s.entryBuffer.length).toBeLessThanOrEqual(DEFAULT_IVR_SETTINGS.maxEntryDigits);
          expect(s.typeAhead.length).toBeLessThanOrEqual(32);
        }
      }),
      { numRuns: 3000, seed: 4826 },
    );
  });

  it('every issued id is unique and every play/timer the state holds was issued', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ENTRIES), fc.array(abstractEvent, { maxLength: 80 }), (entry, events) => {
        let t = step(initialState(), { type: 'callStarted', entry });
        const ids = new Set<number>();
        const check = (): void => {
          for (const c of t.commands) {
            const id = c.type === 'play' ? c.playId : c.type === 'startTimer' ? c.timerId : 'requestId' in c ? c.requestId : null;
            if (id === null) continue;
            expect(ids.has(id)).toBe(false);
            ids.add(id);
            if (c.type === 'startTimer') expect(c.ms).toBeGreaterThan(0);
          }
          if (t.state.playing !== null) expect(ids.has(t.state.playing)).toBe(true);
          for (const id of Object.values(t.state.timers)) expect(ids.has(id!)).toBe(true);
        };
        check();
        for (const a of events) {
          t = step(t.state, concretise(a, t.state));
          check();
        }
      }),
      { numRuns: 1000, seed: 7391 },
    );
  });

  it('verify commands carry exactly the digits typed since the entry began', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), { minLength: 1, maxLength: 10 }), (code) => {
        let s = step(initialState(), { type: 'callStarted', entry: ENTRIES[0]! }).state;
        const commands = [];
        for (const digit of [...code, '#' as const]) {
          const t = step(s, { type: 'digit', digit });
          s = t.state;
          commands.push(...t.commands);
        }
        const verify = commands.find((c) => c.type === 'verifyLogin');
        expect(verify).toMatchObject({ mailbox: '201', accessCode: code.join('') });
      }),
      { numRuns: 300, seed: 5150 },
    );
  });
});

// -------------------------------------------------------------------------------------------
// Exhaustive exploration: every reachable phase, every event kind, the resulting phase.

function labelOf(e: IvrEvent): string {
  switch (e.type) {
    case 'digit': return /[0-9]/.test(e.digit) ? (['1', '2', '4', '6', '7', '9', '0'].includes(e.digit) ? `key ${e.digit}` : 'key other-digit') : `key ${e.digit}`;
    case 'promptFinished': return 'promptFinished';
    case 'timerFired': return `timer ${e.timer}`;
    case 'loginResult': return `login ${e.result}${e.mustChange === true ? ' mustChange' : ''}`;
    case 'checkResult':
    case 'changeResult': return `${e.type === 'checkResult' ? 'check' : 'change'} ${e.result}`;
    case 'transferResult': return `transfer ${e.result}`;
    case 'messagesListed': return `listed ${e.result}${e.result === 'ok' ? ` ${e.messages?.length ?? 0}` : ''}`;
    case 'messageUpdated': return `updated ${e.result}`;
    case 'recordingStopped': return `recorded ${e.result}`;
    default: return e.type;
  }
}

function alphabet(s: IvrState): IvrEvent[] {
  const events: IvrEvent[] = [];
  for (const digit of ['1', '2', '4', '5', '6', '7', '9', '0', '*', '#', 'A'] as const) events.push({ type: 'digit', digit });
  if (s.playing !== null) events.push({ type: 'promptFinished', playId: s.playing });
  for (const timer of TIMERS) {
    const id = s.timers[timer];
    if (id !== undefined) events.push({ type: 'timerFired', timer, timerId: id });
  }
  if (s.awaiting !== null) {
    for (const result of OUTCOMES) {
      const reason = result === 'rejected' ? 'sequential' as const : undefined;
      events.push({ type: 'loginResult', requestId: s.awaiting, result });
      events.push({ type: 'checkResult', requestId: s.awaiting, result, reason });
      events.push({ type: 'changeResult', requestId: s.awaiting, result, reason });
    }
    events.push({ type: 'loginResult', requestId: s.awaiting, result: 'ok', mustChange: true });
    events.push({ type: 'transferResult', requestId: s.awaiting, result: 'ok' });
    events.push({ type: 'transferResult', requestId: s.awaiting, result: 'failed' });
    for (const count of [0, 1, 2]) events.push({ type: 'messagesListed', requestId: s.awaiting, result: 'ok', messages: MESSAGES.slice(0, count) });
    events.push({ type: 'messagesListed', requestId: s.awaiting, result: 'unavailable' });
    for (const result of ['ok', 'unavailable'] as const) events.push({ type: 'messageUpdated', requestId: s.awaiting, result });
    for (const result of ['saved', 'tooShort', 'unavailable'] as const) events.push({ type: 'recordingStopped', requestId: s.awaiting, result });
  }
  events.push({ type: 'hangup' });
  return events;
}

function keyOf(s: IvrState): string {
  return JSON.stringify([
    s.phase, s.entry?.kind, s.entry?.kind === 'ownMailbox' && s.entry.firstTimeSetup, s.changeMode, s.authenticated,
    s.loginAttempts, s.changeAttempts, s.invalidOptions, s.noInputCount, Math.min(s.entryBuffer.length, 2),
    s.playing !== null, s.awaiting !== null, Object.keys(s.timers).sort(), s.typeAhead.length, s.mailbox !== null,
    s.messages?.map((m) => m.state), s.messageIndex, s.messageAction,
  ]);
}

function explore(): { phases: Set<Phase>; table: Map<Phase, Set<string>> } {
  const phases = new Set<Phase>();
  const table = new Map<Phase, Set<string>>();
  const seen = new Set<string>();
  const queue: IvrState[] = [];
  for (const entry of ENTRIES) queue.push(step(initialState(), { type: 'callStarted', entry }).state);
  while (queue.length > 0) {
    const s = queue.shift()!;
    const key = keyOf(s);
    if (seen.has(key)) continue;
    seen.add(key);
    phases.add(s.phase);
    for (const e of alphabet(s)) {
      const next = step(s, e).state;
      const row = table.get(s.phase) ?? new Set<string>();
      row.add(`${labelOf(e)} -> ${next.phase}`);
      table.set(s.phase, row);
      // Typed-ahead digits only matter a little; keep the queue bounded.
      if (next.typeAhead.length <= 1) queue.push(next);
    }
  }
  return { phases, table };
}

describe('IVR transition table (exhaustive exploration)', () => {
  const { phases, table } = explore();

  it('reaches every phase', () => {
    const all: Phase[] = [
      'autoAttendantMenu', 'enterAccountNumber', 'enterAccessCode', 'verifying', 'mainMenu', 'enterNewAccessCode',
      'checkingNewAccessCode', 'reenterNewAccessCode', 'savingAccessCode', 'transferring', 'goodbye', 'ended',
      'greeting', 'recording', 'listingMessages', 'messageMenu', 'updatingMessage',
    ];
    expect([...phases].sort()).toEqual([...all].sort());
  });

  it('matches the reviewed transition table', () => {
    const rows = Object.fromEntries([...table.entries()].sort(([a], [b]) => a.localeCompare(b))
      .map(([phase, set]) => [phase, [...set].sort()]));
    expect(rows).toMatchSnapshot();
  });
});
