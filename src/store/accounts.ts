/**
 * Portal and operator accounts, API tokens and web sessions (migration 002). Only hashes of
 * secrets are stored: argon2id for passwords, SHA-256 for tokens and session ids (both are
 * 256-bit random values, so a fast hash is enough and lookups stay indexable).
 */
import { createHash } from 'node:crypto';
import type { Role } from '../domain/permissions.js';
import type { Queryable, Transaction } from './database.js';

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

export interface PortalUser {
  readonly userId: number;
  readonly domain: string;
  readonly extension: string;
  readonly displayName: string;
  readonly role: Role;
  readonly site: string | null;
  readonly passwordHash: string | null;
}

const USER_COLUMNS = `u.id AS "userId", d.name AS domain, u.extension, u.display_name AS "displayName",
  u.role, u.site, p.password_hash AS "passwordHash"`;

export async function findPortalUser(db: Queryable, domain: string, extension: string): Promise<PortalUser | null> {
  const rows = await db.query<PortalUser>(
    `SELECT ${USER_COLUMNS}
       FROM users u JOIN domains d ON d.id = u.domain_id LEFT JOIN portal_accounts p ON p.user_id = u.id
      WHERE d.name = $1 AND u.extension = $2`, [domain.toLowerCase(), extension]);
  return rows[0] ?? null;
}

export async function findPortalUserById(db: Queryable, userId: number): Promise<PortalUser | null> {
  const rows = await db.query<PortalUser>(
    `SELECT ${USER_COLUMNS}
       FROM users u JOIN domains d ON d.id = u.domain_id LEFT JOIN portal_accounts p ON p.user_id = u.id
      WHERE u.id = $1`, [userId]);
  return rows[0] ?? null;
}

/**
 * Sets a user's portal password and ends every session they have: whoever signed in with the
 * old password (perhaps the reason it is being changed) is out at once. Both in the caller's
 * transaction — the type asks for one — so there is never a new password beside old sessions.
 */
export async function setPortalPassword(tx: Transaction, userId: number, passwordHash: string): Promise<void> {
  await tx.query(
    `INSERT INTO portal_accounts (user_id, password_hash) VALUES ($1, $2)
     ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, set_at = now()`, [userId, passwordHash]);
  await tx.query('DELETE FROM portal_sessions WHERE user_id = $1', [userId]);
}

export interface Operator {
  readonly id: number;
  readonly name: string;
  readonly passwordHash: string | null;
}

export async function findOperator(db: Queryable, name: string): Promise<Operator | null> {
  const rows = await db.query<Operator>('SELECT id, name, password_hash AS "passwordHash" FROM operators WHERE name = $1', [name]);
  return rows[0] ?? null;
}

export async function findOperatorById(db: Queryable, id: number): Promise<Operator | null> {
  const rows = await db.query<Operator>('SELECT id, name, password_hash AS "passwordHash" FROM operators WHERE id = $1', [id]);
  return rows[0] ?? null;
}

/** Creates the operator, or sets its password when it exists. */
export async function upsertOperator(db: Queryable, name: string, passwordHash: string | null): Promise<Operator> {
  const rows = await db.query<Operator>(
    `INSERT INTO operators (name, password_hash) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET password_hash = COALESCE(EXCLUDED.password_hash, operators.password_hash)
     RETURNING id, name, password_hash AS "passwordHash"`, [name, passwordHash]);
  return rows[0]!;
}

export async function createApiToken(db: Queryable, operatorId: number, label: string, token: string): Promise<void> {
  await db.query('INSERT INTO api_tokens (token_hash, operator_id, label) VALUES ($1, $2, $3)', [sha256Hex(token), operatorId, label]);
}

export async function operatorOfToken(db: Queryable, token: string): Promise<Operator | null> {
  const rows = await db.query<Operator>(
    `SELECT o.id, o.name, o.password_hash AS "passwordHash"
       FROM api_tokens t JOIN operators o ON o.id = t.operator_id
      WHERE t.token_hash = $1 AND t.revoked_at IS NULL`, [sha256Hex(token)]);
  return rows[0] ?? null;
}

/**
 * Revokes an operator's active API tokens: the one given (its value, e.g. a leaked token), or
 * all with this label. Returns how many were revoked; a revoked token stops working at once
 * (operatorOfToken skips it). Rows are kept, with revoked_at, for the record.
 */
export async function revokeApiTokens(db: Queryable, operatorId: number, which: { token: string } | { label: string }): Promise<number> {
  const [column, value] = 'token' in which ? ['token_hash', sha256Hex(which.token)] : ['label', which.label];
  const rows = await db.query(
    `UPDATE api_tokens SET revoked_at = now()
      WHERE operator_id = $1 AND ${column} = $2 AND revoked_at IS NULL RETURNING 1 AS revoked`, [operatorId, value]);
  return rows.length;
}

/** Every domain's name, for an operator choosing which one to manage. */
export async function listDomains(db: Queryable): Promise<string[]> {
  return (await db.query<{ name: string }>('SELECT name FROM domains ORDER BY name')).map((r) => r.name);
}

export interface StoredSession {
  readonly userId: number | null;
  readonly operatorId: number | null;
  readonly csrfToken: string;
  readonly authenticatedAt: Date;
  readonly expiresAt: Date;
}

export async function createSession(
  db: Queryable, sessionId: string, principal: { userId: number } | { operatorId: number }, csrfToken: string, ttlMs: number,
): Promise<void> {
  await db.query('DELETE FROM portal_sessions WHERE expires_at < now()');
  await db.query(
    `INSERT INTO portal_sessions (id_hash, user_id, operator_id, csrf_token, expires_at)
     VALUES ($1, $2, $3, $4, now() + ($5::int * interval '1 millisecond'))`,
    [sha256Hex(sessionId), 'userId' in principal ? principal.userId : null, 'operatorId' in principal ? principal.operatorId : null, csrfToken, ttlMs]);
}

export async function findSession(db: Queryable, sessionId: string): Promise<StoredSession | null> {
  const rows = await db.query<StoredSession>(
    `SELECT user_id AS "userId", operator_id AS "operatorId", csrf_token AS "csrfToken",
            authenticated_at AS "authenticatedAt", expires_at AS "expiresAt"
       FROM portal_sessions WHERE id_hash = $1 AND expires_at > now()`, [sha256Hex(sessionId)]);
  const row = rows[0];
  if (row === undefined) return null;
  return { ...row, authenticatedAt: new Date(row.authenticatedAt), expiresAt: new Date(row.expiresAt) };
}

export async function deleteSession(db: Queryable, sessionId: string): Promise<void> {
  await db.query('DELETE FROM portal_sessions WHERE id_hash = $1', [sha256Hex(sessionId)]);
}

export interface MailboxSummary {
  readonly id: number;
  readonly number: string;
  readonly shared: boolean;
  readonly displayName: string | null;
  readonly owner: { readonly extension: string; readonly displayName: string; readonly role: Role; readonly site: string | null } | null;
  readonly members: string[];
  readonly hasCode: boolean;
  readonly mustChange: boolean;
  readonly messages: { readonly new: number; readonly saved: number };
}

interface MailboxRow {
  id: number;
  number: string;
  shared: boolean;
  display_name: string | null;
  owner_extension: string | null;
  owner_name: string | null;
  owner_role: Role | null;
  owner_site: string | null;
  members: string | null;
  has_code: boolean;
  must_change: boolean | null;
  new_messages: number;
  saved_messages: number;
}

/** Mailboxes of a domain (or one of them), with owner, members, code state and message counts. */
export async function listMailboxes(db: Queryable, domain: string, number?: string): Promise<MailboxSummary[]> {
  const rows = await db.query<MailboxRow>(
    `SELECT m.id, m.number, m.shared, m.display_name,
            u.extension AS owner_extension, u.display_name AS owner_name, u.role AS owner_role, u.site AS owner_site,
            (SELECT string_agg(mu.extension, ',' ORDER BY mu.extension)
               FROM mailbox_members mm JOIN users mu ON mu.id = mm.user_id WHERE mm.mailbox_id = m.id) AS members,
            (c.mailbox_id IS NOT NULL) AS has_code, c.must_change,
            (SELECT count(*)::int FROM messages x WHERE x.mailbox_id = m.id AND x.state = 'new') AS new_messages,
            (SELECT count(*)::int FROM messages x WHERE x.mailbox_id = m.id AND x.state = 'saved') AS saved_messages
       FROM mailboxes m
       JOIN domains d ON d.id = m.domain_id
       LEFT JOIN users u ON u.id = m.owner_user_id
       LEFT JOIN access_code_credentials c ON c.mailbox_id = m.id
      WHERE d.name = $1 AND ($2::text IS NULL OR m.number = $2)
      ORDER BY m.number`, [domain.toLowerCase(), number ?? null]);
  return rows.map((r) => ({
    id: r.id,
    number: r.number,
    shared: r.shared,
    displayName: r.display_name ?? r.owner_name,
    owner: r.owner_extension === null ? null : {
      extension: r.owner_extension, displayName: r.owner_name ?? '', role: r.owner_role!, site: r.owner_site,
    },
    members: r.members === null ? [] : r.members.split(','),
    hasCode: r.has_code,
    mustChange: r.must_change === true,
    messages: { new: r.new_messages, saved: r.saved_messages },
  }));
}
