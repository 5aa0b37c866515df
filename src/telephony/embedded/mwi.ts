/**
 * Message-waiting indication for the embedded engine: the notifier side of the "message-summary"
 * event package (RFC 3842) over SIP-specific event notification (RFC 6665).
 *
 * A trusted peer (a phone behind the PBX, or the PBX itself) SUBSCRIBEs to a mailbox; we answer
 * 200 with the granted Expires, which creates a dialog, then NOTIFY the counts in that dialog at
 * once, on every change, on every refresh and a last time when the subscription ends. Counts can
 * also go out of any dialog to a configured contact ("unsolicited" NOTIFY).
 *
 * Log lines name the domain, the mailbox and the counts, nothing else.
 */
import {
  formatMessageSummary as formatSummaryBody, messageAccount, MESSAGE_SUMMARY_CONTENT_TYPE, MESSAGE_SUMMARY_EVENT,
} from '../message-summary.js';
import { FATAL_NOTIFY_STATUSES } from '../mwi-policy.js';
import type { Logger } from '../../log.js';
import type { Dialog, IncomingSubscribe, SipEndpoint, SipRequest, SipResponse } from './sip/index.js';
import { isLocalResponse } from './sip/index.js';

/** The event package name (RFC 3842 §3.1). */
export { MESSAGE_SUMMARY_EVENT };
/** The NOTIFY body type, default and mandatory for the package (RFC 3842 §3.5). */
export const SIMPLE_MESSAGE_SUMMARY = MESSAGE_SUMMARY_CONTENT_TYPE;

export interface MessageCounts {
  /** Messages not heard yet. */
  new: number;
  /** Messages heard and kept. */
  old: number;
}

export interface MailboxAddress {
  domain: string;
  mailbox: string;
}

/** Time and timers, injectable so tests can run an hour-long subscription in no time. */
export interface NotifierClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface MessageSummaryNotifierOptions {
  /** Whether a SUBSCRIBE from this source address may subscribe at all (others get 403). */
  trusted(address: string): boolean;
  /** The mailbox a SUBSCRIBE is for (its Request-URI, To...), or null for none (404). */
  resolve(request: SipRequest): Promise<MailboxAddress | null>;
  counts(domain: string, mailbox: string): Promise<MessageCounts>;
  logger: Logger;
  /** Default: Date.now and the global timers. */
  clock?: NotifierClock;
  /** Shortest subscription we take, seconds (default 60); shorter ones get 423 with Min-Expires. */
  minExpires?: number;
  /** Longest subscription we grant, seconds (default 3600); longer requests are cut to it. */
  maxExpires?: number;
  /** Duration of a SUBSCRIBE without Expires, seconds (default 3600, RFC 3842 §3.4). */
  defaultExpires?: number;
  /**
   * Least time between two NOTIFYs of one subscription that report a change, ms (default 1000):
   * RFC 3842 §3.11 (Rate of Notifications) wants the rate limited. NOTIFYs answering a SUBSCRIBE
   * and final ones do not wait for it.
   */
  minNotifyIntervalMs?: number;
}

const DEFAULT_MIN_EXPIRES_S = 60;
const DEFAULT_MAX_EXPIRES_S = 3600;
const DEFAULT_EXPIRES_S = 3600;
const DEFAULT_MIN_NOTIFY_INTERVAL_MS = 1000;
/** setTimeout holds at most 2**31-1 ms. */
const MAX_TIMER_S = Math.floor((2 ** 31 - 1) / 1000);
/** RFC 6665 §4.2.1.1 allows 423 only for durations under an hour. */
const MAX_MIN_EXPIRES_S = 3600;
/** How long a NOTIFY answered with an error and Retry-After may wait for its retry, at most. */
const MAX_RETRY_AFTER_S = 3600;

// Responses to a NOTIFY that end the subscription: mwi-policy.ts FATAL_NOTIFY_STATUSES (RFC 6665
// §4.2.2); the dialog itself already ends on 481 and 408 (RFC 3261 §12.2.1.2) and when the
// NOTIFY could not be sent.

const DEFAULT_CLOCK: NotifierClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Subscription-State reasons we use (RFC 6665 §4.2.2). */
type FinalReason = 'timeout' | 'noresource' | 'rejected';

interface Subscription {
  readonly dialog: Dialog;
  readonly domain: string;
  readonly mailbox: string;
  readonly key: string;
  /** The Event header of our NOTIFYs: the package and the SUBSCRIBE's id (RFC 6665 §8.2.1). */
  readonly event: string;
  readonly eventId: string | undefined;
  expiresAt: number;
  expiryTimer: unknown;
  /** Timer for the next NOTIFY that has to wait (rate limit, Retry-After). */
  waitTimer: unknown;
  /** Earliest time for a NOTIFY that reports a change. */
  notBefore: number;
  /** A NOTIFY with the current state is owed. */
  owed: boolean;
  /** The owed NOTIFY answers a SUBSCRIBE: "immediately", no waiting for notBefore (RFC 6665 §4.2.1.2). */
  immediate: boolean;
  /** Set: the next NOTIFY is the last one, Subscription-State terminated with this reason. */
  final: FinalReason | undefined;
  inFlight: boolean;
  gone: boolean;
  /** Resolved when a NOTIFY that started after they were added has been answered (or the subscription is gone). */
  waiters: Array<() => void>;
  readonly done: Promise<void>;
  resolveDone(): void;
}

interface CountsRead {
  running: Promise<MessageCounts>;
  queued: Promise<MessageCounts> | undefined;
}

/** The RFC 3842 body for a mailbox (telephony/message-summary.ts; "old" = saved). */
export function formatMessageSummary(account: MailboxAddress, counts: MessageCounts): string {
  return formatSummaryBody({ new: counts.new, saved: counts.old }, messageAccount(account));
}

/** sip:<mailbox>@<domain> (telephony/message-summary.ts). */
export const messageAccountUri = (account: MailboxAddress): string => messageAccount(account);

function mailboxKey(domain: string, mailbox: string): string {
  return JSON.stringify([domain.toLowerCase(), mailbox]);
}

/**
 * "If no Accept header field is present, it has a default value of
 * application/simple-message-summary"; one that is present has to allow it (RFC 3842 §3.3). An
 * empty Accept allows nothing (RFC 3261 §20.1), a range with q=0 does not count.
 */
function acceptsMessageSummary(request: SipRequest): boolean {
  const ranges = request.getAll('accept');
  if (ranges.length === 0) return true;
  return ranges.some((range) => {
    const [type = '', ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) return false;
    return type === SIMPLE_MESSAGE_SUMMARY || type === 'application/*' || type === '*/*';
  });
}

function retryAfterSeconds(response: SipResponse): number | undefined {
  const match = /^\s*([0-9]+)/.exec(response.get('retry-after') ?? '');
  return match ? Number(match[1]) : undefined;
}

export class MessageSummaryNotifier {
  private readonly clock: NotifierClock;
  private readonly logger: Logger;
  private readonly minExpires: number;
  private readonly maxExpires: number;
  private readonly defaultExpires: number;
  private readonly minNotifyIntervalMs: number;
  private readonly subscriptions = new Set<Subscription>();
  private readonly byMailbox = new Map<string, Set<Subscription>>();
  private readonly reads = new Map<string, CountsRead>();
  private readonly handler = (subscribe: IncomingSubscribe): void => this.receive(subscribe);
  private closing: Promise<void> | undefined;

  /**
   * Attaches to the endpoint: its onSubscribe handler becomes ours (SUBSCRIBE appears in Allow)
   * and message-summary is added to its Allow-Events (RFC 6665 §4.4.4).
   */
  constructor(
    private readonly endpoint: SipEndpoint,
    private readonly options: MessageSummaryNotifierOptions,
  ) {
    this.clock = options.clock ?? DEFAULT_CLOCK;
    this.logger = options.logger;
    this.minExpires = options.minExpires ?? DEFAULT_MIN_EXPIRES_S;
    this.maxExpires = options.maxExpires ?? DEFAULT_MAX_EXPIRES_S;
    this.defaultExpires = options.defaultExpires ?? DEFAULT_EXPIRES_S;
    this.minNotifyIntervalMs = options.minNotifyIntervalMs ?? DEFAULT_MIN_NOTIFY_INTERVAL_MS;
    const seconds = (value: number): boolean => Number.isInteger(value) && value > 0 && value <= MAX_TIMER_S;
    if (!seconds(this.minExpires) || this.minExpires > MAX_MIN_EXPIRES_S) throw new RangeError('minExpires must be 1..3600 s');
    if (!seconds(this.maxExpires) || this.maxExpires < this.minExpires) throw new RangeError('maxExpires must be at least minExpires');
    if (!seconds(this.defaultExpires)) throw new RangeError('defaultExpires must be a positive number of seconds');
    if (!(this.minNotifyIntervalMs >= 0)) throw new RangeError('minNotifyIntervalMs must not be negative');
    endpoint.onSubscribe = this.handler;
    if (!endpoint.allowEvents.includes(MESSAGE_SUMMARY_EVENT)) endpoint.allowEvents.push(MESSAGE_SUMMARY_EVENT);
  }

  /** Subscriptions that are active: accepted, and not ending or ended. */
  get size(): number {
    let active = 0;
    for (const sub of this.subscriptions) if (sub.final === undefined) active++;
    return active;
  }

  /**
   * The counts of a mailbox may have changed: every subscription to it gets a NOTIFY with the
   * counts read after this call. A subscription never has two NOTIFYs in flight (a later CSeq
   * overtaking an earlier one would be refused with 500, RFC 3261 §12.2.2): changes that come
   * while one is in flight are folded into one more NOTIFY, with the state as it is then.
   * Resolves once those NOTIFYs were answered; never rejects.
   */
  changed(domain: string, mailbox: string): Promise<void> {
    const subs = this.byMailbox.get(mailboxKey(domain, mailbox));
    if (!subs || subs.size === 0) return Promise.resolve();
    return Promise.all([...subs].map((sub) => this.owe(sub, false))).then(() => undefined);
  }

  /** The mailboxes with subscriptions, one each (for a resync: changed() on each tells them all). */
  mailboxes(): MailboxAddress[] {
    const all: MailboxAddress[] = [];
    for (const subs of this.byMailbox.values()) {
      const [sub] = subs;
      if (sub !== undefined) all.push({ domain: sub.domain, mailbox: sub.mailbox });
    }
    return all;
  }

  /**
   * Sends the current counts out of any dialog to `contactUri` (e.g. `sip:201@192.0.2.10:5060`),
   * for a mailbox configured with a contact that does not subscribe. Resolves with the final
   * status (408 without an answer, 503 when it could not be sent); rejects when the counts cannot
   * be read or the URI is not a SIP URI.
   */
  async unsolicited(contactUri: string, domain: string, mailbox: string): Promise<number> {
    const counts = await this.readCounts(domain, mailbox);
    const account = { domain, mailbox };
    // RFC 6665 has no NOTIFY without a subscription; the one we send claims an active one, which
    // is what phones that take unsolicited message-waiting expect.
    const status = await this.endpoint.sendNotify({
      target: contactUri,
      to: messageAccountUri(account),
      event: MESSAGE_SUMMARY_EVENT,
      subscriptionState: 'active',
      body: { contentType: SIMPLE_MESSAGE_SUMMARY, content: formatMessageSummary(account, counts) },
    });
    this.logger.debug({ domain, mailbox, new: counts.new, old: counts.old, status }, 'unsolicited message-summary NOTIFY');
    return status;
  }

  /**
   * Ends every subscription: a last NOTIFY with Subscription-State terminated;reason=noresource
   * each (best effort: whatever the answer, the subscription is gone), timers cleared, and the
   * endpoint no longer takes SUBSCRIBE. Call it before closing the endpoint.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.endpoint.onSubscribe === this.handler) this.endpoint.onSubscribe = undefined;
    const index = this.endpoint.allowEvents.indexOf(MESSAGE_SUMMARY_EVENT);
    if (index >= 0) this.endpoint.allowEvents.splice(index, 1);
    const subs = [...this.subscriptions];
    for (const sub of subs) this.terminate(sub, 'noresource');
    this.closing = Promise.all(subs.map((sub) => sub.done)).then(() => undefined);
    return this.closing;
  }

  // ---- SUBSCRIBE -----------------------------------------------------------------------------

  private receive(subscribe: IncomingSubscribe): void {
    this.receiveNew(subscribe).catch(() => {
      this.logger.error('message-summary SUBSCRIBE handling failed');
      if (subscribe.pending) subscribe.reject(500, 'Server Internal Error');
    });
  }

  /**
   * A new SUBSCRIBE (RFC 6665 §4.2.1.1): the package first ("If not, the notifier SHOULD return
   * a 489 (Bad Event) response"), then who asks (§4.2.1.3), the body type (RFC 3842 §3.3), the
   * duration, and the mailbox.
   */
  private async receiveNew(subscribe: IncomingSubscribe): Promise<void> {
    if (this.closing) {
      subscribe.reject(503, 'Service Unavailable');
      return;
    }
    if (!this.checkCommon(subscribe)) return;
    const granted = this.grant(subscribe);
    if (granted === undefined) return;
    const mailbox = await this.options.resolve(subscribe.request);
    if (!mailbox) {
      subscribe.reject(404, 'Not Found');
      return;
    }
    if (this.closing) {
      subscribe.reject(503, 'Service Unavailable');
      return;
    }
    if (!subscribe.pending) return; // the transaction gave up while the mailbox was looked up
    const event = subscribe.event;
    const dialog = subscribe.accept(granted);
    const sub = this.add(dialog, mailbox, event?.id);
    if (granted === 0) {
      // "an immediate fetch without a persistent subscription may be effected by sending a
      // SUBSCRIBE with an "Expires" of 0" (RFC 6665 §4.4.3): one NOTIFY with the state, terminated.
      this.logger.debug({ domain: mailbox.domain, mailbox: mailbox.mailbox }, 'message-summary fetch');
      this.terminate(sub, 'timeout');
      return;
    }
    this.logger.debug({ domain: mailbox.domain, mailbox: mailbox.mailbox }, 'message-summary subscription created');
    this.arm(sub, granted);
    // "Upon successfully accepting or refreshing a subscription, notifiers MUST send a NOTIFY
    // request immediately to communicate the current resource state to the subscriber." (RFC
    // 6665 §4.2.1.2)
    void this.owe(sub, true);
  }

  /**
   * A SUBSCRIBE in the subscription's dialog (RFC 6665 §4.2.1.4 on the notifier's side): a
   * refresh with Expires > 0 re-arms the expiry and is answered by a NOTIFY; Expires 0 ends the
   * subscription with a last NOTIFY, terminated;reason=timeout (RFC 6665 §4.1.2.3). A rejected
   * refresh leaves the subscription running (RFC 6665 §4.1.2.2).
   */
  private receiveRefresh(sub: Subscription, subscribe: IncomingSubscribe): void {
    if (sub.gone || sub.final !== undefined) {
      subscribe.reject(481, 'Subscription Does Not Exist');
      return;
    }
    if (!this.checkCommon(subscribe)) {
      // "assuming that the subscriber is still authorized" (RFC 6665 §4.2.1.4): one that is no
      // longer is told so, and the subscription ends (reason "rejected", §4.2.2).
      if (!this.options.trusted(subscribe.source.address)) this.terminate(sub, 'rejected');
      return;
    }
    if (subscribe.event?.id !== sub.eventId) {
      // Another subscription in this dialog (dialog sharing, RFC 6665 §4.5.2): we keep one per dialog.
      subscribe.reject(403, 'Forbidden');
      return;
    }
    const granted = this.grant(subscribe);
    if (granted === undefined) return;
    try {
      subscribe.accept(granted);
    } catch {
      return; // the dialog ended meanwhile: 'terminated' removes the subscription
    }
    if (granted === 0) {
      this.logger.debug({ domain: sub.domain, mailbox: sub.mailbox }, 'message-summary unsubscribe');
      this.terminate(sub, 'timeout');
      return;
    }
    this.arm(sub, granted);
    void this.owe(sub, true);
  }

  /** Event, trust and Accept checks; false when the SUBSCRIBE was rejected. */
  private checkCommon(subscribe: IncomingSubscribe): boolean {
    // The Event header must name our package (RFC 6665 §8.2.1); Allow-Events says what we take
    // (§4.4.4), and is what tells the subscriber which package to ask for instead.
    if (subscribe.event?.type !== MESSAGE_SUMMARY_EVENT) {
      subscribe.reject(489, 'Bad Event', { 'Allow-Events': MESSAGE_SUMMARY_EVENT });
      return false;
    }
    // "The notifier SHOULD also perform any necessary authentication and authorization per its
    // local policy" (RFC 6665 §4.2.1.1, §4.2.1.3); ours is a list of trusted peers.
    if (!this.options.trusted(subscribe.source.address)) {
      this.logger.debug('message-summary SUBSCRIBE from an untrusted source: 403');
      subscribe.reject(403, 'Forbidden');
      return false;
    }
    if (!acceptsMessageSummary(subscribe.request)) {
      // RFC 3261 §21.4.7: we could only send what the Accept leaves out.
      subscribe.reject(406, 'Not Acceptable', { Accept: SIMPLE_MESSAGE_SUMMARY });
      return false;
    }
    return true;
  }

  /**
   * The duration to grant, seconds, or undefined after a 423. Without Expires, the package
   * default (RFC 6665 §3.1.1, RFC 3842 §3.4). Between 0 and our minimum: "the notifier MAY return
   * a 423 (Interval Too Brief) error that contains a "Min-Expires" header field" (RFC 6665
   * §4.2.1.1; §4.2.1.4 for refreshes). Longer than our maximum: shortened, which a notifier may
   * do but never lengthen (RFC 6665 §3.1.1).
   */
  private grant(subscribe: IncomingSubscribe): number | undefined {
    const asked = subscribe.expires;
    if (asked === undefined) return Math.min(this.defaultExpires, this.maxExpires);
    if (asked === 0) return 0;
    if (asked < this.minExpires) {
      subscribe.reject(423, 'Interval Too Brief', { 'Min-Expires': String(this.minExpires) });
      return undefined;
    }
    return Math.min(asked, this.maxExpires);
  }

  // ---- subscriptions -------------------------------------------------------------------------

  private add(dialog: Dialog, mailbox: MailboxAddress, eventId: string | undefined): Subscription {
    let resolveDone: () => void = () => {};
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const sub: Subscription = {
      dialog,
      domain: mailbox.domain,
      mailbox: mailbox.mailbox,
      key: mailboxKey(mailbox.domain, mailbox.mailbox),
      event: eventId === undefined ? MESSAGE_SUMMARY_EVENT : `${MESSAGE_SUMMARY_EVENT};id=${eventId}`,
      eventId,
      expiresAt: this.clock.now(),
      expiryTimer: undefined,
      waitTimer: undefined,
      notBefore: 0,
      owed: false,
      immediate: false,
      final: undefined,
      inFlight: false,
      gone: false,
      waiters: [],
      done,
      resolveDone,
    };
    this.subscriptions.add(sub);
    let subs = this.byMailbox.get(sub.key);
    if (!subs) this.byMailbox.set(sub.key, (subs = new Set()));
    subs.add(sub);
    dialog.on('subscribe', (subscribe: IncomingSubscribe) => this.receiveRefresh(sub, subscribe));
    // However the dialog ends (a BYE, a 481/408 to a NOTIFY, a transport failure, the endpoint
    // closing), the subscription ends with it.
    dialog.on('terminated', () => this.remove(sub));
    return sub;
  }

  /** (Re-)arms the expiry: without a refresh in time the subscription ends (RFC 6665 §4.2.1.4). */
  private arm(sub: Subscription, seconds: number): void {
    if (sub.expiryTimer !== undefined) this.clock.clearTimeout(sub.expiryTimer);
    sub.expiresAt = this.clock.now() + seconds * 1000;
    sub.expiryTimer = this.clock.setTimeout(() => {
      sub.expiryTimer = undefined;
      // "If no refresh for a notification address is received before its expiration time, the
      // subscription is removed. When removing a subscription, the notifier SHOULD send a NOTIFY
      // request with a "Subscription-State" value of "terminated" ... "reason=timeout"" (RFC
      // 6665 §4.2.1.4)
      this.logger.debug({ domain: sub.domain, mailbox: sub.mailbox }, 'message-summary subscription expired');
      this.terminate(sub, 'timeout');
    }, seconds * 1000);
  }

  /** Owes the subscriber a NOTIFY with the current state; resolves once one was answered. */
  private owe(sub: Subscription, immediate: boolean): Promise<void> {
    if (sub.gone) return Promise.resolve();
    return new Promise<void>((resolve) => {
      sub.waiters.push(resolve);
      sub.owed = true;
      if (immediate) sub.immediate = true;
      this.pump(sub);
    });
  }

  /** The next NOTIFY is the last one. */
  private terminate(sub: Subscription, reason: FinalReason): void {
    if (sub.gone || sub.final !== undefined) return;
    sub.final = reason;
    if (sub.expiryTimer !== undefined) this.clock.clearTimeout(sub.expiryTimer);
    sub.expiryTimer = undefined;
    this.pump(sub);
  }

  /** Sends the next NOTIFY when one is owed and none is in flight. */
  private pump(sub: Subscription): void {
    if (sub.gone || sub.inFlight) return;
    if (sub.final === undefined && !sub.owed) return;
    if (sub.waitTimer !== undefined) {
      this.clock.clearTimeout(sub.waitTimer);
      sub.waitTimer = undefined;
    }
    const wait = sub.notBefore - this.clock.now();
    if (sub.final === undefined && !sub.immediate && wait > 0) {
      sub.waitTimer = this.clock.setTimeout(() => {
        sub.waitTimer = undefined;
        this.pump(sub);
      }, wait);
      return;
    }
    const final = sub.final;
    const waiters = sub.waiters;
    sub.waiters = [];
    sub.owed = false;
    sub.immediate = false;
    sub.inFlight = true;
    void this.notify(sub, final).finally(() => {
      sub.inFlight = false;
      for (const wake of waiters) wake();
      this.pump(sub);
    });
  }

  /** One NOTIFY in the dialog (RFC 6665 §4.2.2), and what its answer means for the subscription. */
  private async notify(sub: Subscription, final: FinalReason | undefined): Promise<void> {
    let counts: MessageCounts | undefined;
    // noresource / rejected: there is no state left to report.
    if (final === undefined || final === 'timeout') {
      try {
        counts = await this.readCounts(sub.domain, sub.mailbox);
      } catch {
        // Without counts the NOTIFY still goes, with no body (the subscriber waits for one, and
        // it "MAY contain an empty or neutral body", RFC 6665 §4.2.1.2); the counts follow with
        // the next change or refresh.
        this.logger.warn({ domain: sub.domain, mailbox: sub.mailbox }, 'message-summary counts unavailable');
      }
    }
    if (sub.gone) return;
    // "active" carries the time left (RFC 6665 §4.2.2: expires parameter).
    const remaining = Math.max(0, Math.floor((sub.expiresAt - this.clock.now()) / 1000));
    const state = final === undefined ? `active;expires=${remaining}` : `terminated;reason=${final}`;
    let response: SipResponse;
    try {
      response = await sub.dialog.request('NOTIFY', {
        headers: { Event: sub.event, 'Subscription-State': state },
        ...(counts ? { body: { contentType: SIMPLE_MESSAGE_SUMMARY, content: formatMessageSummary(sub, counts) } } : {}),
      });
    } catch {
      this.remove(sub); // the dialog was over before the NOTIFY could go
      return;
    }
    sub.notBefore = this.clock.now() + this.minNotifyIntervalMs;
    const status = response.status;
    this.logger.debug(
      { domain: sub.domain, mailbox: sub.mailbox, ...(counts ? { new: counts.new, old: counts.old } : {}), status },
      final === undefined ? 'message-summary NOTIFY' : 'message-summary final NOTIFY',
    );
    if (final !== undefined) {
      // The NOTIFY with "terminated" destroys the subscription, and with it the dialog (RFC
      // 6665 §4.4.1), whatever the answer.
      this.finish(sub);
      return;
    }
    if (status < 300) return;
    if (sub.gone || FATAL_NOTIFY_STATUSES.has(status) || isLocalResponse(response)) {
      this.logger.info({ domain: sub.domain, mailbox: sub.mailbox, status }, 'message-summary subscription dropped: NOTIFY failed');
      this.finish(sub);
      return;
    }
    // Another error leaves the subscription in place. With Retry-After the state is sent again
    // then; without, the next change or refresh brings it.
    const retry = retryAfterSeconds(response);
    if (retry !== undefined) {
      sub.owed = true;
      sub.notBefore = this.clock.now() + Math.min(retry, MAX_RETRY_AFTER_S) * 1000;
    }
  }

  /** Removes the subscription and ends its dialog (no BYE: it has no session). */
  private finish(sub: Subscription): void {
    this.remove(sub);
    sub.dialog.end();
  }

  private remove(sub: Subscription): void {
    if (sub.gone) return;
    sub.gone = true;
    if (sub.final === undefined) sub.final = 'noresource';
    if (sub.expiryTimer !== undefined) this.clock.clearTimeout(sub.expiryTimer);
    if (sub.waitTimer !== undefined) this.clock.clearTimeout(sub.waitTimer);
    sub.expiryTimer = undefined;
    sub.waitTimer = undefined;
    this.subscriptions.delete(sub);
    const subs = this.byMailbox.get(sub.key);
    subs?.delete(sub);
    if (subs?.size === 0) this.byMailbox.delete(sub.key);
    const waiters = sub.waiters;
    sub.waiters = [];
    for (const wake of waiters) wake();
    sub.resolveDone();
  }

  /**
   * The counts of a mailbox, read after this call: one read at a time per mailbox, and callers
   * that come while one runs share the one read queued after it (a burst of changes, or several
   * phones on one mailbox, costs two reads, not one per caller).
   */
  private readCounts(domain: string, mailbox: string): Promise<MessageCounts> {
    const key = mailboxKey(domain, mailbox);
    const current = this.reads.get(key);
    if (current?.queued) return current.queued;
    const start = (entry: CountsRead | undefined): Promise<MessageCounts> => {
      const read = Promise.resolve().then(() => this.options.counts(domain, mailbox));
      const next: CountsRead = entry ?? { running: read, queued: undefined };
      next.running = read;
      this.reads.set(key, next);
      const settle = (): void => {
        if (next.running === read && next.queued === undefined && this.reads.get(key) === next) this.reads.delete(key);
      };
      read.then(settle, settle);
      return read;
    };
    if (!current) return start(undefined);
    const queued = current.running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        current.queued = undefined;
        return start(current);
      });
    current.queued = queued;
    return queued;
  }
}
