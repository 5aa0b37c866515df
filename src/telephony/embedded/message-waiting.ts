/**
 * Message-waiting indication for the embedded engine, fed by the server's MwiBackend
 * (../message-summary.ts): the RFC 6665 / RFC 3842 notifier of ./mwi.ts (SUBSCRIBE answers,
 * NOTIFYs in the subscription dialogs, refresh, expiry) plus what the backend adds — which
 * mailbox a Request-URI names, count changes, and contacts that get NOTIFYs without subscribing.
 *
 * Only trusted peers subscribe (403 otherwise, the same TRUSTED_SIP_PEERS check as for INVITEs).
 * The number of live subscriptions is capped (503 beyond); there is no per-source cap because a
 * trusted peer is typically a PBX or proxy carrying every phone's subscription from one address.
 */
import type { Logger } from '../../log.js';
import {
  formatMessageSummary, messageAccount, MESSAGE_SUMMARY_CONTENT_TYPE, MESSAGE_SUMMARY_EVENT,
  type MailboxRef, type MwiBackend, type Subscriber,
} from '../message-summary.js';
import { MWI_EXPIRES, MWI_RETRY_AFTER_S, mailboxKey, type ExpiresPolicy } from '../mwi-policy.js';
import { MessageSummaryNotifier, type NotifierClock } from './mwi.js';
import { parseNameAddr, parseUri, type IncomingSubscribe, type SipEndpoint, type SipRequest } from './sip/index.js';

/** Live subscriptions at most (each holds a dialog and a timer); more SUBSCRIBEs get 503. */
export const MAX_MWI_SUBSCRIPTIONS = 10_000;

export interface MessageWaitingNotifierOptions {
  readonly endpoint: SipEndpoint;
  readonly backend: MwiBackend;
  /** Whether a source address is a trusted peer (TRUSTED_SIP_PEERS). */
  readonly isTrusted: (address: string) => boolean;
  readonly logger: Logger;
  /** Subscription durations (default MWI_EXPIRES: 3600 s default and maximum, 60 s minimum). */
  readonly expires?: Partial<ExpiresPolicy>;
  /** Default MAX_MWI_SUBSCRIPTIONS. */
  readonly maxSubscriptions?: number;
  /** Time and timers (tests). */
  readonly clock?: NotifierClock;
  /** Least time between two change NOTIFYs of one subscription, ms (./mwi.ts default 1000). */
  readonly minNotifyIntervalMs?: number;
}

/**
 * The user part of a name-addr header's URI (P-Asserted-Identity, From); undefined when absent or
 * unreadable. Shared with the engine, which reads an INVITE's asserted caller the same way.
 */
export function headerUser(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return parseUri(parseNameAddr(value).uri).user;
  } catch {
    return undefined;
  }
}

/** Who sent a SUBSCRIBE, read as the engine reads an INVITE's caller (P-Asserted-Identity, From). */
function subscriberOf(request: SipRequest): Subscriber {
  return { assertedUser: headerUser(request.get('p-asserted-identity')), fromUser: headerUser(request.get('from')) };
}

export class MessageWaitingNotifier {
  private readonly notifier: MessageSummaryNotifier;
  private readonly log: Logger;
  private readonly max: number;
  /** New SUBSCRIBEs between the endpoint and the notifier's resolve(): to answer 503 on a store error. */
  private readonly admitted = new WeakMap<SipRequest, IncomingSubscribe>();
  private readonly handler: (subscribe: IncomingSubscribe) => void;
  private closing: Promise<void> | undefined;

  /** Attaches to the endpoint (SUBSCRIBE in Allow, message-summary in Allow-Events) and to the backend's changes. */
  constructor(private readonly opts: MessageWaitingNotifierOptions) {
    this.log = opts.logger;
    this.max = opts.maxSubscriptions ?? MAX_MWI_SUBSCRIPTIONS;
    const expires = { ...MWI_EXPIRES, ...opts.expires };
    this.notifier = new MessageSummaryNotifier(opts.endpoint, {
      trusted: opts.isTrusted,
      resolve: (request) => this.resolve(request),
      counts: async (domain, mailbox) => {
        const counts = await opts.backend.counts({ domain, mailbox });
        return { new: counts.new, old: counts.saved };
      },
      logger: opts.logger,
      minExpires: expires.minS,
      maxExpires: expires.maxS,
      defaultExpires: expires.defaultS,
      ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
      ...(opts.minNotifyIntervalMs !== undefined ? { minNotifyIntervalMs: opts.minNotifyIntervalMs } : {}),
    });
    // The notifier just made itself the endpoint's SUBSCRIBE handler; the cap goes in front of it.
    const inner = opts.endpoint.onSubscribe;
    this.handler = (subscribe) => this.admit(subscribe, inner);
    opts.endpoint.onSubscribe = this.handler;
    opts.backend.onChanged((ref) => {
      if (this.closing === undefined) void this.mailboxChanged(ref);
    });
    // Changes may have been missed (the store's change feed reconnected): every mailbox with a
    // subscription or unsolicited contacts is told its counts again, once.
    opts.backend.onResync?.((mailboxes = []) => {
      if (this.closing !== undefined) return;
      const refs = new Map<string, MailboxRef>();
      for (const ref of this.notifier.mailboxes()) refs.set(mailboxKey(ref), ref);
      for (const ref of mailboxes) if (!refs.has(mailboxKey(ref))) refs.set(mailboxKey(ref), ref);
      for (const ref of refs.values()) void this.mailboxChanged(ref);
    });
  }

  /** Live subscriptions. */
  get subscriptions(): number {
    return this.notifier.size;
  }

  /**
   * The counts of a mailbox may have changed: every subscription to it (domain compared without
   * case, so tenants never see each other's mailboxes) gets a NOTIFY with the counts as they are
   * now, and so does every contact configured for unsolicited NOTIFYs. Never rejects.
   */
  async mailboxChanged(ref: MailboxRef): Promise<void> {
    let contacts: readonly string[] = [];
    try {
      contacts = this.opts.backend.unsolicitedContacts(ref);
    } catch (err) {
      this.log.warn({ err, domain: ref.domain, mailbox: ref.mailbox }, 'unsolicited MWI contacts unavailable');
    }
    await Promise.all([
      this.notifier.changed(ref.domain, ref.mailbox),
      contacts.length > 0 ? this.unsolicited(ref, contacts) : Promise.resolve(),
    ]);
  }

  /**
   * Ends every subscription (a last NOTIFY each, terminated;reason=noresource, RFC 6665 §4.2.2)
   * and stops taking SUBSCRIBE; resolves when those NOTIFYs were answered or gave up. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.opts.endpoint.onSubscribe === this.handler) this.opts.endpoint.onSubscribe = undefined;
    this.closing = this.notifier.close();
    return this.closing;
  }

  /** The cap, then the notifier's own checks (event package, trust, Accept, Expires, mailbox). */
  private admit(subscribe: IncomingSubscribe, inner: ((subscribe: IncomingSubscribe) => void) | undefined): void {
    if (inner === undefined || this.closing !== undefined) {
      subscribe.reject(503, 'Service Unavailable', { 'Retry-After': String(MWI_RETRY_AFTER_S) });
      return;
    }
    // Untrusted sources get their 403 from the notifier, whatever the load.
    if (this.opts.isTrusted(subscribe.source.address) && this.notifier.size >= this.max) {
      this.log.warn({ subscriptions: this.notifier.size }, 'message-summary SUBSCRIBE refused: too many subscriptions');
      // RFC 3261 §21.5.4: 503 with Retry-After for a temporary overload.
      subscribe.reject(503, 'Service Unavailable', { 'Retry-After': String(MWI_RETRY_AFTER_S) });
      return;
    }
    this.admitted.set(subscribe.request, subscribe);
    inner(subscribe);
  }

  /**
   * The mailbox a SUBSCRIBE is for: the user and host of its Request-URI, which names the
   * resource subscribed to (RFC 6665 §4.1.2.1; RFC 3842 §3.7: the messaging account).
   * When the store cannot answer, the SUBSCRIBE gets 503 with Retry-After here, and null tells the
   * notifier there is nothing to accept (its 404 finds the SUBSCRIBE already answered).
   */
  private async resolve(request: SipRequest): Promise<MailboxRef | null> {
    let user: string | undefined;
    let host: string;
    try {
      const uri = parseUri(request.uri);
      user = uri.user;
      host = uri.host;
    } catch {
      return null;
    }
    if (user === undefined || user === '') return null;
    try {
      return await this.opts.backend.resolve(user, host, subscriberOf(request));
    } catch (err) {
      this.log.error({ err }, 'message-summary SUBSCRIBE: mailbox lookup failed');
      this.admitted.get(request)?.reject(503, 'Service Unavailable', { 'Retry-After': String(MWI_RETRY_AFTER_S) });
      return null;
    }
  }

  /**
   * NOTIFYs outside any dialog to contacts that never subscribe ("unsolicited" MWI). Neither
   * RFC 3842 (whose §3.7–3.8 cover subscribed NOTIFYs only) nor RFC 6665 defines them, but
   * phones and PBXs commonly take them. RFC 6665 has every NOTIFY carry Subscription-State
   * (§8.2.3); with no subscription behind it we say "terminated", so that a UA applying RFC 6665
   * keeps no subscription state for it, rather than "active", which would announce one that can
   * be neither refreshed nor ended. Asterisk's res_pjsip_mwi sends its unsolicited MWI the same
   * way. One read of the counts serves every contact.
   */
  private async unsolicited(ref: MailboxRef, contacts: readonly string[]): Promise<void> {
    let body: string;
    try {
      body = formatMessageSummary(await this.opts.backend.counts(ref), messageAccount(ref));
    } catch (err) {
      this.log.warn({ err, domain: ref.domain, mailbox: ref.mailbox }, 'unsolicited MWI: counts unavailable');
      return;
    }
    await Promise.all(contacts.map(async (target) => {
      try {
        const status = await this.opts.endpoint.sendNotify({
          target,
          to: messageAccount(ref),
          event: MESSAGE_SUMMARY_EVENT,
          subscriptionState: 'terminated',
          body: { contentType: MESSAGE_SUMMARY_CONTENT_TYPE, content: body },
        });
        this.log.debug({ domain: ref.domain, mailbox: ref.mailbox, status }, 'unsolicited message-summary NOTIFY');
      } catch (err) {
        this.log.warn({ err, domain: ref.domain, mailbox: ref.mailbox }, 'unsolicited message-summary NOTIFY not sent');
      }
    }));
  }
}
