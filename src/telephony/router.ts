/**
 * Decides what a new call is for — one router shared by both engines, so the embedded engine and
 * drachtio answer the same INVITE the same way.
 *
 * CONTRACT: the domain is the first of Request-URI host, To host, From host that is a known
 * domain, else DEFAULT_DOMAIN, else 404. The Request-URI user names a voicemail access number or
 * an Auto Attendant number of that domain (a leading `+` is ignored), else 404.
 */
import type { TrustedPeers } from '../config.js';
import type { Entry, Digit } from '../ivr/types.js';
import type { Database } from '../store/database.js';
import {
  findAccessNumber, findDomain, findMailbox, findMailboxOwnedBy, listAutoAttendantOptions, type MailboxRecord,
} from '../store/directory.js';
import { markStoreErrorCounted } from '../store/errors.js';
import { redirectTarget } from './redirection.js';

/**
 * The deposit address of a mailbox, in every domain: `vm-<mailbox>@<domain>` (e.g.
 * `vm-201@demo.local`). A PBX routes "leave a message for 201" there, or redirects the unanswered
 * call to a voicemail access number with Diversion / History-Info (./redirection.ts).
 */
export const DEPOSIT_PREFIX = 'vm-';

export interface CallAddressing {
  /** Request-URI user and host. */
  readonly requestUser: string | undefined;
  readonly requestHost: string | undefined;
  readonly toHost: string | undefined;
  readonly fromUser: string | undefined;
  readonly fromHost: string | undefined;
  /** P-Asserted-Identity user (RFC 3325), if the request carried one. */
  readonly assertedUser: string | undefined;
  /** Network source of the request: the only thing trust is based on. */
  readonly sourceAddress: string;
  /** From display name, kept with a deposited message as the caller's name. */
  readonly fromDisplayName?: string | undefined;
  /** For redirected calls (deposit): the Request-URI as written and the raw header values. */
  readonly requestUri?: string | undefined;
  readonly diversion?: readonly string[];
  readonly historyInfo?: readonly string[];
}

/** Who is calling, as presented (for a message's caller ID; not an identity check). */
export interface CallerId {
  readonly number: string;
  readonly name: string | null;
}

export interface RoutedCall {
  readonly domain: { readonly id: number; readonly name: string; readonly accessCodeMinLength: number; readonly accessCodeMaxLength: number };
  readonly entry: Entry;
  /** Who acts, for audit rows: the asserted identity when trusted, otherwise marked unverified. */
  readonly actor: string;
  readonly trusted: boolean;
  readonly caller: CallerId;
}

export type RouteResult =
  | { readonly kind: 'routed'; readonly call: RoutedCall }
  | { readonly kind: 'unknownDomain' }
  | { readonly kind: 'unknownNumber'; readonly domain: string };

export interface RouterOptions {
  readonly db: Database;
  readonly trustedPeers: TrustedPeers;
  readonly defaultDomain: string | undefined;
  /** Whether a mailbox already has an access code (first-time setup when it has none). */
  readonly hasAccessCode: (domain: string, mailbox: string) => Promise<boolean | 'unavailable'>;
}

/**
 * Only what can be a name in the store is looked up there. A URI part with control characters
 * (a NUL byte, which Postgres refuses in text, arrives escaped as %00 or raw from a broken peer)
 * or a host that is no domain name cannot match a domain, number or extension: it is answered
 * like any unknown one, never with a store error.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;
const DOMAIN_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const USER_MAX = 64;

function storableUser(user: string | undefined): string | undefined {
  if (user === undefined || user === '' || user.length > USER_MAX || CONTROL.test(user)) return undefined;
  return user;
}

/**
 * The caller's extension as a trusted peer presents it: the P-Asserted-Identity user, else the
 * From user (RFC 3325 §9.1). A P-Asserted-Identity that is present but unusable names nobody (no
 * fallback to From). Calls and message-summary SUBSCRIBEs to an access number use the same rule.
 */
export function callerUser(assertedUser: string | undefined, fromUser: string | undefined): string | undefined {
  return assertedUser !== undefined ? storableUser(assertedUser) : storableUser(fromUser);
}

/** For the audit actor of an untrusted caller: visible, bounded, never a control character. */
function printable(text: string | undefined, fallback: string): string {
  if (text === undefined || text === '') return fallback;
  return [...text.slice(0, USER_MAX)].map((c) => (CONTROL.test(c) ? '?' : c)).join('');
}

/** Leaving a message: the mailbox, and its recorded greeting when it has one. */
function depositEntry(mailbox: MailboxRecord): Entry {
  return { kind: 'deposit', mailbox: mailbox.number, ...(mailbox.greetingKey !== null ? { greeting: mailbox.greetingKey } : {}) };
}

export class CallRouter {
  constructor(private readonly opts: RouterOptions) {}

  /** Throws (store unavailable) only when the database cannot be reached. */
  async route(a: CallAddressing): Promise<RouteResult> {
    const { db } = this.opts;
    const candidates = [a.requestHost, a.toHost, a.fromHost]
      .filter((h): h is string => h !== undefined && h !== '')
      .map((h) => h.toLowerCase())
      .filter((h) => h.length <= 253 && DOMAIN_NAME.test(h));
    let domain = await findDomain(db, candidates);
    if (domain === null && this.opts.defaultDomain !== undefined) domain = await findDomain(db, [this.opts.defaultDomain]);
    if (domain === null) return { kind: 'unknownDomain' };

    const number = storableUser(a.requestUser) ?? '';
    // RFC 3325 §5: a P-Asserted-Identity is only believed from inside the trust domain; so is
    // the From user. Outside it the caller is whoever types the right account number and code.
    const trusted = this.opts.trustedPeers.contains(a.sourceAddress);
    const identity = callerUser(a.assertedUser, a.fromUser);
    const actor = trusted && identity !== undefined
      ? `${identity}@${domain.name}`
      : `unverified:${printable(a.fromUser, 'anonymous')}@${printable(a.fromHost, 'unknown')} via ${a.sourceAddress}`;
    const caller: CallerId = {
      // Caller ID as presented: the asserted identity from a trusted peer, else the From user.
      number: printable(trusted ? identity : storableUser(a.fromUser), ''),
      name: a.fromDisplayName === undefined || a.fromDisplayName === '' ? null : printable(a.fromDisplayName, ''),
    };
    const base = { domain, actor, trusted, caller };

    if (number.toLowerCase().startsWith(DEPOSIT_PREFIX)) {
      const mailbox = await findMailbox(db, domain.id, number.slice(DEPOSIT_PREFIX.length));
      if (mailbox === null) return { kind: 'unknownNumber', domain: domain.name };
      return { kind: 'routed', call: { ...base, entry: depositEntry(mailbox) } };
    }

    const accessNumber = number === '' ? null : await findAccessNumber(db, domain.id, number);
    if (accessNumber === null) return { kind: 'unknownNumber', domain: domain.name };

    if (accessNumber.kind === 'autoAttendant') {
      const options = await listAutoAttendantOptions(db, domain.id, number);
      return {
        kind: 'routed',
        call: {
          ...base,
          entry: {
            kind: 'autoAttendant',
            options: options.map((o) => ({
              digit: o.digit as Digit,
              action: o.action === 'transfer' ? 'transfer' as const : 'voicemailLogin' as const,
              ...(o.target != null ? { target: o.target } : {}),
            })),
          },
        },
      };
    }

    // A call the PBX redirected to the voicemail number for someone who did not answer: deposit.
    const redirect = redirectTarget({ requestUri: a.requestUri, diversion: a.diversion ?? [], historyInfo: a.historyInfo ?? [] });
    if (redirect !== undefined) {
      const mailbox = await this.redirectedMailbox(domain.id, redirect.user);
      if (mailbox === null) return { kind: 'unknownNumber', domain: domain.name };
      return { kind: 'routed', call: { ...base, entry: depositEntry(mailbox) } };
    }

    if (trusted && identity !== undefined) {
      const mailbox = await findMailboxOwnedBy(db, domain.id, identity);
      if (mailbox !== null) {
        const has = await this.opts.hasAccessCode(domain.name, mailbox.number);
        // The access-code service counted its failed request already: this is the same failure.
        if (has === 'unavailable') throw markStoreErrorCounted(Object.assign(new Error('store unavailable'), { code: 'STORE_UNAVAILABLE' }));
        return { kind: 'routed', call: { ...base, entry: { kind: 'ownMailbox', mailbox: mailbox.number, firstTimeSetup: !has } } };
      }
    }
    return { kind: 'routed', call: { ...base, entry: { kind: 'accountNumber' } } };
  }

  /** The redirected-from user names a mailbox number, or an extension that owns one. */
  private async redirectedMailbox(domainId: number, user: string): Promise<MailboxRecord | null> {
    const name = storableUser(user.replace(/^\+/, ''));
    if (name === undefined) return null;
    return (await findMailbox(this.opts.db, domainId, name)) ?? findMailboxOwnedBy(this.opts.db, domainId, name);
  }
}
