/**
 * ISO-8601 instants as the audit filters take them: a date, a time and a zone (`Z` or ±hh:mm),
 * e.g. 2025-01-31T09:30:00Z or 2025-01-31T10:30:00.250+01:00. A time without a zone is refused
 * rather than guessed (whose midnight?), and so is a date that does not exist (2025-02-30),
 * which Date.parse would quietly roll over into March.
 */
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2}))$/i;

/** The instant; undefined when none is given; null when the text is not a valid instant. */
export function parseInstant(text: string | undefined): Date | undefined | null {
  if (text === undefined) return undefined;
  const m = ISO_INSTANT.exec(text);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return null;
  if (m[8]!.toUpperCase() !== 'Z' && (Number(m[9]) > 23 || Number(m[10]) > 59)) return null;
  const at = new Date(text.toUpperCase());
  return Number.isNaN(at.getTime()) ? null : at;
}
