/**
 * Rules for a new mailbox access code. Pure: the same input always gives the same answer, so
 * every rule is tested by tables. Rules a code alone can break are checked here; the history
 * rules (same as the current code, one of the recent ones) need the stored hashes and are
 * decided by the mailbox access-code service, which reports them with the same type.
 */

/** Why a new access code is refused. Each reason has its own prompt (ivr/prompts.ts). */
export type AccessCodeRejection =
  | 'notDigits'
  | 'tooShort'
  | 'tooLong'
  | 'allSameDigit'
  | 'sequential'
  | 'mailboxNumber'
  | 'sameAsCurrent'
  | 'recentlyUsed';

/** Every reason, in the order the rules are checked (also the API's `reason` values). */
export const ACCESS_CODE_REJECTIONS: readonly AccessCodeRejection[] = [
  'notDigits', 'tooShort', 'tooLong', 'allSameDigit', 'sequential', 'mailboxNumber', 'sameAsCurrent', 'recentlyUsed',
];

/** The reasons `checkAccessCodeFormat` can give (the rest need the mailbox's history). */
export type AccessCodeFormatRejection = Exclude<AccessCodeRejection, 'sameAsCurrent' | 'recentlyUsed'>;

export interface AccessCodeRules {
  /** Domain setting, e.g. 4. */
  minLength: number;
  /** Domain setting, e.g. 10. */
  maxLength: number;
  /** The mailbox the code is for: a code equal to it is the first thing an attacker tries. */
  mailboxNumber: string;
}

export type AccessCodeCheck = { ok: true } | { ok: false; reason: AccessCodeFormatRejection };

/** How many previous codes a new code must differ from ('recentlyUsed'). */
export const ACCESS_CODE_HISTORY_DEPTH = 3;

/**
 * Checks, in this order (the first rule broken is reported): only the digits 0-9; length within
 * the domain's limits; not one digit repeated (1111); not an ascending or descending run
 * (1234, 9876, 0123 — no wrap-around, so 8901 is allowed); not the mailbox number.
 */
export function checkAccessCodeFormat(code: string, rules: AccessCodeRules): AccessCodeCheck {
  if (!/^[0-9]+$/.test(code)) return { ok: false, reason: 'notDigits' };
  if (code.length < rules.minLength) return { ok: false, reason: 'tooShort' };
  if (code.length > rules.maxLength) return { ok: false, reason: 'tooLong' };
  if (isAllSameDigit(code)) return { ok: false, reason: 'allSameDigit' };
  if (isSequential(code)) return { ok: false, reason: 'sequential' };
  if (code === rules.mailboxNumber) return { ok: false, reason: 'mailboxNumber' };
  return { ok: true };
}

function isAllSameDigit(code: string): boolean {
  return code.split('').every((d) => d === code[0]);
}

/** Every digit exactly one above (or every digit exactly one below) the one before it. */
function isSequential(code: string): boolean {
  if (code.length < 2) return false;
  const step = code.charCodeAt(1) - code.charCodeAt(0);
  if (step !== 1 && step !== -1) return false;
  for (let i = 1; i < code.length; i++) {
    if (code.charCodeAt(i) - code.charCodeAt(i - 1) !== step) return false;
  }
  return true;
}
