import type { Queryable } from './database.js';

/**
 * CONTRACT "Audit events", and the administrative ones the portal adds (migration 002):
 * pin_change_required (must change at next login), mailbox_reset, mailbox_recycled,
 * message_deleted.
 */
export type AuditEventName =
  | 'login_succeeded' | 'login_failed' | 'pin_changed' | 'pin_set' | 'mailbox_locked' | 'mailbox_unlocked'
  | 'pin_change_required' | 'mailbox_reset' | 'mailbox_recycled' | 'message_deleted';
export type AuditChannel = 'phone' | 'portal' | 'admin' | 'cli';

export const AUDIT_EVENT_NAMES: readonly AuditEventName[] = [
  'login_succeeded', 'login_failed', 'pin_changed', 'pin_set', 'mailbox_locked', 'mailbox_unlocked',
  'pin_change_required', 'mailbox_reset', 'mailbox_recycled', 'message_deleted',
];
export const AUDIT_CHANNELS: readonly AuditChannel[] = ['phone', 'portal', 'admin', 'cli'];

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

/** Events of a domain (and one mailbox, when given), oldest first. */
export async function listAuditEvents(db: Queryable, filter: { domain: string; mailbox?: string | undefined }): Promise<AuditEvent[]> {
  const params: unknown[] = [filter.domain.toLowerCase()];
  let where = 'domain = $1';
  if (filter.mailbox !== undefined) {
    params.push(filter.mailbox);
    where += ' AND mailbox = $2';
  }
  // Formatted by the database so Postgres and PGlite print the same text.
  return db.query<AuditEvent>(
    `SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at,
            domain, mailbox, event, channel, actor, call_id AS "callId"
       FROM audit_events
      WHERE ${where}
      ORDER BY audit_events.at, audit_events.id`,
    params,
  );
}
