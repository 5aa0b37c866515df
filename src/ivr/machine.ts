/**
 * The voicemail-access IVR as a pure state machine: `step(state, event) -> { state, commands }`.
 *
 * No clock, no sockets, no await: timers, playback and store look-ups are commands carried out by
 * the session runner, whose answers come back as events tagged with the id of the command they
 * answer (stale answers are ignored). That makes every flow a table to test exhaustively and lets a
 * property test check the safety rule: no event sequence reaches the main menu without a
 * successful verify result from the store for the login request the machine itself issued.
 *
 * Collecting input works the same in every phase that waits for the caller:
 * - the phase's prompts play; a key pressed during them stops them and is kept (type-ahead);
 * - when the prompts end with nothing entered, the no-input timer runs; it fires once → the
 *   prompts are replayed, twice → goodbye (CONTRACT: "replay once, then goodbye");
 * - an entry (account number, access code) ends with `#`, or when the inter-digit timer fires;
 * - keys pressed while the machine waits for the store are queued and fed to the next phase.
 */
import { defaultGreeting, envelopePrompts, rejectionPrompts, summaryPrompts, type PromptId, type RejectionReason } from './prompts.js';
import {
  DEFAULT_IVR_SETTINGS, type ChangeMode, type Digit, type Entry, type IvrCommand, type IvrEvent,
  type IvrSettings, type IvrState, type MessageSummary, type Phase, type PlayItem, type TimerName, type Transition,
} from './types.js';

export function initialState(settings: IvrSettings = DEFAULT_IVR_SETTINGS): IvrState {
  return {
    settings,
    phase: 'idle',
    entry: null,
    nextId: 1,
    playing: null,
    timers: {},
    awaiting: null,
    mailbox: null,
    authenticated: false,
    loginAttempts: 0,
    changeAttempts: 0,
    invalidOptions: 0,
    noInputCount: 0,
    changeMode: 'change',
    entryBuffer: '',
    newAccessCode: null,
    typeAhead: [],
    phasePrompts: [],
    transferTarget: null,
    messages: null,
    messageIndex: 0,
    messageAction: null,
  };
}

/** Phases that wait for a single menu key. */
const MENU_PHASES: ReadonlySet<Phase> = new Set(['autoAttendantMenu', 'mainMenu', 'messageMenu']);
/** Phases that collect a multi-digit entry ended by `#`. */
const ENTRY_PHASES: ReadonlySet<Phase> = new Set([
  'enterAccountNumber', 'enterAccessCode', 'enterNewAccessCode', 'reenterNewAccessCode',
]);
/** Phases that wait for an answer from the store or the network; keys pressed now are queued. */
const BUSY_PHASES: ReadonlySet<Phase> = new Set([
  'verifying', 'checkingNewAccessCode', 'savingAccessCode', 'transferring', 'listingMessages', 'updatingMessage',
]);
const MAX_TYPE_AHEAD = 32;

export function isCollecting(phase: Phase): boolean {
  return MENU_PHASES.has(phase) || ENTRY_PHASES.has(phase);
}

/** A draft of the next state plus the commands emitted so far; used only inside `step`. */
class Draft {
  state: IvrState;
  readonly commands: IvrCommand[] = [];

  constructor(state: IvrState) {
    this.state = state;
  }

  set(patch: Partial<IvrState>): void {
    this.state = { ...this.state, ...patch };
  }

  private id(): number {
    const id = this.state.nextId;
    this.set({ nextId: id + 1 });
    return id;
  }

  play(prompts: readonly PlayItem[]): void {
    if (this.state.playing !== null) this.commands.push({ type: 'stopPlayback' });
    const playId = this.id();
    this.commands.push({ type: 'play', playId, prompts });
    this.set({ playing: playId });
  }

  stopPlayback(): void {
    if (this.state.playing === null) return;
    this.commands.push({ type: 'stopPlayback' });
    this.set({ playing: null });
  }

  startTimer(timer: TimerName, ms: number): void {
    const timerId = this.id();
    this.commands.push({ type: 'startTimer', timer, timerId, ms });
    this.set({ timers: { ...this.state.timers, [timer]: timerId } });
  }

  cancelTimer(timer: TimerName): void {
    if (this.state.timers[timer] === undefined) return;
    this.commands.push({ type: 'cancelTimer', timer });
    const timers = { ...this.state.timers };
    delete timers[timer];
    this.set({ timers });
  }

  cancelAllTimers(): void {
    for (const timer of Object.keys(this.state.timers) as TimerName[]) this.cancelTimer(timer);
  }

  request(make: (requestId: number) => IvrCommand): void {
    const requestId = this.id();
    this.commands.push(make(requestId));
    this.set({ awaiting: requestId });
  }

  emit(command: IvrCommand): void {
    this.commands.push(command);
  }

  done(): Transition {
    return { state: this.state, commands: this.commands };
  }
}

export function step(state: IvrState, event: IvrEvent): Transition {
  const d = new Draft(state);
  if (state.phase === 'ended') return d.done();

  switch (event.type) {
    case 'callStarted':
      if (state.phase === 'idle') start(d, event.entry);
      break;
    case 'hangup':
      d.cancelAllTimers();
      d.stopPlayback();
      d.set({ phase: 'ended', awaiting: null, entryBuffer: '', newAccessCode: null, typeAhead: [] });
      break;
    case 'digit':
      onDigit(d, event.digit);
      break;
    case 'promptFinished':
      onPromptFinished(d, event.playId);
      break;
    case 'timerFired':
      onTimer(d, event.timer, event.timerId);
      break;
    case 'loginResult':
      if (state.phase === 'verifying' && event.requestId === state.awaiting) {
        onLoginResult(d, event.result, event.mustChange === true);
      }
      break;
    case 'checkResult':
      if (state.phase === 'checkingNewAccessCode' && event.requestId === state.awaiting) {
        onCheckResult(d, event.result, event.reason);
      }
      break;
    case 'changeResult':
      if (state.phase === 'savingAccessCode' && event.requestId === state.awaiting) {
        onChangeResult(d, event.result, event.reason);
      }
      break;
    case 'transferResult':
      if (state.phase === 'transferring' && event.requestId === state.awaiting) {
        onTransferResult(d, event.result);
      }
      break;
    case 'messagesListed':
      if (state.phase === 'listingMessages' && event.requestId === state.awaiting) {
        onMessagesListed(d, event.result, event.messages ?? []);
      }
      break;
    case 'messageUpdated':
      if (state.phase === 'updatingMessage' && event.requestId === state.awaiting) {
        onMessageUpdated(d, event.result);
      }
      break;
    case 'recordingStopped':
      if (state.phase === 'recording' && event.requestId === state.awaiting) {
        onRecordingStopped(d, event.result);
      }
      break;
  }
  return d.done();
}

/** Runs a whole sequence of events; handy for tests and replays. */
export function run(state: IvrState, events: readonly IvrEvent[]): Transition {
  let current = state;
  const commands: IvrCommand[] = [];
  for (const event of events) {
    const t = step(current, event);
    current = t.state;
    commands.push(...t.commands);
  }
  return { state: current, commands };
}

// ---------------------------------------------------------------------------------------------
// Entering phases

function start(d: Draft, entry: Entry): void {
  d.set({ entry });
  switch (entry.kind) {
    case 'ownMailbox':
      d.set({ mailbox: entry.mailbox });
      if (entry.firstTimeSetup) enterNewAccessCode(d, 'firstTime', ['choose-first-access-code']);
      else collect(d, 'enterAccessCode', ['enter-access-code']);
      break;
    case 'accountNumber':
      collect(d, 'enterAccountNumber', ['enter-account-number']);
      break;
    case 'autoAttendant':
      collect(d, 'autoAttendantMenu', ['auto-attendant-menu']);
      break;
    case 'deposit':
      // The greeting, then the tone; recording starts when it ends (or on # during it).
      d.set({ mailbox: entry.mailbox, phase: 'greeting' });
      // A recorded greeting replaces the spoken default; the tone follows either.
      d.play(entry.greeting !== undefined ? [{ audio: entry.greeting }, 'beep'] : defaultGreeting(entry.mailbox));
      break;
  }
}

/**
 * Enters a phase that waits for the caller: plays its prompts (optionally after a lead-in such
 * as "login incorrect"), then feeds any queued type-ahead keys into it.
 */
function collect(
  d: Draft, phase: Phase, prompts: readonly PlayItem[], leadIn: readonly PlayItem[] = [], noInputCount = 0,
): void {
  d.cancelAllTimers();
  d.set({ phase, phasePrompts: prompts, entryBuffer: '', noInputCount, awaiting: null });
  d.play([...leadIn, ...prompts]);
  const queued = d.state.typeAhead;
  d.set({ typeAhead: [] });
  for (const digit of queued) {
    if (!isCollecting(d.state.phase)) {
      // A queued key moved the caller on to a busy phase; keep the rest queued for the next one.
      d.set({ typeAhead: [...d.state.typeAhead, digit] });
      continue;
    }
    onDigit(d, digit);
  }
}

function enterNewAccessCode(d: Draft, mode: ChangeMode, prompts: readonly PromptId[], leadIn: readonly PlayItem[] = []): void {
  d.set({ changeMode: mode, newAccessCode: null });
  collect(d, 'enterNewAccessCode', prompts, leadIn);
}

function mainMenu(d: Draft, leadIn: readonly PlayItem[] = []): void {
  if (!d.state.authenticated) {
    // Defence in depth: no path should get here unauthenticated (see the safety property test).
    goodbye(d, ['goodbye']);
    return;
  }
  d.set({ invalidOptions: 0, changeAttempts: 0, newAccessCode: null, messages: null, messageIndex: 0, messageAction: null });
  collect(d, 'mainMenu', ['main-menu'], leadIn);
}

function goodbye(d: Draft, prompts: readonly PlayItem[]): void {
  d.cancelAllTimers();
  d.set({ phase: 'goodbye', awaiting: null, entryBuffer: '', newAccessCode: null, typeAhead: [] });
  d.play(prompts);
  d.startTimer('goodbyeGuard', d.state.settings.goodbyeGuardMs);
}

function hangUp(d: Draft): void {
  d.cancelAllTimers();
  d.stopPlayback();
  d.emit({ type: 'hangup' });
  d.set({ phase: 'ended', awaiting: null });
}

function busy(d: Draft, phase: Phase): void {
  d.cancelAllTimers();
  d.stopPlayback();
  d.set({ phase, entryBuffer: '' });
}

// ---------------------------------------------------------------------------------------------
// Events

function onDigit(d: Draft, digit: Digit): void {
  const { phase } = d.state;
  if (phase === 'greeting') {
    // # skips the greeting straight to the tone and the recording; other keys mean nothing.
    if (digit === '#') startRecording(d);
    return;
  }
  if (phase === 'recording') {
    // # ends the message (so does hanging up, or silence); other keys are part of it.
    if (digit === '#') d.emit({ type: 'stopRecording' });
    return;
  }
  if (BUSY_PHASES.has(phase)) {
    if (d.state.typeAhead.length < MAX_TYPE_AHEAD) d.set({ typeAhead: [...d.state.typeAhead, digit] });
    return;
  }
  if (!isCollecting(phase)) return; // idle, goodbye: keys mean nothing
  // RFC 4733 events A–D exist on some phones; no menu here uses them.
  if (digit === 'A' || digit === 'B' || digit === 'C' || digit === 'D') return;

  // Type-ahead: a key pressed during a prompt stops it and is kept.
  d.stopPlayback();
  d.cancelTimer('noInput');

  if (MENU_PHASES.has(phase)) {
    d.set({ noInputCount: 0 });
    onMenuKey(d, digit);
  } else {
    onEntryKey(d, digit);
  }
}

function onEntryKey(d: Draft, digit: Digit): void {
  const { phase, settings } = d.state;
  if (digit === '#') {
    d.cancelTimer('interDigit');
    submitEntry(d);
    return;
  }
  if (digit === '*') {
    d.cancelTimer('interDigit');
    if (phase === 'enterNewAccessCode' || phase === 'reenterNewAccessCode') {
      if (d.state.changeMode === 'change') {
        mainMenu(d, ['access-code-not-changed']);
        return;
      }
      // First-time and forced changes cannot be skipped: start the entry over.
      enterNewAccessCode(d, d.state.changeMode, ['enter-new-access-code']);
      return;
    }
    // `*` while typing a number or code: start that entry over, no try is used up.
    collect(d, phase, d.state.phasePrompts);
    return;
  }
  if (d.state.entryBuffer.length < settings.maxEntryDigits) d.set({ entryBuffer: d.state.entryBuffer + digit });
  d.set({ noInputCount: 0 });
  d.startTimer('interDigit', settings.interDigitTimeoutMs);
}

function submitEntry(d: Draft): void {
  const entered = d.state.entryBuffer;
  d.set({ entryBuffer: '' });
  if (entered === '') {
    // `#` alone: treat as no input (replay once, then goodbye) rather than as a wrong code.
    noInput(d);
    return;
  }
  switch (d.state.phase) {
    case 'enterAccountNumber':
      d.set({ mailbox: entered });
      collect(d, 'enterAccessCode', ['enter-access-code']);
      break;
    case 'enterAccessCode': {
      const mailbox = d.state.mailbox;
      if (mailbox === null) throw new Error('ivr: enterAccessCode without a mailbox');
      busy(d, 'verifying');
      d.request((requestId) => ({ type: 'verifyLogin', requestId, mailbox, accessCode: entered }));
      break;
    }
    case 'enterNewAccessCode': {
      const mailbox = d.state.mailbox;
      if (mailbox === null) throw new Error('ivr: enterNewAccessCode without a mailbox');
      busy(d, 'checkingNewAccessCode');
      d.set({ newAccessCode: entered });
      d.request((requestId) => ({ type: 'checkNewAccessCode', requestId, mailbox, accessCode: entered }));
      break;
    }
    case 'reenterNewAccessCode': {
      const mailbox = d.state.mailbox;
      if (mailbox === null) throw new Error('ivr: reenterNewAccessCode without a mailbox');
      if (entered !== d.state.newAccessCode) {
        changeRefused(d, ['access-codes-did-not-match']);
        return;
      }
      busy(d, 'savingAccessCode');
      const initial = d.state.changeMode === 'firstTime';
      d.request((requestId) => ({ type: 'changeAccessCode', requestId, mailbox, accessCode: entered, initial }));
      break;
    }
    default:
      break;
  }
}

function onMenuKey(d: Draft, digit: Digit): void {
  if (d.state.phase === 'mainMenu') {
    switch (digit) {
      case '1': {
        const mailbox = d.state.mailbox;
        if (mailbox === null || !d.state.authenticated) throw new Error('ivr: main menu without a login');
        busy(d, 'listingMessages');
        d.request((requestId) => ({ type: 'listMessages', requestId, mailbox }));
        return;
      }
      case '2':
        enterNewAccessCode(d, 'change', ['enter-new-access-code']);
        return;
      case '*':
        goodbye(d, ['goodbye']);
        return;
      default:
        invalidOption(d);
        return;
    }
  }
  if (d.state.phase === 'messageMenu') {
    onMessageKey(d, digit);
    return;
  }
  // Auto Attendant menu.
  const entry = d.state.entry;
  const option = entry?.kind === 'autoAttendant' ? entry.options.find((o) => o.digit === digit) : undefined;
  if (option === undefined) {
    invalidOption(d);
    return;
  }
  if (option.action === 'voicemailLogin') {
    collect(d, 'enterAccountNumber', ['enter-account-number']);
    return;
  }
  const target = option.target ?? '';
  busy(d, 'transferring');
  d.set({ transferTarget: target });
  d.play(['transferring']);
  d.request((requestId) => ({ type: 'transfer', requestId, target }));
}

function invalidOption(d: Draft): void {
  const invalidOptions = d.state.invalidOptions + 1;
  if (invalidOptions >= d.state.settings.maxInvalidOptions) {
    goodbye(d, ['invalid-option', 'goodbye']);
    return;
  }
  d.set({ invalidOptions });
  collect(d, d.state.phase, d.state.phasePrompts, ['invalid-option']);
}

function onPromptFinished(d: Draft, playId: number): void {
  if (playId !== d.state.playing) return; // a prompt that was stopped or replaced
  d.set({ playing: null });
  const { phase } = d.state;
  if (phase === 'goodbye') {
    hangUp(d);
    return;
  }
  if (phase === 'greeting') {
    startRecording(d);
    return;
  }
  if (phase === 'messageMenu') markHeard(d);
  if (isCollecting(phase) && d.state.entryBuffer === '' && d.state.timers.interDigit === undefined) {
    d.startTimer('noInput', d.state.settings.noInputTimeoutMs);
  }
}

function onTimer(d: Draft, timer: TimerName, timerId: number): void {
  if (d.state.timers[timer] !== timerId) return; // cancelled or replaced
  const timers = { ...d.state.timers };
  delete timers[timer];
  d.set({ timers });
  switch (timer) {
    case 'noInput':
      if (isCollecting(d.state.phase)) noInput(d);
      break;
    case 'interDigit':
      // No `#` within the inter-digit time: take what was typed, as most voicemail systems do.
      if (ENTRY_PHASES.has(d.state.phase)) submitEntry(d);
      break;
    case 'goodbyeGuard':
      if (d.state.phase === 'goodbye') hangUp(d);
      break;
  }
}

function noInput(d: Draft): void {
  if (d.state.noInputCount >= 1) {
    goodbye(d, ['goodbye']);
    return;
  }
  collect(d, d.state.phase, d.state.phasePrompts, [], 1);
}

function onLoginResult(d: Draft, result: 'ok' | 'rejected' | 'unavailable', mustChange: boolean): void {
  d.set({ awaiting: null });
  if (result === 'unavailable') {
    goodbye(d, ['try-again-later', 'goodbye']);
    return;
  }
  if (result === 'ok') {
    d.set({ authenticated: true, loginAttempts: 0 });
    if (mustChange) enterNewAccessCode(d, 'forced', ['enter-new-access-code'], ['must-change-access-code']);
    else mainMenu(d);
    return;
  }
  const loginAttempts = d.state.loginAttempts + 1;
  d.set({ loginAttempts });
  if (loginAttempts >= d.state.settings.maxLoginAttempts) {
    goodbye(d, ['login-incorrect', 'goodbye']);
    return;
  }
  if (d.state.entry?.kind === 'ownMailbox') {
    collect(d, 'enterAccessCode', ['enter-access-code'], ['login-incorrect']);
  } else {
    // The caller typed the account number: it may be the part that was wrong, so ask for both.
    d.set({ mailbox: null });
    collect(d, 'enterAccountNumber', ['enter-account-number'], ['login-incorrect']);
  }
}

function onCheckResult(d: Draft, result: 'ok' | 'rejected' | 'unavailable', reason: RejectionReason | undefined): void {
  d.set({ awaiting: null });
  if (result === 'unavailable') {
    goodbye(d, ['try-again-later', 'goodbye']);
    return;
  }
  if (result === 'ok') {
    collect(d, 'reenterNewAccessCode', ['reenter-new-access-code']);
    return;
  }
  changeRefused(d, rejectionPrompts(reason ?? 'notDigits', d.state.settings.accessCodeLength));
}

function onChangeResult(d: Draft, result: 'ok' | 'rejected' | 'unavailable', reason: RejectionReason | undefined): void {
  d.set({ awaiting: null, newAccessCode: null });
  if (result === 'unavailable') {
    goodbye(d, ['try-again-later', 'goodbye']);
    return;
  }
  if (result === 'ok') {
    const firstTime = d.state.changeMode === 'firstTime';
    // A first code chosen by the trusted owner of the mailbox is their login for this call.
    d.set({ authenticated: true });
    mainMenu(d, [firstTime ? 'access-code-set' : 'access-code-changed']);
    return;
  }
  // The rules are checked again inside the saving transaction (another change may have won).
  changeRefused(d, rejectionPrompts(reason ?? 'notDigits', d.state.settings.accessCodeLength));
}

/** A new code was refused or the two entries differed: say why and ask again, a few times. */
function changeRefused(d: Draft, why: readonly PlayItem[]): void {
  const changeAttempts = d.state.changeAttempts + 1;
  const mode = d.state.changeMode;
  if (changeAttempts >= d.state.settings.maxChangeAttempts) {
    if (mode === 'change') {
      mainMenu(d, [...why, 'access-code-not-changed']);
    } else {
      goodbye(d, [...why, 'access-code-not-changed', 'goodbye']);
    }
    return;
  }
  d.set({ changeAttempts });
  enterNewAccessCode(d, mode, ['enter-new-access-code'], why);
}

function onTransferResult(d: Draft, result: 'ok' | 'failed'): void {
  d.set({ awaiting: null, transferTarget: null });
  if (result === 'ok') {
    // RFC 3515 §2.4.5/RFC 5589: once the transfer is accepted, the transferor leaves the call.
    hangUp(d);
    return;
  }
  collect(d, 'autoAttendantMenu', ['auto-attendant-menu'], ['transfer-failed']);
}

// ---------------------------------------------------------------------------------------------
// Messages: leaving one, listening to them

function startRecording(d: Draft): void {
  const mailbox = d.state.mailbox;
  if (mailbox === null) throw new Error('ivr: recording without a mailbox');
  d.cancelAllTimers();
  d.stopPlayback();
  d.set({ phase: 'recording' });
  const { maxRecordingMs, recordingSilenceMs } = d.state.settings;
  d.request((requestId) => ({ type: 'startRecording', requestId, mailbox, maxMs: maxRecordingMs, silenceMs: recordingSilenceMs }));
}

function onRecordingStopped(d: Draft, result: 'saved' | 'tooShort' | 'unavailable'): void {
  d.set({ awaiting: null });
  if (result === 'saved') goodbye(d, ['message-recorded', 'goodbye']);
  else if (result === 'tooShort') goodbye(d, ['goodbye']);
  else goodbye(d, ['try-again-later', 'goodbye']);
}

/** New messages first, each group newest first (the store lists newest first). */
function ordered(messages: readonly MessageSummary[]): MessageSummary[] {
  return [...messages.filter((m) => m.state === 'new'), ...messages.filter((m) => m.state !== 'new')];
}

function onMessagesListed(d: Draft, result: 'ok' | 'unavailable', messages: readonly MessageSummary[]): void {
  d.set({ awaiting: null });
  if (result === 'unavailable') {
    goodbye(d, ['try-again-later', 'goodbye']);
    return;
  }
  if (messages.length === 0) {
    mainMenu(d, ['no-messages']);
    return;
  }
  const list = ordered(messages);
  const newCount = list.filter((m) => m.state === 'new').length;
  d.set({ messages: list, messageIndex: 0, invalidOptions: 0 });
  playMessage(d, summaryPrompts(newCount, list.length - newCount));
}

function currentMessage(d: Draft): MessageSummary | undefined {
  return d.state.messages?.[d.state.messageIndex];
}

/** The message at hand: its envelope, its audio, and the menu; keys stop it (type-ahead). */
function playMessage(d: Draft, leadIn: readonly PlayItem[] = []): void {
  const m = currentMessage(d);
  if (m === undefined) {
    mainMenu(d, [...leadIn, 'no-more-messages']);
    return;
  }
  // The envelope and the recording lead in; only the menu is replayed on no input or a wrong key.
  collect(d, 'messageMenu', ['message-menu'], [...leadIn, ...envelopePrompts(m.receivedAt, m.caller), { audio: m.audioKey }]);
}

/** A new message that was heard (played out, or acted on) is old from now on. */
function markHeard(d: Draft): void {
  const m = currentMessage(d);
  const mailbox = d.state.mailbox;
  if (m === undefined || m.state !== 'new' || mailbox === null) return;
  d.emit({ type: 'markHeard', mailbox, messageId: m.id });
  const messages = [...(d.state.messages ?? [])];
  messages[d.state.messageIndex] = { ...m, state: 'saved' };
  d.set({ messages });
}

function nextMessage(d: Draft, leadIn: readonly PlayItem[] = []): void {
  d.set({ messageIndex: d.state.messageIndex + 1, invalidOptions: 0 });
  playMessage(d, leadIn);
}

function onMessageKey(d: Draft, digit: Digit): void {
  const m = currentMessage(d);
  const mailbox = d.state.mailbox;
  if (m === undefined || mailbox === null) {
    mainMenu(d);
    return;
  }
  switch (digit) {
    case '7':
      busy(d, 'updatingMessage');
      d.set({ messageAction: 'delete' });
      d.request((requestId) => ({ type: 'deleteMessage', requestId, mailbox, messageId: m.id }));
      return;
    case '9':
      if (m.state === 'new') {
        busy(d, 'updatingMessage');
        d.set({ messageAction: 'save' });
        d.request((requestId) => ({ type: 'saveMessage', requestId, mailbox, messageId: m.id }));
        return;
      }
      nextMessage(d, ['message-saved']);
      return;
    case '4':
      markHeard(d);
      d.set({ invalidOptions: 0 });
      playMessage(d);
      return;
    case '6':
      markHeard(d);
      nextMessage(d);
      return;
    case '#':
      // Skip: on to the next one, and a new message that was cut short stays new.
      nextMessage(d);
      return;
    case '*':
      markHeard(d);
      mainMenu(d);
      return;
    default:
      invalidOption(d);
  }
}

function onMessageUpdated(d: Draft, result: 'ok' | 'unavailable'): void {
  const action = d.state.messageAction;
  d.set({ awaiting: null, messageAction: null });
  if (result === 'unavailable') {
    goodbye(d, ['try-again-later', 'goodbye']);
    return;
  }
  const messages = [...(d.state.messages ?? [])];
  if (action === 'delete') {
    messages.splice(d.state.messageIndex, 1);
    d.set({ messages, invalidOptions: 0 });
    playMessage(d, ['message-deleted']);
    return;
  }
  const m = messages[d.state.messageIndex];
  if (m !== undefined) messages[d.state.messageIndex] = { ...m, state: 'saved' };
  d.set({ messages });
  nextMessage(d, ['message-saved']);
}
