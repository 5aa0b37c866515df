/** The pure machine's message flows: leaving a message (deposit) and listening (main menu 1). */
import { describe, expect, it } from 'vitest';
import { Harness } from './harness.js';
import { defaultGreeting, envelopePrompts, spokenNumber, summaryPrompts } from '../../../src/ivr/prompts.js';
import type { Entry, MessageSummary } from '../../../src/ivr/types.js';

const own: Entry = { kind: 'ownMailbox', mailbox: '201', firstTimeSetup: false };
const deposit: Entry = { kind: 'deposit', mailbox: '201' };
const at = { month: 3, day: 4, hour: 14, minute: 5 };
const key = (c: string): string => `${c.repeat(32)}.wav`;
const newer: MessageSummary = { id: '3', audioKey: key('c'), caller: '5551234', state: 'new', receivedAt: at };
const older: MessageSummary = { id: '2', audioKey: key('b'), caller: '202', state: 'new', receivedAt: { ...at, day: 3 } };
const saved: MessageSummary = { id: '1', audioKey: key('a'), caller: '', state: 'saved', receivedAt: { ...at, day: 1 } };

function listening(messages: MessageSummary[]): Harness {
  const h = Harness.start(own);
  h.press('4826#');
  h.answerLogin('ok');
  h.press('1');
  h.answerMessages('ok', messages);
  return h;
}

describe('prompt helpers', () => {
  it('numbers: one word to 20, tens and units to 59, digits beyond', () => {
    expect(spokenNumber(0)).toEqual(['num-0']);
    expect(spokenNumber(20)).toEqual(['num-20']);
    expect(spokenNumber(34)).toEqual(['num-30', 'num-4']);
    expect(spokenNumber(50)).toEqual(['num-50']);
    expect(spokenNumber(123)).toEqual(['num-1', 'num-2', 'num-3']);
    expect(() => spokenNumber(-1)).toThrow(RangeError);
  });

  it('the summary counts new and saved, singular and plural, and says "no messages" for none', () => {
    expect(summaryPrompts(0, 0)).toEqual(['no-messages']);
    expect(summaryPrompts(1, 0)).toEqual(['you-have', 'num-1', 'new-message']);
    expect(summaryPrompts(2, 1)).toEqual(['you-have', 'num-2', 'new-messages', 'and', 'num-1', 'saved-message']);
    expect(summaryPrompts(0, 3)).toEqual(['you-have', 'num-3', 'saved-messages']);
  });

  it('the envelope says when and from whom; an unknown caller is said so', () => {
    expect(envelopePrompts(at, '5551234')).toEqual([
      'message-received', 'month-3', 'num-4', 'at', 'num-14', 'num-oh', 'num-5',
      'from', 'num-5', 'num-5', 'num-5', 'num-1', 'num-2', 'num-3', 'num-4',
    ]);
    expect(envelopePrompts({ month: 12, day: 31, hour: 9, minute: 0 }, 'anonymous')).toEqual([
      'message-received', 'month-12', 'num-30', 'num-1', 'at', 'num-9', 'oclock', 'from', 'unknown-caller',
    ]);
    expect(envelopePrompts({ ...at, minute: 42 }, '')).toContain('num-40');
  });
});

describe('deposit', () => {
  it('greeting from the mailbox number, then recording with the limits; # ends it; saved → recorded, goodbye', () => {
    const h = Harness.start(deposit);
    expect(h.state.phase).toBe('greeting');
    expect(h.lastPlayed()).toEqual(defaultGreeting('201'));
    expect(h.lastPlayed()).toEqual(['person-at-extension', 'num-2', 'num-0', 'num-1', 'is-not-available', 'beep']);
    h.finishPrompt();
    expect(h.state.phase).toBe('recording');
    expect(h.lastOf('startRecording')).toMatchObject({ mailbox: '201', maxMs: 180_000, silenceMs: 5_000 });
    expect(h.press('5')).toEqual([]); // keys are part of the message
    expect(h.press('#')).toEqual([{ type: 'stopRecording' }]);
    h.answerRecording('saved');
    expect(h.state.phase).toBe('goodbye');
    expect(h.lastPlayed()).toEqual(['message-recorded', 'goodbye']);
    h.finishPrompt();
    expect(h.lastOf('hangup')).toBeDefined();
  });

  it('a recorded greeting is played instead of the default one, then the tone; # still skips it', () => {
    const h = Harness.start({ kind: 'deposit', mailbox: '201', greeting: key('d') });
    expect(h.state.phase).toBe('greeting');
    expect(h.lastPlayed()).toEqual([{ audio: key('d') }, 'beep']);
    h.finishPrompt();
    expect(h.state.phase).toBe('recording');
    const skipped = Harness.start({ kind: 'deposit', mailbox: '201', greeting: key('d') });
    skipped.press('#');
    expect(skipped.state.phase).toBe('recording');
  });

  it('# during the greeting skips to the recording at once', () => {
    const h = Harness.start(deposit);
    h.press('#');
    expect(h.state.phase).toBe('recording');
    expect(h.last.map((c) => c.type)).toEqual(['stopPlayback', 'startRecording']);
  });

  it('too short: goodbye without "recorded"; the store failing: try again later', () => {
    const short = Harness.start(deposit);
    short.finishPrompt();
    short.answerRecording('tooShort');
    expect(short.lastPlayed()).toEqual(['goodbye']);
    const down = Harness.start(deposit);
    down.finishPrompt();
    down.answerRecording('unavailable');
    expect(down.lastPlayed()).toEqual(['try-again-later', 'goodbye']);
  });

  it('no-input timers never run while recording (silence ends it in the engine), and a hang-up ends it', () => {
    const h = Harness.start(deposit);
    h.finishPrompt();
    expect(Object.keys(h.state.timers)).toEqual([]);
    h.send({ type: 'hangup' });
    expect(h.state.phase).toBe('ended');
  });
});

describe('listening (main menu 1)', () => {
  it('asks the store for the logged-in mailbox; an empty box says so and returns to the menu', () => {
    const h = Harness.start(own);
    h.press('4826#');
    h.answerLogin('ok');
    h.press('1');
    expect(h.state.phase).toBe('listingMessages');
    expect(h.lastOf('listMessages')).toMatchObject({ mailbox: '201' });
    h.answerMessages('ok', []);
    expect(h.lastPlayed()).toEqual(['no-messages', 'main-menu']);
  });

  it('summary, then new messages first, each newest first, with envelope, audio and menu', () => {
    const h = listening([newer, saved, older]);
    const played = h.lastPlayed()!;
    expect(played.slice(0, 7)).toEqual(['you-have', 'num-2', 'new-messages', 'and', 'num-1', 'saved-message', 'message-received']);
    expect(played).toContainEqual({ audio: key('c') });
    expect(played[played.length - 1]).toBe('message-menu');
    expect(h.state.messages!.map((m) => m.id)).toEqual(['3', '2', '1']);
  });

  it('a message played to the end is marked heard (saved) once', () => {
    const h = listening([newer]);
    h.finishPrompt();
    expect(h.lastOf('markHeard')).toEqual({ type: 'markHeard', mailbox: '201', messageId: '3' });
    h.fire('noInput');
    h.finishPrompt();
    expect(h.lastOf('markHeard')).toBeUndefined();
  });

  it('7 deletes it (store command), says deleted, plays the next; the last one back to the menu', () => {
    const h = listening([newer, older]);
    h.press('7');
    expect(h.state.phase).toBe('updatingMessage');
    expect(h.lastOf('deleteMessage')).toMatchObject({ mailbox: '201', messageId: '3' });
    h.answerUpdate('ok');
    expect(h.lastPlayed()!.slice(0, 2)).toEqual(['message-deleted', 'message-received']);
    expect(h.lastPlayed()).toContainEqual({ audio: key('b') });
    h.press('7');
    h.answerUpdate('ok');
    expect(h.state.phase).toBe('mainMenu');
    expect(h.lastPlayed()).toEqual(['message-deleted', 'no-more-messages', 'main-menu']);
  });

  it('9 saves a new message (store) and goes on; a saved one just goes on', () => {
    const h = listening([newer, saved]);
    h.press('9');
    expect(h.lastOf('saveMessage')).toMatchObject({ messageId: '3' });
    h.answerUpdate('ok');
    expect(h.lastPlayed()![0]).toBe('message-saved');
    expect(h.lastPlayed()).toContainEqual({ audio: key('a') });
    h.press('9');
    expect(h.lastOf('saveMessage')).toBeUndefined();
    expect(h.lastPlayed()).toEqual(['message-saved', 'no-more-messages', 'main-menu']);
  });

  it('4 replays, 6 next (heard), # skips (stays new), * back to the menu', () => {
    const h = listening([newer, older, saved]);
    h.press('4');
    expect(h.lastOf('markHeard')).toMatchObject({ messageId: '3' });
    expect(h.lastPlayed()).toContainEqual({ audio: key('c') });
    h.press('#');
    expect(h.lastOf('markHeard')).toBeUndefined();
    expect(h.lastPlayed()).toContainEqual({ audio: key('b') });
    expect(h.state.messages![1]!.state).toBe('new');
    h.press('6');
    expect(h.lastOf('markHeard')).toMatchObject({ messageId: '2' }); // 6 counts it as heard
    expect(h.lastPlayed()).toContainEqual({ audio: key('a') });
    h.press('*');
    expect(h.state.phase).toBe('mainMenu');
    expect(h.state.messages).toBeNull();
  });

  it('an invalid key or no input replays only the menu, not the message', () => {
    const h = listening([newer]);
    h.press('5');
    expect(h.lastPlayed()).toEqual(['invalid-option', 'message-menu']);
    h.finishPrompt();
    h.fire('noInput');
    expect(h.lastPlayed()).toEqual(['message-menu']);
  });

  it('keys during listing are kept (type-ahead): 1 then 7 deletes the first message as soon as it is listed', () => {
    const h = Harness.start(own);
    h.press('4826#');
    h.answerLogin('ok');
    h.press('17');
    h.answerMessages('ok', [newer]);
    expect(h.state.phase).toBe('updatingMessage');
    expect(h.lastOf('deleteMessage')).toMatchObject({ messageId: '3' });
  });

  it('the store failing while listing or updating: try again later, goodbye', () => {
    const a = Harness.start(own);
    a.press('4826#');
    a.answerLogin('ok');
    a.press('1');
    a.answerMessages('unavailable');
    expect(a.lastPlayed()).toEqual(['try-again-later', 'goodbye']);
    const b = listening([newer]);
    b.press('7');
    b.answerUpdate('unavailable');
    expect(b.lastPlayed()).toEqual(['try-again-later', 'goodbye']);
  });
});
