import type { Queryable } from './database.js';

/** CONTRACT "Audit events": the six events `vmaccess audit` prints by default. */
export const CONTRACT_AUDIT_EVENTS = [
  'login_succeeded', 'login_failed', 'pin_changed', 'pin_set', 'mailbox_locked', 'mailbox_unlocked',
] as const;

/**
 * The CONTRACT's six and the administrative ones: the portal's (migration 002:
 * pin_change_required, mailbox_reset, mailbox_recycled, message_deleted) and the command line's
 * account changes (migration 003: user_created, portal_password_set, operator_set,
 * api_token_created, api_token_revoked).
 */
export const AUDIT_EVENT_NAMES = [
  ...CONTRACT_AUDIT_EVENTS,
  'pin_change_required', 'mailbox_reset', 'mailbox_recycled', 'message_deleted',
  'user_created', 'portal_password_set', 'operator_set', 'api_token_created', 'api_token_revoked',
] as const;
export type AuditEventName = (typeof AUDIT_EVENT_NAMES)[number];
export type AuditChannel = 'phone' | 'portal' | 'admin' | 'cli';
export const AUDIT_CHANNELS: readonly AuditChannel[] = ['phone', 'portal', 'admin', 'cli'];

/**
 * Operators and API tokens belong to no domain: their events are kept under this domain, with
 * the operator's name in the mailbox field (`vmaccess audit --domain '*' --all`).
 */
export const OPERATORS_AUDIT_DOMAIN = '*';

export interface NewAuditEvent {
  domain: string;
  /** The mailbox number; for a failed login, as the caller typed it. */
  mailbox: string;
  event: AuditEventName;
  channel: AuditChannel;
  /** Who acted: the caller's SIP identity, an admin's name, 'cli'. Never an access code. */
  actor: string;
  callId: string | null;
}

/** One audit line, with the exact field names of `vmaccess audit --json`. */
export interface AuditEvent {
  /** ISO-8601 in UTC with milliseconds, e.g. 2025-01-31T09:30:00.123Z. */
  at: string;
  domain: string;
  mailbox: string;
  event: AuditEventName;
  channel: AuditChannel;
  actor: string;
  callId: string | null;
}

/** Appends one event; pass the transaction when the event belongs to a change of state. */
export async function appendAuditEvent(q: Queryable, e: NewAuditEvent): Promise<void> {
  await q.query(
    `INSERT INTO audit_events (domain, mailbox, event, channel, actor, call_id)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [e.domain.toLowerCase(), e.mailbox, e.event, e.channel, e.actor, e.callId],
  );
}

export interface AuditQuery {
  readonly domain: string;
  /** One mailbox (number as stored). */
  readonly mailbox?: string | undefined;
  /** Only rows of these mailboxes, or all rows but these (who may see what: permissions.ts). */
  readonly mailboxes?: { readonly only: readonly string[] } | { readonly except: readonly string[] } | undefined;
  /** Only these events. */
  readonly events?: readonly AuditEventName[] | undefined;
  /** Inclusive bounds, compared as instants (timestamptz), not as text, to the millisecond. */
  readonly since?: Date | undefined;
  readonly until?: Date | undefined;
  /** At most this many rows, the oldest first; none → all. */
  readonly limit?: number | undefined;
}

/** Events of a domain matching the query, oldest first; the filtering is done by the database. */
export async function listAuditEvents(db: Queryable, filter: AuditQuery): Promise<AuditEvent[]> {
  const params: unknown[] = [];
  const where: string[] = [];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  where.push(`domain = ${param(filter.domain.toLowerCase())}`);
  if (filter.mailbox !== undefined) where.push(`mailbox = ${param(filter.mailbox)}`);
  if (filter.mailboxes !== undefined) {
    where.push('only' in filter.mailboxes
      ? `mailbox = ANY(${param([...filter.mailboxes.only])}::text[])`
      : `NOT (mailbox = ANY(${param([...filter.mailboxes.except])}::text[]))`);
  }
  if (filter.events !== undefined) where.push(`event = ANY(${param([...filter.events])}::text[])`);
  if (filter.since !== undefined) where.push(`at >= ${param(filter.since.toISOString())}::timestamptz`);
  // Times are shown to the millisecond (`at` below), the database keeps microseconds: `until`
  // taken from a shown time must still include that row, so it reaches to the end of its millisecond.
  if (filter.until !== undefined) where.push(`at < ${param(filter.until.toISOString())}::timestamptz + interval '1 millisecond'`);
  const limit = filter.limit === undefined ? '' : ` LIMIT ${param(filter.limit)}::int`;
  // Formatted by the database so Postgres and PGlite print the same text.
  return db.query<AuditEvent>(
    `SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at,
            domain, mailbox, event, channel, actor, call_id AS "callId"
       FROM audit_events
      WHERE ${where.join(' AND ')}
      ORDER BY audit_events.at, audit_events.id${limit}`,
    params,
  );
}
