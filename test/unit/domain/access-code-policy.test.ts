import { describe, expect, it } from 'vitest';
import { checkAccessCodeFormat, type AccessCodeRejection } from '../../../src/domain/access-code-policy.js';

const rules = { minLength: 4, maxLength: 10, mailboxNumber: '201' };

describe('checkAccessCodeFormat', () => {
  const table: [code: string, expected: AccessCodeRejection | 'ok', why: string][] = [
    ['4826', 'ok', 'four mixed digits'],
    ['7391', 'ok', 'four mixed digits'],
    ['8901', 'ok', 'wrap-around is not a sequence'],
    ['9012', 'ok', 'wrap-around is not a sequence'],
    ['2109', 'ok', 'descending wrap-around is not a sequence'],
    ['1235', 'ok', 'almost a sequence'],
    ['1212', 'ok', 'repeated pair'],
    ['1357', 'ok', 'step of two'],
    ['1112', 'ok', 'almost all the same'],
    ['0000000001', 'ok', 'ten digits, not all the same'],
    ['0120', 'ok', 'starts like a sequence'],
    ['', 'notDigits', 'empty'],
    ['12a4', 'notDigits', 'a letter'],
    ['12#4', 'notDigits', 'a hash sign'],
    ['12*4', 'notDigits', 'a star'],
    [' 4826', 'notDigits', 'leading space'],
    ['4826 ', 'notDigits', 'trailing space'],
    ['-482', 'notDigits', 'a sign'],
    ['４８２６', 'notDigits', 'full-width digits'],
    ['٤٨٢٦', 'notDigits', 'Arabic-Indic digits'],
    ['1e10', 'notDigits', 'exponent notation'],
    ['1', 'tooShort', 'one digit'],
    ['12', 'tooShort', 'two digits, also a sequence'],
    ['111', 'tooShort', 'three digits, also all the same'],
    ['482', 'tooShort', 'three digits'],
    ['48264826482', 'tooLong', 'eleven digits'],
    ['11111111111', 'tooLong', 'eleven same digits'],
    ['1111', 'allSameDigit', 'four ones'],
    ['0000', 'allSameDigit', 'four zeros'],
    ['9999999999', 'allSameDigit', 'ten nines'],
    ['1234', 'sequential', 'ascending'],
    ['0123', 'sequential', 'ascending from zero'],
    ['6789', 'sequential', 'ascending to nine'],
    ['0123456789', 'sequential', 'all ten ascending'],
    ['9876', 'sequential', 'descending'],
    ['3210', 'sequential', 'descending to zero'],
    ['9876543210', 'sequential', 'all ten descending'],
    ['45678', 'sequential', 'five ascending'],
  ];
  it.each(table)('%s → %s (%s)', (code, expected) => {
    const result = checkAccessCodeFormat(code, rules);
    expect(result).toEqual(expected === 'ok' ? { ok: true } : { ok: false, reason: expected });
  });

  it('refuses the mailbox number itself, but not a code that merely contains it', () => {
    const mailbox = { minLength: 4, maxLength: 10, mailboxNumber: '5829' };
    expect(checkAccessCodeFormat('5829', mailbox)).toEqual({ ok: false, reason: 'mailboxNumber' });
    expect(checkAccessCodeFormat('58290', mailbox)).toEqual({ ok: true });
    expect(checkAccessCodeFormat('05829', mailbox)).toEqual({ ok: true });
    // A 3-digit mailbox number is already too short for these rules.
    expect(checkAccessCodeFormat('201', rules)).toEqual({ ok: false, reason: 'tooShort' });
  });

  it('reports the first rule broken: format before length before pattern before mailbox', () => {
    expect(checkAccessCodeFormat('1a', rules)).toEqual({ ok: false, reason: 'notDigits' });
    expect(checkAccessCodeFormat('123', rules)).toEqual({ ok: false, reason: 'tooShort' });
    expect(checkAccessCodeFormat('1111', { ...rules, mailboxNumber: '1111' })).toEqual({ ok: false, reason: 'allSameDigit' });
    expect(checkAccessCodeFormat('1234', { ...rules, mailboxNumber: '1234' })).toEqual({ ok: false, reason: 'sequential' });
  });

  it('uses the domain limits', () => {
    const strict = { minLength: 6, maxLength: 8, mailboxNumber: '201' };
    expect(checkAccessCodeFormat('48263', strict)).toEqual({ ok: false, reason: 'tooShort' });
    expect(checkAccessCodeFormat('482637', strict)).toEqual({ ok: true });
    expect(checkAccessCodeFormat('48263759', strict)).toEqual({ ok: true });
    expect(checkAccessCodeFormat('482637591', strict)).toEqual({ ok: false, reason: 'tooLong' });
  });

  /** An independent oracle for every 4- and 5-digit code: the rules written a second way. */
  function oracle(code: string, mailboxNumber: string): AccessCodeRejection | 'ok' {
    const digits = [...code].map(Number);
    if (new Set(digits).size === 1) return 'allSameDigit';
    const ascending = '0123456789';
    const descending = '9876543210';
    if (ascending.includes(code) || descending.includes(code)) return 'sequential';
    if (code === mailboxNumber) return 'mailboxNumber';
    return 'ok';
  }

  it.each([4, 5])('agrees with an independent oracle on every %i-digit code', (length) => {
    const counts = new Map<string, number>();
    for (let n = 0; n < 10 ** length; n++) {
      const code = String(n).padStart(length, '0');
      const result = checkAccessCodeFormat(code, { minLength: 4, maxLength: 10, mailboxNumber: '40404' });
      const actual = result.ok ? 'ok' : result.reason;
      const expected = oracle(code, '40404');
      if (actual !== expected) expect.fail(`${code}: got ${actual}, expected ${expected}`);
      counts.set(actual, (counts.get(actual) ?? 0) + 1);
    }
    // 10 same-digit codes; (11 - length) ascending and as many descending runs.
    expect(counts.get('allSameDigit')).toBe(10);
    expect(counts.get('sequential')).toBe(2 * (11 - length));
    expect(counts.get('mailboxNumber') ?? 0).toBe(length === 5 ? 1 : 0);
  });
});
