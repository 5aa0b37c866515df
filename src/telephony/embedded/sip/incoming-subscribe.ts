/**
 * A SUBSCRIBE as the application (the notifier, RFC 6665 §4.2) sees it: a new one outside any
 * dialog, or one inside the dialog an earlier SUBSCRIBE created (a refresh, or with Expires 0 an
 * unsubscribe, RFC 6665 §4.1.2.2, §4.1.2.3). It is accepted with the duration granted, or
 * rejected. What the subscription then does (NOTIFYs, expiry) is the application's.
 */
import type { Dialog } from './dialog.js';
import { Scanner, type Params } from './grammar.js';
import { parseBoundedInteger } from './header-values.js';
import { newTag } from './ids.js';
import type { SipRequest } from './message.js';
import { createResponse } from './response.js';
import type { ServerTransaction } from './transactions/server-transaction.js';
import { TransactionState } from './transactions/transaction.js';
import type { TransportAddress } from './transport.js';
import type { UasCore } from './uas-core.js';

/** Expires = "Expires" HCOLON delta-seconds; the parser already bounds it to 2**32-1 (§20.19). */
const MAX_EXPIRES = 2 ** 32 - 1;

/** Event = ( "Event" / "o" ) HCOLON event-type *( SEMI event-param ) (RFC 6665 §8.4). */
export interface EventHeader {
  /** The event package, e.g. "message-summary", lower case. */
  type: string;
  params: Params;
  /** The "id" parameter, which NOTIFYs of the subscription must echo (RFC 6665 §8.2.1). */
  id?: string;
}

/** Parses an Event header value; throws SipParseError on a malformed one. */
export function parseEventHeader(value: string): EventHeader {
  const sc = new Scanner(value, 'Event');
  sc.skipWs();
  const type = sc.token('bad event type').toLowerCase();
  const params = sc.params();
  const id = params['id'];
  return id === undefined || id === null ? { type, params } : { type, params, id };
}

export interface IncomingSubscribeOptions {
  /** The dialog a SUBSCRIBE arrived in (refresh or unsubscribe); absent for a new subscription. */
  dialog?: Dialog;
  /** Makes the dialog a new SUBSCRIBE creates once accepted (our To tag given). */
  createDialog?: (localTag: string) => Dialog;
}

export class IncomingSubscribe {
  /**
   * Our To tag: for a new SUBSCRIBE a fresh one, which the 200 carries and which becomes the
   * local tag of the dialog (§12.1.1); inside a dialog, the dialog's.
   */
  readonly localTag: string;
  /** The dialog the SUBSCRIBE arrived in; undefined for a new subscription. */
  readonly dialog: Dialog | undefined;
  private answered = false;

  constructor(
    private readonly core: UasCore,
    private readonly transaction: ServerTransaction,
    readonly request: SipRequest,
    /** Where the request came from (source address and port, transport). */
    readonly source: TransportAddress,
    private readonly options: IncomingSubscribeOptions = {},
  ) {
    this.dialog = options.dialog;
    this.localTag = options.dialog?.localTag ?? newTag();
  }

  /** True for a SUBSCRIBE inside an existing dialog (a refresh or an unsubscribe). */
  get inDialog(): boolean {
    return this.dialog !== undefined;
  }

  /** True while it can still be answered: no final response yet, the transaction still there. */
  get pending(): boolean {
    return !this.answered && !this.transaction.finalResponseSent && this.transaction.state !== TransactionState.Terminated;
  }

  /** The Event header; undefined when it is missing or cannot be read. */
  get event(): EventHeader | undefined {
    const value = this.request.get('event');
    if (value === undefined) return undefined;
    try {
      return parseEventHeader(value);
    } catch {
      return undefined;
    }
  }

  /** The duration asked for (Expires, seconds); undefined without an Expires header. */
  get expires(): number | undefined {
    const value = this.request.get('expires');
    return value === undefined ? undefined : parseBoundedInteger(value, MAX_EXPIRES, 'Expires');
  }

  /**
   * Sends 200 OK with `Expires: expiresSeconds`: "the actual duration for which the subscription
   * will remain active (unless refreshed)", which may be shorter than asked but not longer (RFC
   * 6665 §3.1.1; keeping to that is the caller's part). A new SUBSCRIBE creates its
   * dialog here, in the endpoint's dialog table, before the 200 goes out; the 200 carries our To
   * tag, Contact and the Record-Route of the request (§12.1.1). In a dialog, the SUBSCRIBE's
   * Contact becomes the remote target. Returns the dialog; NOTIFYs go out with its request().
   * Throws when the SUBSCRIBE was already answered or its dialog is over.
   */
  accept(expiresSeconds: number, headers: Record<string, string> = {}): Dialog {
    if (!Number.isInteger(expiresSeconds) || expiresSeconds < 0 || expiresSeconds > MAX_EXPIRES) {
      throw new RangeError(`not an Expires value: ${expiresSeconds}`);
    }
    if (!this.pending) throw new Error('SUBSCRIBE already answered');
    const existing = this.dialog;
    if (existing) {
      if (existing.state !== 'confirmed') throw new Error('dialog terminated');
      this.answered = true;
      existing.refreshTarget(this.request);
      this.transaction.respond(
        createResponse(this.request, 200, 'OK', {
          toTag: existing.localTag,
          headers: { ...existing.acceptHeaders(), Expires: String(expiresSeconds), ...headers },
        }),
      );
      return existing;
    }
    const create = this.options.createDialog;
    if (!create) throw new Error('no dialog factory for a new SUBSCRIBE');
    const dialog = create(this.localTag);
    this.answered = true;
    const response = createResponse(this.request, 200, 'OK', {
      toTag: this.localTag,
      copyRecordRoute: true,
      headers: { ...dialog.acceptHeaders(), Expires: String(expiresSeconds), ...headers },
    });
    this.core.registerDialog(dialog);
    this.transaction.respond(response);
    return dialog;
  }

  /**
   * Sends a final non-2xx response (300–699), e.g. 489 Bad Event with Allow-Events, 423 Interval
   * Too Brief with Min-Expires, 403, 404. Ignored once answered. A rejected refresh leaves the
   * subscription as it was (RFC 6665 §4.1.2.2), unless the status is 481.
   */
  reject(status: number, reason: string, headers: Record<string, string> = {}): void {
    if (!Number.isInteger(status) || status < 300 || status > 699) throw new RangeError(`not a rejection status: ${status}`);
    if (!this.pending) return;
    this.answered = true;
    this.transaction.respond(
      createResponse(this.request, status, reason, {
        toTag: this.localTag,
        headers: { Server: this.core.userAgent, ...headers },
      }),
    );
  }
}
