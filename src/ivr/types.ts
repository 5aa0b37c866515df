import type { LocalTime, PromptId, RejectionReason } from './prompts.js';

/** A key press, from RFC 4733 telephone-event, SIP INFO or in-band tones alike. */
export type Digit = '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | '*' | '#' | 'A' | 'B' | 'C' | 'D';

export const DIGITS: readonly Digit[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'];

export function isDigit(value: unknown): value is Digit {
  return typeof value === 'string' && (DIGITS as readonly string[]).includes(value);
}

export interface AutoAttendantOption {
  readonly digit: Digit;
  readonly action: 'voicemailLogin' | 'transfer';
  /** Transfer target (an extension) for 'transfer'. */
  readonly target?: string;
}

/** How the call reached the IVR, decided by the router before the machine starts. */
export type Entry =
  /** Trusted caller (RFC 3325 trust domain) with a mailbox: the mailbox is chosen, the code is still asked. */
  | { readonly kind: 'ownMailbox'; readonly mailbox: string; readonly firstTimeSetup: boolean }
  /** Untrusted peer, or a caller without a mailbox: ask for the account number first. */
  | { readonly kind: 'accountNumber' }
  | { readonly kind: 'autoAttendant'; readonly options: readonly AutoAttendantOption[] }
  /**
   * A caller leaving a message for the mailbox (its deposit address, or a PBX's redirect);
   * `greeting`: the mailbox's recorded greeting (audio key), played instead of the default one.
   */
  | { readonly kind: 'deposit'; readonly mailbox: string; readonly greeting?: string };

/** What one play command plays, in order: prompts, and recordings from the message store (by key). */
export type PlayItem = PromptId | { readonly audio: string };

/** A message as the IVR needs it: no audio, only its key, and the time already in local parts. */
export interface MessageSummary {
  readonly id: string;
  readonly audioKey: string;
  /** Caller ID as received (digits are spoken; anything else is skipped). */
  readonly caller: string;
  readonly state: 'new' | 'saved';
  readonly receivedAt: LocalTime;
}

export interface IvrSettings {
  readonly noInputTimeoutMs: number;
  readonly interDigitTimeoutMs: number;
  /** CONTRACT: 3 tries per call, then goodbye. */
  readonly maxLoginAttempts: number;
  /** Failed tries at choosing a new code (mismatch or a rule) before the change is given up. */
  readonly maxChangeAttempts: number;
  /** Invalid menu choices in a row before goodbye. */
  readonly maxInvalidOptions: number;
  /** Longest entry kept; further digits are ignored (bounds memory, longer than any valid code). */
  readonly maxEntryDigits: number;
  /** A goodbye prompt that never reports its end still ends the call after this long. */
  readonly goodbyeGuardMs: number;
  readonly accessCodeLength: { readonly minLength: number; readonly maxLength: number };
  /** Longest message recorded (then it is saved as it is). */
  readonly maxRecordingMs: number;
  /** Silence that ends a recording. */
  readonly recordingSilenceMs: number;
}

export const DEFAULT_IVR_SETTINGS: IvrSettings = {
  noInputTimeoutMs: 5000,
  interDigitTimeoutMs: 5000,
  maxLoginAttempts: 3,
  maxChangeAttempts: 3,
  maxInvalidOptions: 3,
  maxEntryDigits: 20,
  goodbyeGuardMs: 30_000,
  accessCodeLength: { minLength: 4, maxLength: 10 },
  maxRecordingMs: 180_000,
  recordingSilenceMs: 5_000,
};

export type TimerName = 'noInput' | 'interDigit' | 'goodbyeGuard';

export type StoreOutcome = 'ok' | 'rejected' | 'unavailable';

/** Inputs of the machine. `playId`, `timerId` and `requestId` tie an answer to the command it answers. */
export type IvrEvent =
  | { readonly type: 'callStarted'; readonly entry: Entry }
  | { readonly type: 'digit'; readonly digit: Digit }
  | { readonly type: 'promptFinished'; readonly playId: number }
  | { readonly type: 'timerFired'; readonly timer: TimerName; readonly timerId: number }
  | { readonly type: 'loginResult'; readonly requestId: number; readonly result: StoreOutcome; readonly mustChange?: boolean }
  | { readonly type: 'checkResult'; readonly requestId: number; readonly result: StoreOutcome; readonly reason?: RejectionReason }
  | { readonly type: 'changeResult'; readonly requestId: number; readonly result: StoreOutcome; readonly reason?: RejectionReason }
  | { readonly type: 'transferResult'; readonly requestId: number; readonly result: 'ok' | 'failed' }
  | { readonly type: 'messagesListed'; readonly requestId: number; readonly result: 'ok' | 'unavailable'; readonly messages?: readonly MessageSummary[] }
  /** A message deleted or saved. */
  | { readonly type: 'messageUpdated'; readonly requestId: number; readonly result: 'ok' | 'unavailable' }
  /** The recording ended (#, silence, the time limit) and was stored — or was too short to keep. */
  | { readonly type: 'recordingStopped'; readonly requestId: number; readonly result: 'saved' | 'tooShort' | 'unavailable' }
  | { readonly type: 'hangup' };

/** Outputs: what the session runner must do. The machine itself does no I/O. */
export type IvrCommand =
  | { readonly type: 'play'; readonly playId: number; readonly prompts: readonly PlayItem[] }
  | { readonly type: 'stopPlayback' }
  | { readonly type: 'startTimer'; readonly timer: TimerName; readonly timerId: number; readonly ms: number }
  | { readonly type: 'cancelTimer'; readonly timer: TimerName }
  | { readonly type: 'verifyLogin'; readonly requestId: number; readonly mailbox: string; readonly accessCode: string }
  | { readonly type: 'checkNewAccessCode'; readonly requestId: number; readonly mailbox: string; readonly accessCode: string }
  | { readonly type: 'changeAccessCode'; readonly requestId: number; readonly mailbox: string; readonly accessCode: string; readonly initial: boolean }
  | { readonly type: 'transfer'; readonly requestId: number; readonly target: string }
  | { readonly type: 'listMessages'; readonly requestId: number; readonly mailbox: string }
  | { readonly type: 'deleteMessage'; readonly requestId: number; readonly mailbox: string; readonly messageId: string }
  | { readonly type: 'saveMessage'; readonly requestId: number; readonly mailbox: string; readonly messageId: string }
  /** A new message was heard: it is saved (old) from now on; nobody waits for the answer. */
  | { readonly type: 'markHeard'; readonly mailbox: string; readonly messageId: string }
  /** Record the caller into a new message for `mailbox`; answered by recordingStopped. */
  | { readonly type: 'startRecording'; readonly requestId: number; readonly mailbox: string; readonly maxMs: number; readonly silenceMs: number }
  | { readonly type: 'stopRecording' }
  | { readonly type: 'hangup' };

/** Why the caller is choosing a new code: from the menu, first-time setup, or forced (must_change). */
export type ChangeMode = 'change' | 'firstTime' | 'forced';

export type Phase =
  | 'idle'
  | 'autoAttendantMenu'
  | 'enterAccountNumber'
  | 'enterAccessCode'
  | 'verifying'
  | 'mainMenu'
  | 'enterNewAccessCode'
  | 'checkingNewAccessCode'
  | 'reenterNewAccessCode'
  | 'savingAccessCode'
  | 'transferring'
  | 'greeting'
  | 'recording'
  | 'listingMessages'
  | 'messageMenu'
  | 'updatingMessage'
  | 'goodbye'
  | 'ended';

export interface IvrState {
  readonly settings: IvrSettings;
  readonly phase: Phase;
  readonly entry: Entry | null;
  /** Source of playId / timerId / requestId values. */
  readonly nextId: number;
  readonly playing: number | null;
  readonly timers: Readonly<Partial<Record<TimerName, number>>>;
  /** The store request whose answer the machine waits for. */
  readonly awaiting: number | null;
  readonly mailbox: string | null;
  /** Set only by a successful verify (or a completed first-time setup); see the safety property test. */
  readonly authenticated: boolean;
  readonly loginAttempts: number;
  readonly changeAttempts: number;
  readonly invalidOptions: number;
  readonly noInputCount: number;
  readonly changeMode: ChangeMode;
  /** Digits of the entry being collected. Secret: never logged. */
  readonly entryBuffer: string;
  /** The first of the two new-code entries. Secret: never logged. */
  readonly newAccessCode: string | null;
  /** Digits pressed while the machine waited for the store, replayed into the next prompt. */
  readonly typeAhead: readonly Digit[];
  /** The prompts of the current collecting phase, replayed on no input. */
  readonly phasePrompts: readonly PlayItem[];
  readonly transferTarget: string | null;
  /** The mailbox's messages while listening (new first, newest first), and the one at hand. */
  readonly messages: readonly MessageSummary[] | null;
  readonly messageIndex: number;
  /** What the pending message update is, for its answer. */
  readonly messageAction: 'delete' | 'save' | null;
}

export interface Transition {
  readonly state: IvrState;
  readonly commands: readonly IvrCommand[];
}
