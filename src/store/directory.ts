import type { Queryable } from './database.js';

/**
 * Lookups that route a call: which domain, which access number, which mailbox. Read-only and
 * parameterised; every value from a SIP message reaches SQL only as a bind parameter.
 */

export interface DomainRecord {
  id: number;
  name: string;
  accessCodeMinLength: number;
  accessCodeMaxLength: number;
}

export type AccessNumberKind = 'voicemail' | 'autoAttendant';

export interface MailboxRecord {
  id: number;
  domainId: number;
  number: string;
  shared: boolean;
  /** Display name of the mailbox itself (shared mailboxes), else null. */
  displayName: string | null;
  /** Extension of the owning user; null for a shared mailbox (or one whose owner was removed). */
  ownerExtension: string | null;
  /** The recorded greeting callers leaving a message hear (audio store key); null: the default one. */
  greetingKey: string | null;
}

export interface AutoAttendantOption {
  digit: string;
  action: 'voicemailLogin' | 'transfer';
  /** Where a transfer goes (an extension or number in the domain); null for voicemailLogin. */
  target: string | null;
}

/**
 * The first of `names` (in the order given: Request-URI host, To host, From host) that is a
 * known domain, or null. Host names compare case-insensitively (RFC 3261 §19.1.4).
 */
export async function findDomain(db: Queryable, names: readonly string[]): Promise<DomainRecord | null> {
  const wanted = [...new Set(names.map((n) => n.trim().toLowerCase()).filter((n) => n !== ''))];
  if (wanted.length === 0) return null;
  const placeholders = wanted.map((_, i) => `$${i + 1}`).join(', ');
  const rows = await db.query<{ id: number; name: string; min_length: number; max_length: number }>(
    `SELECT id, name, access_code_min_length AS min_length, access_code_max_length AS max_length
       FROM domains WHERE name IN (${placeholders})`,
    wanted,
  );
  for (const name of wanted) {
    const row = rows.find((r) => r.name === name);
    if (row) {
      return { id: row.id, name: row.name, accessCodeMinLength: row.min_length, accessCodeMaxLength: row.max_length };
    }
  }
  return null;
}

/** The number as dialled and its other form: with a leading `+` removed, or added. */
function numberForms(number: string): [string, string] {
  return [number, number.startsWith('+') ? number.slice(1) : `+${number}`];
}

/**
 * What a dialled number (Request-URI user part) is in this domain. Matches with and without a
 * leading `+` (E.164 numbers arrive both ways); an exact match wins.
 */
export async function findAccessNumber(
  db: Queryable, domainId: number, number: string,
): Promise<{ kind: AccessNumberKind } | null> {
  if (number === '') return null;
  const [asDialled, other] = numberForms(number);
  const rows = await db.query<{ kind: string }>(
    `SELECT kind FROM access_numbers
      WHERE domain_id = $1 AND number IN ($2, $3)
      ORDER BY (number = $2) DESC
      LIMIT 1`,
    [domainId, asDialled, other],
  );
  const row = rows[0];
  if (!row) return null;
  return { kind: row.kind === 'auto_attendant' ? 'autoAttendant' : 'voicemail' };
}

const MAILBOX_COLUMNS = `m.id, m.domain_id, m.number, m.shared, m.display_name, u.extension AS owner_extension, m.greeting_key`;

interface MailboxRow {
  id: number;
  domain_id: number;
  number: string;
  shared: boolean;
  display_name: string | null;
  owner_extension: string | null;
  greeting_key: string | null;
}

function toMailbox(row: MailboxRow): MailboxRecord {
  return {
    id: row.id,
    domainId: row.domain_id,
    number: row.number,
    shared: row.shared,
    displayName: row.display_name,
    ownerExtension: row.owner_extension,
    greetingKey: row.greeting_key,
  };
}

export async function findMailbox(db: Queryable, domainId: number, number: string): Promise<MailboxRecord | null> {
  const rows = await db.query<MailboxRow>(
    `SELECT ${MAILBOX_COLUMNS}
       FROM mailboxes m LEFT JOIN users u ON u.id = m.owner_user_id
      WHERE m.domain_id = $1 AND m.number = $2`,
    [domainId, number],
  );
  return rows[0] ? toMailbox(rows[0]) : null;
}

/**
 * The caller's own mailbox: the one owned by the user with this extension in this domain (the
 * lowest-numbered one should a user own several). Shared mailboxes are never "own": they always
 * need the account number and access code.
 */
export async function findMailboxOwnedBy(db: Queryable, domainId: number, extension: string): Promise<MailboxRecord | null> {
  const rows = await db.query<MailboxRow>(
    `SELECT ${MAILBOX_COLUMNS}
       FROM mailboxes m JOIN users u ON u.id = m.owner_user_id
      WHERE m.domain_id = $1 AND u.domain_id = $1 AND u.extension = $2 AND NOT m.shared
      ORDER BY length(m.number), m.number
      LIMIT 1`,
    [domainId, extension],
  );
  return rows[0] ? toMailbox(rows[0]) : null;
}

/** The menu of an Auto Attendant number, ordered by digit; empty when it has none. */
export async function listAutoAttendantOptions(db: Queryable, domainId: number, number: string): Promise<AutoAttendantOption[]> {
  if (number === '') return [];
  const [asDialled, other] = numberForms(number);
  // Take the options of one number only: the exact form when both forms are configured.
  const rows = await db.query<{ digit: string; action: string; target: string | null }>(
    `SELECT o.digit, o.action, o.target
       FROM auto_attendant_options o
      WHERE o.domain_id = $1
        AND o.number = (SELECT a.number FROM access_numbers a
                         WHERE a.domain_id = $1 AND a.kind = 'auto_attendant' AND a.number IN ($2, $3)
                         ORDER BY (a.number = $2) DESC LIMIT 1)
      ORDER BY o.digit`,
    [domainId, asDialled, other],
  );
  return rows.map((r) => ({
    digit: r.digit,
    action: r.action === 'transfer' ? 'transfer' : 'voicemailLogin',
    target: r.target,
  }));
}
