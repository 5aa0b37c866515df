/**
 * The engine-independent rules of a `message-summary` notifier (RFC 6665 SIP events, RFC 3842
 * message waiting): which answer a SUBSCRIBE gets, how long a subscription lasts, what the
 * Subscription-State of a NOTIFY says, and when a failed NOTIFY ends a subscription. Pure
 * functions of header values, so both engines (drachtio, embedded) answer alike and the rules
 * are tested without a network.
 */
import { MESSAGE_SUMMARY_CONTENT_TYPE, MESSAGE_SUMMARY_EVENT, type MailboxRef } from './message-summary.js';

/** Subscription durations in seconds. */
export interface ExpiresPolicy {
  /** For a SUBSCRIBE without Expires (RFC 3842's Subscription Duration: one hour). */
  readonly defaultS: number;
  /** Longer requests are shortened to this (RFC 6665 §4.2.1.1: the notifier MAY shorten, never lengthen). */
  readonly maxS: number;
  /** Shorter nonzero requests get 423 Interval Too Brief with this as Min-Expires (RFC 6665 §4.2.1.1). */
  readonly minS: number;
}

export const MWI_EXPIRES: ExpiresPolicy = { defaultS: 3600, maxS: 3600, minS: 60 };

/** Retry-After (seconds) on a 503 when the mailbox store cannot answer (RFC 3261 §21.5.4). */
export const MWI_RETRY_AFTER_S = 30;

export type ExpiresDecision =
  | { readonly ok: true; readonly expiresS: number }
  | { readonly ok: false; readonly status: 400 | 423; readonly headers: Readonly<Record<string, string>> };

/**
 * The duration granted for a SUBSCRIBE's Expires header value (`delta-seconds = 1*DIGIT`,
 * RFC 3261 §25.1). 0 is kept: a fetch on an initial SUBSCRIBE (RFC 6665 §4.4.3), an unsubscribe
 * on a refresh (§4.1.2.3).
 */
export function subscriptionExpires(header: string | undefined, policy: ExpiresPolicy = MWI_EXPIRES): ExpiresDecision {
  if (header === undefined || header.trim() === '') return { ok: true, expiresS: policy.defaultS };
  const text = header.trim();
  if (!/^\d+$/.test(text)) return { ok: false, status: 400, headers: { Warning: '399 vmaccess "Expires must be a number of seconds"' } };
  const requested = Number(text);
  if (requested === 0) return { ok: true, expiresS: 0 };
  if (requested < policy.minS) return { ok: false, status: 423, headers: { 'Min-Expires': String(policy.minS) } };
  return { ok: true, expiresS: Math.min(requested, policy.maxS) };
}

export interface EventHeader {
  /** The event-type token (`message-summary`). */
  readonly package: string;
  /** The `id` parameter, which NOTIFYs must echo (RFC 6665 §8.2.1). */
  readonly id: string | undefined;
}

/** `Event: message-summary;id=3` → package and id; null when there is no event type. */
export function parseEventHeader(value: string | undefined): EventHeader | null {
  if (value === undefined) return null;
  const [type = '', ...params] = value.split(';');
  const pkg = type.trim();
  if (pkg === '') return null;
  const id = params.map((p) => p.trim()).find((p) => /^id\s*=/i.test(p))?.replace(/^id\s*=\s*/i, '');
  return { package: pkg, id: id === undefined || id === '' ? undefined : id };
}

/**
 * Whether the package is message-summary. Event types are registered tokens; a phone writing
 * `Message-Summary` is accepted (the NOTIFYs echo its Event header exactly, so its own byte-wise
 * matching of NOTIFY to SUBSCRIBE still holds).
 */
export function isMessageSummary(event: EventHeader | null): boolean {
  return event !== null && event.package.toLowerCase() === MESSAGE_SUMMARY_EVENT;
}

/**
 * Whether a SUBSCRIBE's Accept header admits application/simple-message-summary, the body type of
 * every NOTIFY we send (RFC 3842, NOTIFY Bodies; otherwise 406 Not Acceptable, RFC 3261 §21.4.7).
 * Absent (or empty, which some phones send for "don't care") means the package default: that type.
 */
export function acceptsMessageSummary(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  return accept.split(',').some((range) => {
    const type = (range.split(';')[0] ?? '').trim().toLowerCase();
    return type === '*/*' || type === 'application/*' || type === MESSAGE_SUMMARY_CONTENT_TYPE;
  });
}

export interface SubscribeFacts {
  /** The request came from a TRUSTED_SIP_PEERS address (there is no other authentication). */
  readonly trusted: boolean;
  /** The Event header (compact form `o` already folded in), or undefined. */
  readonly event: string | undefined;
  readonly expires: string | undefined;
  readonly accept: string | undefined;
  readonly hasContact: boolean;
  /** An initial SUBSCRIBE whose To already has a tag: a refresh of a dialog we do not know. */
  readonly unknownDialog?: boolean;
}

export type SubscribeVerdict =
  | { readonly kind: 'accept'; readonly expiresS: number; readonly event: EventHeader }
  | { readonly kind: 'reject'; readonly status: number; readonly headers: Readonly<Record<string, string>>; readonly why: string };

/**
 * The answer to a SUBSCRIBE before the mailbox is looked up — cheap checks first, so a request
 * the server would refuse anyway never reaches the store. After `accept` the engine resolves the
 * Request-URI's mailbox (404 when there is none, 503 + Retry-After when the store fails).
 */
export function screenSubscribe(facts: SubscribeFacts, policy: ExpiresPolicy = MWI_EXPIRES): SubscribeVerdict {
  // Message counts are private: only the PBX (a trusted peer) may ask (RFC 6665 §4.2.1.3 leaves
  // authorisation to local policy; RFC 3842's security considerations ask for it).
  if (!facts.trusted) return { kind: 'reject', status: 403, headers: {}, why: 'untrusted source' };
  // RFC 3261 §12.2.2: a request for a dialog the UAS does not have gets 481.
  if (facts.unknownDialog === true) return { kind: 'reject', status: 481, headers: {}, why: 'unknown subscription dialog' };
  const event = parseEventHeader(facts.event);
  if (!isMessageSummary(event)) {
    // RFC 6665 §4.2.1.1: 489 Bad Event for a package the notifier does not understand; §4.4.4
    // and §8.2.2: Allow-Events lists the ones it does.
    return { kind: 'reject', status: 489, headers: { 'Allow-Events': MESSAGE_SUMMARY_EVENT }, why: 'event package not supported' };
  }
  // A SUBSCRIBE creates a dialog, so it MUST carry a Contact (RFC 3261 §8.1.1.8).
  if (!facts.hasContact) return { kind: 'reject', status: 400, headers: { Warning: '399 vmaccess "Contact header required"' }, why: 'no Contact' };
  if (!acceptsMessageSummary(facts.accept)) {
    return { kind: 'reject', status: 406, headers: {}, why: `Accept without ${MESSAGE_SUMMARY_CONTENT_TYPE}` };
  }
  const expires = subscriptionExpires(facts.expires, policy);
  if (!expires.ok) return { kind: 'reject', status: expires.status, headers: expires.headers, why: expires.status === 423 ? 'Expires too brief' : 'bad Expires' };
  return { kind: 'accept', expiresS: expires.expiresS, event: event! };
}

/** The event-reason values of RFC 6665 §4.1.3 this server uses. */
export type TerminationReason = 'timeout' | 'deactivated' | 'noresource' | 'rejected';

export type SubscriptionState =
  | { readonly state: 'active'; readonly expiresS: number }
  | { readonly state: 'terminated'; readonly reason: TerminationReason };

/**
 * Why subscriptions end when this server stops (drain, shutdown): `noresource`, as on the embedded
 * engine. RFC 6665 §4.1.3 reads it as "Clients SHOULD NOT attempt to re-subscribe"; its
 * `deactivated` ("the subscriber SHOULD retry immediately", meant for migrating subscriptions
 * between nodes) would fit a drain behind a shared drachtio-server better — one constant to
 * change, for both engines, if that is decided.
 */
export const SHUTDOWN_REASON: TerminationReason = 'noresource';

/** The Subscription-State header value (RFC 6665 §8.2.3, ABNF in §8.4). */
export function subscriptionStateHeader(s: SubscriptionState): string {
  return s.state === 'active' ? `active;expires=${Math.max(0, Math.floor(s.expiresS))}` : `terminated;reason=${s.reason}`;
}

/** Whole seconds left until `expiresAtMs` (rounded up, so a NOTIFY sent with the 200 says what the 200 said). */
export function remainingSeconds(expiresAtMs: number, nowMs: number): number {
  return Math.max(0, Math.ceil((expiresAtMs - nowMs) / 1000));
}

/**
 * Final responses to a NOTIFY after which "the notifier MUST remove the corresponding
 * subscription" (RFC 6665 §4.2.2: 404, 405, 410, 416, 480-485, 489, 501, 604), plus 408: a NOTIFY
 * that timed out SHOULD end it too (same section).
 */
export const FATAL_NOTIFY_STATUSES: ReadonlySet<number> = new Set([404, 405, 408, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604]);

/** Whether the final response to a NOTIFY ends its subscription. Other failures leave it to its expiry. */
export function notifyEndsSubscription(status: number): boolean {
  return FATAL_NOTIFY_STATUSES.has(status);
}

/** Mailbox identity for matching changes to subscriptions: domains are case-insensitive (RFC 3261 §19.1.4). */
export function mailboxKey(ref: MailboxRef): string {
  return `${ref.mailbox}@${ref.domain.toLowerCase()}`;
}

export function sameMailbox(a: MailboxRef, b: MailboxRef): boolean {
  return mailboxKey(a) === mailboxKey(b);
}
