import { describe, expect, it } from 'vitest';
import { initialState, step } from '../../../src/ivr/machine.js';
import { DEFAULT_IVR_SETTINGS, type Entry } from '../../../src/ivr/types.js';
import { Harness } from './harness.js';

const own: Entry = { kind: 'ownMailbox', mailbox: '201', firstTimeSetup: false };
const firstTime: Entry = { kind: 'ownMailbox', mailbox: '203', firstTimeSetup: true };
const account: Entry = { kind: 'accountNumber' };
const aa: Entry = {
  kind: 'autoAttendant',
  options: [{ digit: '9', action: 'voicemailLogin' }, { digit: '0', action: 'transfer', target: '201' }],
};

function loggedIn(): Harness {
  const h = Harness.start(own);
  h.press('4826#');
  h.answerLogin('ok');
  return h;
}

describe('call start', () => {
  it('trusted caller with a mailbox is asked for the access code of that mailbox', () => {
    const h = Harness.start(own);
    expect(h.state.phase).toBe('enterAccessCode');
    expect(h.state.mailbox).toBe('201');
    expect(h.lastPlayed()).toEqual(['enter-access-code']);
    expect(h.state.authenticated).toBe(false);
  });

  it('untrusted or unknown caller is asked for the account number first', () => {
    const h = Harness.start(account);
    expect(h.state.phase).toBe('enterAccountNumber');
    expect(h.lastPlayed()).toEqual(['enter-account-number']);
  });

  it('first-time setup goes straight to choosing a code', () => {
    const h = Harness.start(firstTime);
    expect(h.state.phase).toBe('enterNewAccessCode');
    expect(h.state.changeMode).toBe('firstTime');
    expect(h.lastPlayed()).toEqual(['choose-first-access-code']);
  });

  it('auto attendant plays its menu', () => {
    const h = Harness.start(aa);
    expect(h.state.phase).toBe('autoAttendantMenu');
    expect(h.lastPlayed()).toEqual(['auto-attendant-menu']);
  });

  it('ignores a second callStarted and every event before the first', () => {
    const s0 = initialState();
    expect(step(s0, { type: 'digit', digit: '1' }).commands).toEqual([]);
    expect(step(s0, { type: 'promptFinished', playId: 1 }).commands).toEqual([]);
    const h = Harness.start(own);
    expect(h.send({ type: 'callStarted', entry: account })).toEqual([]);
    expect(h.state.phase).toBe('enterAccessCode');
  });
});

describe('login', () => {
  it('collects the code until # and asks the store to verify it', () => {
    const h = Harness.start(own);
    h.press('4826');
    expect(h.state.phase).toBe('enterAccessCode');
    h.press('#');
    expect(h.state.phase).toBe('verifying');
    expect(h.lastOf('verifyLogin')).toMatchObject({ mailbox: '201', accessCode: '4826' });
    expect(h.state.entryBuffer).toBe('');
  });

  it('a key during the prompt stops it and is kept (type-ahead)', () => {
    const h = Harness.start(own);
    const c = h.press('4');
    expect(c[0]).toEqual({ type: 'stopPlayback' });
    expect(h.state.playing).toBeNull();
    h.press('826#');
    expect(h.lastOf('verifyLogin')).toMatchObject({ accessCode: '4826' });
  });

  it('a successful verify opens the main menu', () => {
    const h = loggedIn();
    expect(h.state.phase).toBe('mainMenu');
    expect(h.state.authenticated).toBe(true);
    expect(h.lastPlayed()).toEqual(['main-menu']);
  });

  it('must_change forces the change flow right after login', () => {
    const h = Harness.start(own);
    h.press('4826#');
    h.answerLogin('ok', true);
    expect(h.state.phase).toBe('enterNewAccessCode');
    expect(h.state.changeMode).toBe('forced');
    expect(h.lastPlayed()).toEqual(['must-change-access-code', 'enter-new-access-code']);
  });

  it('a wrong code says "login incorrect" and asks again; the third wrong code says goodbye and hangs up', () => {
    const h = Harness.start(own);
    h.press('1111#');
    h.answerLogin('rejected');
    expect(h.lastPlayed()).toEqual(['login-incorrect', 'enter-access-code']);
    expect(h.state.phase).toBe('enterAccessCode');
    h.press('2222#');
    h.answerLogin('rejected');
    expect(h.state.phase).toBe('enterAccessCode');
    h.press('3333#');
    h.answerLogin('rejected');
    expect(h.state.phase).toBe('goodbye');
    expect(h.lastPlayed()).toEqual(['login-incorrect', 'goodbye']);
    const end = h.finishPrompt();
    expect(end).toContainEqual({ type: 'hangup' });
    expect(h.state.phase).toBe('ended');
  });

  it('after a wrong login by account number, asks for the account number again', () => {
    const h = Harness.start(account);
    h.press('202#');
    expect(h.state.phase).toBe('enterAccessCode');
    expect(h.state.mailbox).toBe('202');
    h.press('0000#');
    expect(h.lastOf('verifyLogin')).toMatchObject({ mailbox: '202', accessCode: '0000' });
    h.answerLogin('rejected');
    expect(h.state.phase).toBe('enterAccountNumber');
    expect(h.state.mailbox).toBeNull();
    expect(h.lastPlayed()).toEqual(['login-incorrect', 'enter-account-number']);
  });

  it('store unavailable: "try again later", goodbye, hang up', () => {
    const h = Harness.start(own);
    h.press('4826#');
    h.answerLogin('unavailable');
    expect(h.state.phase).toBe('goodbye');
    expect(h.lastPlayed()).toEqual(['try-again-later', 'goodbye']);
    expect(h.finishPrompt()).toContainEqual({ type: 'hangup' });
  });

  it('* while typing starts the entry over without using a try', () => {
    const h = Harness.start(own);
    h.press('48*');
    expect(h.state.phase).toBe('enterAccessCode');
    expect(h.state.entryBuffer).toBe('');
    expect(h.lastPlayed()).toEqual(['enter-access-code']);
    h.press('4826#');
    expect(h.lastOf('verifyLogin')).toMatchObject({ accessCode: '4826' });
    expect(h.state.loginAttempts).toBe(0);
  });

  it('keys A–D are ignored', () => {
    const h = Harness.start(own);
    expect(h.press('A')).toEqual([]);
    h.press('4B8C2D6#');
    expect(h.lastOf('verifyLogin')).toMatchObject({ accessCode: '4826' });
  });

  it('stale or foreign store answers are ignored', () => {
    const h = Harness.start(own);
    h.press('1111#');
    const stale = h.pending().requestId;
    h.answerLogin('rejected');
    h.press('4826#');
    expect(h.send({ type: 'loginResult', requestId: stale, result: 'ok' })).toEqual([]);
    expect(h.state.phase).toBe('verifying');
    expect(h.send({ type: 'checkResult', requestId: h.pending().requestId, result: 'ok' })).toEqual([]);
    expect(h.send({ type: 'changeResult', requestId: h.pending().requestId, result: 'ok' })).toEqual([]);
    expect(h.state.authenticated).toBe(false);
  });

  it('keys pressed while verifying are kept for the next prompt', () => {
    const h = Harness.start(own);
    h.press('4826#2');
    expect(h.state.typeAhead).toEqual(['2']);
    h.answerLogin('ok');
    // "2" from the queue chose the change option straight away.
    expect(h.state.phase).toBe('enterNewAccessCode');
    expect(h.state.typeAhead).toEqual([]);
  });

  it('the maximum entry length bounds the buffer', () => {
    const h = Harness.start(own);
    h.press('1'.repeat(50));
    expect(h.state.entryBuffer.length).toBe(DEFAULT_IVR_SETTINGS.maxEntryDigits);
  });
});

describe('timeouts', () => {
  it('no input after the prompt: replay once, then goodbye', () => {
    const h = Harness.start(own);
    expect(h.running('noInput')).toBe(false); // only after the prompt ends
    h.finishPrompt();
    expect(h.last).toContainEqual(expect.objectContaining({ type: 'startTimer', timer: 'noInput', ms: 5000 }));
    h.fire('noInput');
    expect(h.lastPlayed()).toEqual(['enter-access-code']);
    expect(h.state.phase).toBe('enterAccessCode');
    h.finishPrompt();
    h.fire('noInput');
    expect(h.state.phase).toBe('goodbye');
    expect(h.lastPlayed()).toEqual(['goodbye']);
    expect(h.finishPrompt()).toContainEqual({ type: 'hangup' });
  });

  it('a key after a replay resets the no-input count', () => {
    const h = Harness.start(own);
    h.finishPrompt();
    h.fire('noInput');
    h.press('4');
    expect(h.state.noInputCount).toBe(0);
  });

  it('inter-digit timeout submits what was typed', () => {
    const h = Harness.start(own);
    h.press('48');
    expect(h.last).toContainEqual(expect.objectContaining({ type: 'startTimer', timer: 'interDigit', ms: 5000 }));
    h.press('26');
    h.fire('interDigit');
    expect(h.state.phase).toBe('verifying');
    expect(h.lastOf('verifyLogin')).toMatchObject({ accessCode: '4826' });
  });

  it('# alone counts as no input, not as a wrong code', () => {
    const h = Harness.start(own);
    h.press('#');
    expect(h.state.phase).toBe('enterAccessCode');
    expect(h.state.loginAttempts).toBe(0);
    expect(h.lastPlayed()).toEqual(['enter-access-code']);
    h.press('#');
    expect(h.state.phase).toBe('goodbye');
  });

  it('timers that were cancelled or replaced are ignored', () => {
    const h = Harness.start(own);
    h.finishPrompt();
    const first = h.state.timers.noInput;
    h.press('4');
    expect(h.send({ type: 'timerFired', timer: 'noInput', timerId: first! })).toEqual([]);
    expect(h.state.phase).toBe('enterAccessCode');
  });

  it('the main menu times out too', () => {
    const h = loggedIn();
    h.finishPrompt();
    h.fire('noInput');
    expect(h.lastPlayed()).toEqual(['main-menu']);
    h.finishPrompt();
    h.fire('noInput');
    expect(h.state.phase).toBe('goodbye');
  });

  it('a goodbye that never ends is cut by the guard timer', () => {
    const h = loggedIn();
    h.press('*');
    expect(h.running('goodbyeGuard')).toBe(true);
    expect(h.fire('goodbyeGuard')).toContainEqual({ type: 'hangup' });
    expect(h.state.phase).toBe('ended');
  });
});

describe('main menu', () => {
  it('1: no messages, then the menu again', () => {
    const h = loggedIn();
    h.press('1');
    expect(h.lastOf('listMessages')).toMatchObject({ mailbox: '201' });
    h.answerMessages('ok', []);
    expect(h.state.phase).toBe('mainMenu');
    expect(h.lastPlayed()).toEqual(['no-messages', 'main-menu']);
  });

  it('*: goodbye and hang up', () => {
    const h = loggedIn();
    h.press('*');
    expect(h.lastPlayed()).toEqual(['goodbye']);
    expect(h.press('1')).toEqual([]); // keys during goodbye mean nothing
    expect(h.finishPrompt()).toEqual([{ type: 'cancelTimer', timer: 'goodbyeGuard' }, { type: 'hangup' }]);
  });

  it('an invalid option replays the menu; three in a row end the call', () => {
    const h = loggedIn();
    h.press('5');
    expect(h.lastPlayed()).toEqual(['invalid-option', 'main-menu']);
    h.press('#');
    expect(h.lastPlayed()).toEqual(['invalid-option', 'main-menu']);
    h.press('9');
    expect(h.state.phase).toBe('goodbye');
    expect(h.lastPlayed()).toEqual(['invalid-option', 'goodbye']);
  });

  it('a valid option resets the invalid count', () => {
    const h = loggedIn();
    h.press('5');
    h.press('1');
    h.answerMessages('ok', []);
    expect(h.state.invalidOptions).toBe(0);
  });
});

describe('change access code', () => {
  function changing(): Harness {
    const h = loggedIn();
    h.press('2');
    return h;
  }

  it('new code, check, same again, save, "changed", main menu', () => {
    const h = changing();
    expect(h.state.phase).toBe('enterNewAccessCode');
    expect(h.lastPlayed()).toEqual(['enter-new-access-code']);
    h.press('9595#');
    expect(h.state.phase).toBe('checkingNewAccessCode');
    expect(h.lastOf('checkNewAccessCode')).toMatchObject({ mailbox: '201', accessCode: '9595' });
    h.answerCheck('ok');
    expect(h.state.phase).toBe('reenterNewAccessCode');
    expect(h.lastPlayed()).toEqual(['reenter-new-access-code']);
    h.press('9595#');
    expect(h.state.phase).toBe('savingAccessCode');
    expect(h.lastOf('changeAccessCode')).toMatchObject({ mailbox: '201', accessCode: '9595', initial: false });
    h.answerChange('ok');
    expect(h.state.phase).toBe('mainMenu');
    expect(h.lastPlayed()).toEqual(['access-code-changed', 'main-menu']);
    expect(h.state.newAccessCode).toBeNull();
  });

  it('the whole change typed ahead during prompts works', () => {
    const h = Harness.start(own);
    h.press('4826#');
    h.press('29595#');
    h.answerLogin('ok');
    expect(h.state.phase).toBe('checkingNewAccessCode');
    h.press('9595#*');
    h.answerCheck('ok');
    expect(h.state.phase).toBe('savingAccessCode');
    h.answerChange('ok');
    // The queued "*" ends the call from the main menu.
    expect(h.state.phase).toBe('goodbye');
  });

  it('mismatch: says so and asks for the new code again', () => {
    const h = changing();
    h.press('9595#');
    h.answerCheck('ok');
    h.press('9596#');
    expect(h.state.phase).toBe('enterNewAccessCode');
    expect(h.lastPlayed()).toEqual(['access-codes-did-not-match', 'enter-new-access-code']);
    expect(h.log.some((c) => c.type === 'changeAccessCode')).toBe(false);
  });

  it('a rule failure gives the spoken reason and asks again', () => {
    const h = changing();
    h.press('12#');
    h.answerCheck('rejected', 'tooShort');
    expect(h.lastPlayed()).toEqual([
      'access-code-length-is', 'num-4', 'access-code-length-to', 'num-10', 'access-code-length-digits', 'enter-new-access-code',
    ]);
    h.press('4826#');
    h.answerCheck('rejected', 'sameAsCurrent');
    expect(h.lastPlayed()).toEqual(['access-code-same-as-current', 'enter-new-access-code']);
  });

  it('three failed tries give up and return to the main menu', () => {
    const h = changing();
    for (let i = 0; i < 2; i++) {
      h.press('1#');
      h.answerCheck('rejected', 'tooShort');
      expect(h.state.phase).toBe('enterNewAccessCode');
    }
    h.press('1#');
    h.answerCheck('rejected', 'tooShort');
    expect(h.state.phase).toBe('mainMenu');
    expect(h.lastPlayed()?.slice(-2)).toEqual(['access-code-not-changed', 'main-menu']);
  });

  it('a rule failure found while saving (a concurrent change) is spoken too', () => {
    const h = changing();
    h.press('9595#');
    h.answerCheck('ok');
    h.press('9595#');
    h.answerChange('rejected', 'recentlyUsed');
    expect(h.state.phase).toBe('enterNewAccessCode');
    expect(h.lastPlayed()).toEqual(['access-code-recently-used', 'enter-new-access-code']);
  });

  it('* cancels a change from the menu', () => {
    const h = changing();
    h.press('95*');
    expect(h.state.phase).toBe('mainMenu');
    expect(h.lastPlayed()).toEqual(['access-code-not-changed', 'main-menu']);
    h.press('2');
    h.press('9595#');
    h.answerCheck('ok');
    h.press('*');
    expect(h.state.phase).toBe('mainMenu');
  });

  it('store unavailable while checking or saving: try again later, goodbye', () => {
    const a = changing();
    a.press('9595#');
    a.answerCheck('unavailable');
    expect(a.lastPlayed()).toEqual(['try-again-later', 'goodbye']);
    const b = changing();
    b.press('9595#');
    b.answerCheck('ok');
    b.press('9595#');
    b.answerChange('unavailable');
    expect(b.lastPlayed()).toEqual(['try-again-later', 'goodbye']);
  });

  it('first-time setup saves with initial=true, says "set", and opens the menu', () => {
    const h = Harness.start(firstTime);
    h.press('2580#');
    h.answerCheck('ok');
    h.press('2580#');
    expect(h.lastOf('changeAccessCode')).toMatchObject({ mailbox: '203', initial: true });
    h.answerChange('ok');
    expect(h.state.phase).toBe('mainMenu');
    expect(h.state.authenticated).toBe(true);
    expect(h.lastPlayed()).toEqual(['access-code-set', 'main-menu']);
  });

  it('first-time and forced changes cannot be skipped with *', () => {
    const h = Harness.start(firstTime);
    h.press('25*');
    expect(h.state.phase).toBe('enterNewAccessCode');
    expect(h.state.changeMode).toBe('firstTime');
    expect(h.lastPlayed()).toEqual(['enter-new-access-code']);
  });

  it('first-time setup that fails three times ends the call', () => {
    const h = Harness.start(firstTime);
    for (let i = 0; i < 3; i++) {
      h.press('1111#');
      h.answerCheck('rejected', 'allSameDigit');
    }
    expect(h.state.phase).toBe('goodbye');
    expect(h.state.authenticated).toBe(false);
  });
});

describe('auto attendant', () => {
  it('9 → account number → access code → main menu', () => {
    const h = Harness.start(aa);
    h.press('9');
    expect(h.state.phase).toBe('enterAccountNumber');
    h.press('202#');
    h.press('7391#');
    expect(h.lastOf('verifyLogin')).toMatchObject({ mailbox: '202', accessCode: '7391' });
    h.answerLogin('ok');
    expect(h.state.phase).toBe('mainMenu');
  });

  it('0 transfers; success hangs up, failure says so and returns to the menu', () => {
    const h = Harness.start(aa);
    h.press('0');
    expect(h.state.phase).toBe('transferring');
    expect(h.lastOf('transfer')).toMatchObject({ target: '201' });
    expect(h.lastPlayed()).toEqual(['transferring']);
    h.answerTransfer('failed');
    expect(h.state.phase).toBe('autoAttendantMenu');
    expect(h.lastPlayed()).toEqual(['transfer-failed', 'auto-attendant-menu']);
    h.press('0');
    expect(h.answerTransfer('ok')).toContainEqual({ type: 'hangup' });
    expect(h.state.phase).toBe('ended');
  });

  it('an invalid option replays the menu', () => {
    const h = Harness.start(aa);
    h.press('5');
    expect(h.lastPlayed()).toEqual(['invalid-option', 'auto-attendant-menu']);
  });
});

describe('hangup', () => {
  it('ends the call from any phase and cancels timers and playback', () => {
    const h = Harness.start(own);
    h.press('48');
    const c = h.send({ type: 'hangup' });
    expect(c).toContainEqual({ type: 'cancelTimer', timer: 'interDigit' });
    expect(h.state.phase).toBe('ended');
    expect(h.state.entryBuffer).toBe('');
    expect(h.press('26#')).toEqual([]);
    expect(h.send({ type: 'hangup' })).toEqual([]);
  });

  it('during verification, the late answer is ignored', () => {
    const h = Harness.start(own);
    h.press('4826#');
    const id = h.pending().requestId;
    h.send({ type: 'hangup' });
    expect(h.send({ type: 'loginResult', requestId: id, result: 'ok' })).toEqual([]);
    expect(h.state.authenticated).toBe(false);
  });
});
