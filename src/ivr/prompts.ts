import type { AccessCodeRejection } from '../domain/access-code-policy.js';

/**
 * Prompt ids the IVR plays. Each id is a file `ivr-prompts/<lang>/<id>.wav`, generated from the
 * text list `ivr-prompts/<lang>/prompts.txt`; a unit test checks every id here has its WAV.
 */
export const PROMPT_IDS = [
  'welcome',
  'enter-account-number',
  'enter-access-code',
  'login-incorrect',
  'main-menu',
  'no-messages',
  'invalid-option',
  'enter-new-access-code',
  'choose-first-access-code',
  'must-change-access-code',
  'reenter-new-access-code',
  'access-codes-did-not-match',
  'access-code-changed',
  'access-code-set',
  'access-code-not-changed',
  'access-code-length-is',
  'access-code-length-to',
  'access-code-length-digits',
  'access-code-digits-only',
  'access-code-all-same-digit',
  'access-code-sequential',
  'access-code-mailbox-number',
  'access-code-same-as-current',
  'access-code-recently-used',
  'try-again-later',
  'goodbye',
  'auto-attendant-menu',
  'transferring',
  'transfer-failed',
  'num-0', 'num-1', 'num-2', 'num-3', 'num-4', 'num-5', 'num-6', 'num-7', 'num-8', 'num-9', 'num-10',
  'num-11', 'num-12', 'num-13', 'num-14', 'num-15', 'num-16', 'num-17', 'num-18', 'num-19', 'num-20',
  'num-30', 'num-40', 'num-50', 'num-oh', 'oclock',
  // Leaving a message.
  'person-at-extension', 'is-not-available', 'beep', 'message-recorded',
  // Listening to messages.
  'you-have', 'new-message', 'new-messages', 'saved-message', 'saved-messages', 'and',
  'message-received', 'at', 'from', 'unknown-caller', 'message-menu', 'message-deleted', 'message-saved', 'no-more-messages',
  'month-1', 'month-2', 'month-3', 'month-4', 'month-5', 'month-6', 'month-7', 'month-8', 'month-9', 'month-10', 'month-11', 'month-12',
] as const;

export type PromptId = (typeof PROMPT_IDS)[number];

/** Spoken number 0–20 (the only numbers the access-code rules need). */
export function numberPrompt(n: number): PromptId {
  if (!Number.isInteger(n) || n < 0 || n > 20) throw new RangeError(`no prompt for number ${n}`);
  return `num-${n}` as PromptId;
}

/** A number as words: 0–20 one prompt, 21–59 tens + units ("thirty four"), larger digit by digit. */
export function spokenNumber(n: number): PromptId[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`no words for ${n}`);
  if (n <= 20) return [numberPrompt(n)];
  if (n < 60) {
    const tens = `num-${Math.floor(n / 10) * 10}` as PromptId;
    return n % 10 === 0 ? [tens] : [tens, numberPrompt(n % 10)];
  }
  return spokenDigits(String(n));
}

/** Digits one by one ("two oh one" is said "two zero one"); other characters are skipped. */
export function spokenDigits(digits: string): PromptId[] {
  return [...digits].filter((c) => c >= '0' && c <= '9').map((c) => numberPrompt(Number(c)));
}

/** The local time a message arrived, prepared by the session runner (the machine has no clock). */
export interface LocalTime {
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
}

/** "Message received March 4 at 14 oh 5, from 5 5 5 1 2 3 4." */
export function envelopePrompts(at: LocalTime, caller: string): PromptId[] {
  const minute: PromptId[] = at.minute === 0 ? ['oclock'] : at.minute < 10 ? ['num-oh', numberPrompt(at.minute)] : spokenNumber(at.minute);
  const from = spokenDigits(caller);
  return [
    'message-received', `month-${at.month}` as PromptId, ...spokenNumber(at.day), 'at', ...spokenNumber(at.hour), ...minute,
    'from', ...(from.length > 0 ? from : ['unknown-caller' as PromptId]),
  ];
}

/** The default greeting: "The person at extension 2 0 1 is not available. Please leave…", then the tone. */
export function defaultGreeting(mailbox: string): PromptId[] {
  return ['person-at-extension', ...spokenDigits(mailbox), 'is-not-available', 'beep'];
}

/** "You have 2 new messages and 1 saved message." (a count of 0 is left out unless both are 0). */
export function summaryPrompts(newCount: number, savedCount: number): PromptId[] {
  const part = (n: number, one: PromptId, many: PromptId): PromptId[] => [...spokenNumber(n), n === 1 ? one : many];
  const parts: PromptId[][] = [];
  if (newCount > 0) parts.push(part(newCount, 'new-message', 'new-messages'));
  if (savedCount > 0) parts.push(part(savedCount, 'saved-message', 'saved-messages'));
  if (parts.length === 0) return ['no-messages'];
  return ['you-have', ...parts.flatMap((p, i) => (i === 0 ? p : ['and' as PromptId, ...p]))];
}

/** Why a new access code was refused: the domain's rule names, one prompt each. */
export type RejectionReason = AccessCodeRejection;

/** The spoken reason for a refused access code, e.g. "Access codes must have four to ten digits." */
export function rejectionPrompts(reason: RejectionReason, limits: { minLength: number; maxLength: number }): PromptId[] {
  switch (reason) {
    case 'tooShort':
    case 'tooLong':
      return ['access-code-length-is', numberPrompt(limits.minLength), 'access-code-length-to',
        numberPrompt(limits.maxLength), 'access-code-length-digits'];
    case 'notDigits': return ['access-code-digits-only'];
    case 'allSameDigit': return ['access-code-all-same-digit'];
    case 'sequential': return ['access-code-sequential'];
    case 'mailboxNumber': return ['access-code-mailbox-number'];
    case 'sameAsCurrent': return ['access-code-same-as-current'];
    case 'recentlyUsed': return ['access-code-recently-used'];
  }
}
