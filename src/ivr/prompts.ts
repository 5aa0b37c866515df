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
] as const;

export type PromptId = (typeof PROMPT_IDS)[number];

/** Spoken number 0–20 (the only numbers the access-code rules need). */
export function numberPrompt(n: number): PromptId {
  if (!Number.isInteger(n) || n < 0 || n > 20) throw new RangeError(`no prompt for number ${n}`);
  return `num-${n}` as PromptId;
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
