import { expect } from 'vitest';

/** Keys whose values could hold what a caller typed; they must be absent or censored. */
const SECRET_KEYS = /^(digit|digits|buffer|accessCode|newAccessCode|pin|code|entryBuffer|typeAhead)$/i;

/**
 * Walks every JSON log record: no string may contain one of the access codes as a whole number
 * (so "127.0.0.1:48260" does not count as "4826", nor does a random hex token such as the branch
 * "z9hG4bK…e2580a…"), and keys that could carry typed digits must be missing or "[redacted]".
 */
export function expectNoSecretsInLogs(records: Array<Record<string, unknown>>, codes: readonly string[]): void {
  const patterns = codes.map(wholeNumber);
  const visit = (value: unknown, path: string): void => {
    if (typeof value === 'string') {
      for (const p of patterns) expect(p.test(value), `log value at ${path} contains an access code: ${value}`).toBe(false);
      return;
    }
    if (typeof value === 'number') {
      for (const c of codes) expect(String(value) === c, `log number at ${path} equals an access code`).toBe(false);
      return;
    }
    if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (SECRET_KEYS.test(k)) expect(v === '[redacted]', `log key ${path}.${k} carries typed digits`).toBe(true);
        visit(v, `${path}.${k}`);
      }
    }
  };
  expect(records.length).toBeGreaterThan(0);
  records.forEach((r, i) => visit(r, `line${i}`));
}

/** Whether `text` holds `code` as a whole number (not as part of a port such as 127.0.0.1:48260). */
export function containsNumber(text: string, code: string): boolean {
  return wholeNumber(code).test(text);
}

/**
 * The code standing alone: neither digits nor letters on either side. Letters count because
 * branches, tags and Call-IDs are random hex; a code a caller typed would stand between
 * separators (`"4826"`, `=4826`, `4826#`).
 */
function wholeNumber(code: string): RegExp {
  return new RegExp(`(^|[^0-9A-Za-z])${code}([^0-9A-Za-z]|$)`);
}
