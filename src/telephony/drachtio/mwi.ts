/**
 * Message-waiting indication on the drachtio engine: vmaccess as the notifier of RFC 3842
 * `message-summary` subscriptions (RFC 6665), over drachtio-srf 5.0.29 (pinned):
 *
 * - `srf.subscribe()` routes new SUBSCRIBEs here; each is screened by the shared rules of
 *   ../mwi-policy.ts (403 untrusted, 489 other package, 423 too brief, …), its Request-URI
 *   resolved to a mailbox (404 none, 503 + Retry-After when the store fails) and accepted with
 *   `srf.createUAS()`, which makes drachtio-server keep the dialog; the first NOTIFY follows.
 * - In-dialog SUBSCRIBEs arrive as the dialog's `subscribe` (refresh) and `unsubscribe`
 *   (Expires: 0, already answered by drachtio-srf) events (lib/dialog.js, Dialog#handle);
 *   NOTIFYs go out with `dialog.request()` through drachtio-server.
 * - A mailbox change (MwiBackend.onChanged) NOTIFYs each live subscription of that mailbox once,
 *   with counts read after the change, and sends out-of-dialog NOTIFYs (`srf.request()`) to the
 *   mailbox's unsolicited contacts.
 *
 * Nothing here throws into drachtio-srf: every failure becomes a SIP answer or a log line.
 */
import type { Logger } from '../../log.js';
import {
  MESSAGE_SUMMARY_CONTENT_TYPE, MESSAGE_SUMMARY_EVENT, formatMessageSummary, messageAccount,
  type MailboxCounts, type MailboxRef, type MwiBackend, type Subscriber,
} from '../message-summary.js';
import {
  MWI_EXPIRES, MWI_RETRY_AFTER_S, SHUTDOWN_REASON, mailboxKey, notifyEndsSubscription, remainingSeconds,
  sameMailbox, screenSubscribe, subscriptionStateHeader,
  type ExpiresPolicy, type SubscriptionState, type TerminationReason,
} from '../mwi-policy.js';
import { headerUri, uriOf } from './addressing.js';
import type { SrfApp, SrfDialog, SrfRequest, SrfResponse, SrfSipMessage } from './drachtio-types.js';

export interface DrachtioMwiOptions {
  readonly srf: SrfApp;
  readonly backend: MwiBackend;
  /** TRUSTED_SIP_PEERS, applied to drachtio-server's report of the packet source. */
  readonly isTrusted: (address: string) => boolean;
  readonly logger: Logger;
  /** Subscription durations (tests shorten them); RFC defaults otherwise. */
  readonly expires?: Partial<ExpiresPolicy>;
}

interface Subscription {
  readonly dialog: SrfDialog;
  readonly ref: MailboxRef;
  /** The SUBSCRIBE's Event header exactly as sent: every NOTIFY echoes it (RFC 6665 §8.2.1, `id`). */
  readonly event: string;
  readonly log: Logger;
  expiresAt: number;
  timer: NodeJS.Timeout | undefined;
  /** NOTIFYs of one subscription leave one after another, so their order is the order of the state. */
  queue: Promise<void>;
  /** A terminating NOTIFY is on its way (or the subscription is gone): nothing else is sent. */
  ended: boolean;
}

/** How long drain/close wait for the subscribers' answers to the last NOTIFYs. */
const FINAL_NOTIFY_WAIT_MS = 2000;
/** drachtio-server answers an unanswered request itself with 408 after Timer F (32 s). */
const UNSOLICITED_RESPONSE_WAIT_MS = 40_000;

/**
 * drachtio-srf's createUAS answers a SUBSCRIBE with 202 (lib/srf.js, `res.send(req.method ===
 * 'INVITE' ? 200 : 202, …)`), which RFC 6665 §8.3.1 deprecates: notifiers answer 200. The 202 is
 * turned into 200 on this one response object; everything else about the send is srf's own.
 */
function answeringWith200(res: SrfResponse): SrfResponse {
  const target = res as unknown as { send: (...args: unknown[]) => void };
  const send = target.send.bind(res);
  target.send = (status: unknown, ...rest: unknown[]) => send(status === 202 ? 200 : status, ...rest);
  return res;
}

/** `Event`, or its compact form `o` (RFC 6665 §8.2.1), which drachtio-srf's parser does not fold. */
function eventOf(req: SrfRequest): string | undefined {
  return req.get('Event') ?? req.get('o');
}

function hasToTag(req: SrfRequest): boolean {
  try {
    return req.getParsedHeader('to').params.tag !== undefined;
  } catch {
    return false;
  }
}

/** Who sent a SUBSCRIBE, read as ./addressing.ts reads an INVITE's caller. */
function subscriberOf(req: SrfRequest): Subscriber {
  return {
    assertedUser: headerUri(req, 'p-asserted-identity')?.user ?? undefined,
    fromUser: headerUri(req, 'from')?.user ?? undefined,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export class DrachtioMwi {
  readonly #srf: SrfApp;
  readonly #backend: MwiBackend;
  readonly #log: Logger;
  readonly #policy: ExpiresPolicy;
  readonly #subs = new Set<Subscription>();
  /** Mailboxes whose NOTIFY round is running; `true` once another change came in meanwhile. */
  readonly #rounds = new Map<string, { again: boolean }>();
  /** Changes seen per mailbox, so a subscription set up across a change catches up. */
  readonly #generation = new Map<string, number>();
  #accepting = true;
  #closed = false;
  #terminating: Promise<void> | null = null;

  constructor(private readonly opts: DrachtioMwiOptions) {
    this.#srf = opts.srf;
    this.#backend = opts.backend;
    this.#log = opts.logger.child({ component: 'mwi' });
    this.#policy = { ...MWI_EXPIRES, ...opts.expires };
  }

  /** Live subscriptions (for tests and reports). */
  get subscriptions(): number {
    return this.#subs.size;
  }

  /** Before `srf.connect()`: the `subscribe` route is then asked for with `invite`'s. */
  register(): void {
    this.#srf.subscribe((req, res) => {
      this.#onSubscribe(req, res).catch((err: unknown) => {
        this.#log.error({ err }, 'SUBSCRIBE handling failed');
        this.#reject(res, 500);
      });
    });
    this.#backend.onChanged((ref) => this.#changed(ref));
    // Changes may have been missed (the store's change feed reconnected): every mailbox with a
    // live subscription or unsolicited contacts is told its counts again, once.
    this.#backend.onResync?.((mailboxes = []) => {
      const refs = new Map<string, MailboxRef>();
      for (const sub of this.#subs) refs.set(mailboxKey(sub.ref), sub.ref);
      for (const ref of mailboxes) if (!refs.has(mailboxKey(ref))) refs.set(mailboxKey(ref), ref);
      for (const ref of refs.values()) this.#changed(ref);
    });
  }

  /**
   * Stops taking subscriptions (new SUBSCRIBEs then go to other apps on the same drachtio-server,
   * or get 503) and ends the live ones with a last NOTIFY. Does not wait for the answers.
   */
  drain(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    try {
      this.#srf.unregisterForMessages('subscribe');
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'could not withdraw the SUBSCRIBE route');
    }
    this.#terminating = this.#terminateAll(SHUTDOWN_REASON);
  }

  /** Drains if not yet done and waits (a little) for the last NOTIFYs to be answered. */
  async close(): Promise<void> {
    this.drain();
    await Promise.race([this.#terminating, sleep(FINAL_NOTIFY_WAIT_MS)]);
    this.#closed = true;
    for (const sub of this.#subs) this.#forget(sub);
  }

  // --- new subscriptions ------------------------------------------------------------------------

  #reject(res: SrfResponse, status: number, headers: Readonly<Record<string, string>> = {}): void {
    if (res.finalResponseSent) return;
    try {
      res.send(status, { headers: { ...headers } });
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'SUBSCRIBE answer not sent');
    }
  }

  async #onSubscribe(req: SrfRequest, res: SrfResponse): Promise<void> {
    const log = this.#log.child({ callId: req.get('Call-ID') ?? '' });
    const retryAfter = { 'Retry-After': String(MWI_RETRY_AFTER_S) };
    if (!this.#accepting) {
      this.#reject(res, 503, retryAfter);
      return;
    }
    const verdict = screenSubscribe({
      trusted: this.opts.isTrusted(req.source_address),
      event: eventOf(req),
      expires: req.get('Expires'),
      accept: req.get('Accept'),
      hasContact: req.has('Contact'),
      unknownDialog: hasToTag(req),
    }, this.#policy);
    if (verdict.kind === 'reject') {
      // 403s at debug: anyone on the network can send SUBSCRIBEs, and they cost nothing else.
      const level = verdict.status === 403 ? 'debug' : 'info';
      log[level]({ status: verdict.status, why: verdict.why, source: req.source_address }, 'SUBSCRIBE refused');
      this.#reject(res, verdict.status, verdict.headers);
      return;
    }
    const target = uriOf(req.uri);
    if (target?.user === undefined || target.user === '' || target.host === undefined || target.host === '') {
      log.info({ status: 404 }, 'SUBSCRIBE refused: no mailbox in the Request-URI');
      this.#reject(res, 404);
      return;
    }

    let ref: MailboxRef | null;
    let counts: MailboxCounts;
    let generation: number;
    try {
      ref = await this.#backend.resolve(target.user, target.host, subscriberOf(req));
      if (ref === null) {
        log.info({ status: 404 }, 'SUBSCRIBE refused: no such mailbox');
        this.#reject(res, 404);
        return;
      }
      generation = this.#generation.get(mailboxKey(ref)) ?? 0;
      counts = await this.#backend.counts(ref);
    } catch (err) {
      log.error({ err }, 'SUBSCRIBE refused: mailbox store unavailable');
      this.#reject(res, 503, retryAfter);
      return;
    }
    if (!this.#accepting) {
      this.#reject(res, 503, retryAfter);
      return;
    }

    const { expiresS } = verdict;
    let dialog: SrfDialog;
    try {
      // RFC 6665 §4.2.1.1: the 200 carries the granted duration.
      dialog = await this.#srf.createUAS(req, answeringWith200(res), { headers: { Expires: String(expiresS) } });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'SUBSCRIBE not accepted');
      return;
    }
    const sub: Subscription = {
      dialog, ref, event: eventOf(req) ?? MESSAGE_SUMMARY_EVENT,
      log: log.child({ domain: ref.domain, mailbox: ref.mailbox }),
      expiresAt: Date.now() + expiresS * 1000, timer: undefined, queue: Promise.resolve(), ended: false,
    };
    if (expiresS === 0) {
      // A fetch (RFC 6665 §4.4.3): one NOTIFY with the state, and the subscription is over.
      sub.log.info('message-summary fetched');
      void this.#end(sub, 'timeout', counts);
      return;
    }
    this.#subs.add(sub);
    this.#arm(sub, expiresS);
    dialog.on('subscribe', (refresh: SrfRequest, refreshRes: SrfResponse) => {
      this.#onRefresh(sub, refresh, refreshRes).catch((err: unknown) => {
        sub.log.error({ err }, 'SUBSCRIBE refresh failed');
        this.#reject(refreshRes, 500);
      });
    });
    // drachtio-srf has already answered the Expires: 0 SUBSCRIBE (202) before this event.
    dialog.on('unsubscribe', () => { void this.#unsubscribed(sub); });
    dialog.on('destroy', () => this.#forget(sub));
    sub.log.info({ expiresS }, 'message-summary subscription accepted');
    // RFC 6665 §4.2.1.2: a NOTIFY right after the 200, with the current state.
    void this.#notify(sub, null, counts);
    // A change between reading the counts and now would otherwise go unnoticed until the refresh.
    if ((this.#generation.get(mailboxKey(ref)) ?? 0) !== generation) this.#changed(ref);
  }

  // --- refresh, unsubscribe, expiry -------------------------------------------------------------

  async #onRefresh(sub: Subscription, req: SrfRequest, res: SrfResponse): Promise<void> {
    if (sub.ended) {
      this.#reject(res, 481);
      return;
    }
    const verdict = screenSubscribe({
      trusted: this.opts.isTrusted(req.source_address),
      event: eventOf(req), expires: req.get('Expires'), accept: req.get('Accept'), hasContact: true,
    }, this.#policy);
    if (verdict.kind === 'reject') {
      // RFC 6665 §4.1.2.2: a refused refresh leaves the subscription as it was until it expires.
      sub.log.info({ status: verdict.status, why: verdict.why }, 'SUBSCRIBE refresh refused');
      this.#reject(res, verdict.status, verdict.headers);
      return;
    }
    let counts: MailboxCounts;
    try {
      counts = await this.#backend.counts(sub.ref);
    } catch (err) {
      sub.log.error({ err }, 'SUBSCRIBE refresh refused: mailbox store unavailable');
      this.#reject(res, 503, { 'Retry-After': String(MWI_RETRY_AFTER_S) });
      return;
    }
    if (sub.ended) {
      this.#reject(res, 481);
      return;
    }
    res.send(200, { headers: { Expires: String(verdict.expiresS) } });
    if (verdict.expiresS === 0) {
      // drachtio-srf routes `Expires: 0` to 'unsubscribe'; an Expires it reads otherwise lands here.
      void this.#end(sub, 'timeout', counts);
      return;
    }
    this.#arm(sub, verdict.expiresS);
    // RFC 6665 §4.2.1.4: a refresh is confirmed with a NOTIFY, like the first SUBSCRIBE.
    void this.#notify(sub, null, counts);
  }

  async #unsubscribed(sub: Subscription): Promise<void> {
    if (sub.ended) return;
    sub.log.info('message-summary subscription ended by the subscriber');
    // RFC 6665 §4.1.2.3 / §4.2.1.4: the final NOTIFY, with the state when it can be read.
    const counts = await this.#backend.counts(sub.ref).catch(() => null);
    await this.#end(sub, 'timeout', counts);
  }

  #arm(sub: Subscription, expiresS: number): void {
    clearTimeout(sub.timer);
    sub.expiresAt = Date.now() + expiresS * 1000;
    sub.timer = setTimeout(() => {
      sub.log.info('message-summary subscription expired');
      void this.#end(sub, 'timeout', null);
    }, expiresS * 1000);
    sub.timer.unref();
  }

  /** The last NOTIFY (terminated); the subscription is gone once it is answered, or failed. */
  #end(sub: Subscription, reason: TerminationReason, counts: MailboxCounts | null): Promise<void> {
    if (sub.ended) return sub.queue;
    const done = this.#notify(sub, reason, counts);
    sub.ended = true;
    clearTimeout(sub.timer);
    return done;
  }

  #forget(sub: Subscription): void {
    sub.ended = true;
    clearTimeout(sub.timer);
    this.#subs.delete(sub);
    // drachtio-srf drops the dialog itself after a terminating NOTIFY's response (lib/dialog.js,
    // Dialog#request) when its subscription bookkeeping matches; make sure either way.
    this.#srf.removeDialog(sub.dialog);
  }

  #terminateAll(reason: TerminationReason): Promise<void> {
    const all = [...this.#subs];
    if (all.length > 0) this.#log.info({ subscriptions: all.length, reason }, 'ending message-summary subscriptions');
    return Promise.all(all.map((sub) => this.#end(sub, reason, null))).then(() => undefined);
  }

  // --- NOTIFY -----------------------------------------------------------------------------------

  /**
   * Queues a NOTIFY on the subscription: `active` (its expiry counted down to when the NOTIFY
   * actually leaves) when `end` is null, else `terminated;reason=<end>`. The body is left out
   * only when the counts could not be read for a terminating NOTIFY.
   */
  #notify(sub: Subscription, end: TerminationReason | null, counts: MailboxCounts | null): Promise<void> {
    if (sub.ended) return sub.queue;
    sub.queue = sub.queue.then(() => this.#sendNotify(sub, end, counts));
    return sub.queue;
  }

  async #sendNotify(sub: Subscription, end: TerminationReason | null, counts: MailboxCounts | null): Promise<void> {
    if (this.#closed) return;
    const terminating = end !== null;
    if (!terminating && sub.ended) return;
    const state: SubscriptionState = end === null
      ? { state: 'active', expiresS: remainingSeconds(sub.expiresAt, Date.now()) }
      : { state: 'terminated', reason: end };
    try {
      const response = await sub.dialog.request({
        method: 'NOTIFY',
        headers: {
          Event: sub.event,
          'Subscription-State': subscriptionStateHeader(state),
          ...(counts !== null ? { 'Content-Type': MESSAGE_SUMMARY_CONTENT_TYPE } : {}),
        },
        ...(counts !== null ? { body: formatMessageSummary(counts, messageAccount(sub.ref)) } : {}),
      });
      if (terminating) {
        this.#forget(sub);
      } else if (notifyEndsSubscription(response.status)) {
        sub.log.info({ status: response.status }, 'NOTIFY refused: message-summary subscription dropped');
        this.#forget(sub);
      } else if (response.status >= 300) {
        sub.log.warn({ status: response.status }, 'NOTIFY refused');
      }
    } catch (err) {
      // The dialog is gone at drachtio-server (ENODIALOG) or the connection is down.
      sub.log.info({ err: (err as Error).message }, 'NOTIFY not sent: message-summary subscription dropped');
      this.#forget(sub);
    }
  }

  // --- mailbox changes --------------------------------------------------------------------------

  #changed(ref: MailboxRef): void {
    if (this.#closed) return;
    const key = mailboxKey(ref);
    this.#generation.set(key, (this.#generation.get(key) ?? 0) + 1);
    const running = this.#rounds.get(key);
    if (running !== undefined) {
      // One more round once this one has its counts: changes in between collapse into it.
      running.again = true;
      return;
    }
    const round = { again: false };
    this.#rounds.set(key, round);
    void (async () => {
      try {
        do {
          round.again = false;
          await this.#notifyMailbox(ref);
        } while (round.again && !this.#closed);
      } catch (err) {
        this.#log.error({ err }, 'message-summary notification failed');
      } finally {
        this.#rounds.delete(key);
      }
    })();
  }

  async #notifyMailbox(ref: MailboxRef): Promise<void> {
    let contacts: readonly string[] = [];
    try {
      contacts = this.#accepting ? this.#backend.unsolicitedContacts(ref) : [];
    } catch (err) {
      this.#log.warn({ err, domain: ref.domain, mailbox: ref.mailbox }, 'unsolicited MWI contacts unavailable');
    }
    if (contacts.length === 0 && ![...this.#subs].some((s) => sameMailbox(s.ref, ref))) return;
    let counts: MailboxCounts;
    try {
      counts = await this.#backend.counts(ref);
    } catch (err) {
      this.#log.warn({ err, domain: ref.domain, mailbox: ref.mailbox }, 'message counts unavailable: NOTIFYs skipped');
      return;
    }
    // Taken after the counts are read: every subscription gets counts at least this fresh.
    for (const sub of [...this.#subs]) {
      if (sameMailbox(sub.ref, ref)) void this.#notify(sub, null, counts);
    }
    for (const contact of contacts) void this.#unsolicited(contact, ref, counts);
  }

  /**
   * An out-of-dialog NOTIFY to a configured contact ("unsolicited MWI", as PBXs send to phones
   * that do not subscribe): the same headers and body as in a subscription, state `terminated`
   * — there is no subscription behind it (RFC 6665 §8.2.3 wants the header on every NOTIFY), as
   * the embedded engine and Asterisk's unsolicited MWI send it.
   */
  async #unsolicited(contact: string, ref: MailboxRef, counts: MailboxCounts): Promise<void> {
    const log = this.#log.child({ domain: ref.domain, mailbox: ref.mailbox, contact });
    try {
      const sent = await this.#srf.request(contact, {
        method: 'NOTIFY',
        headers: {
          From: `<${messageAccount(ref)}>`,
          Event: MESSAGE_SUMMARY_EVENT,
          'Subscription-State': 'terminated',
          'Content-Type': MESSAGE_SUMMARY_CONTENT_TYPE,
        },
        body: formatMessageSummary(counts, messageAccount(ref)),
      });
      const response = await new Promise<SrfSipMessage | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), UNSOLICITED_RESPONSE_WAIT_MS);
        timer.unref();
        sent.once('response', (res: SrfSipMessage) => { clearTimeout(timer); resolve(res); });
      });
      const status = response?.status ?? 0;
      if (status < 200 || status >= 300) log.info({ status: status || 'none' }, 'unsolicited NOTIFY refused');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'unsolicited NOTIFY not sent');
    }
  }
}
