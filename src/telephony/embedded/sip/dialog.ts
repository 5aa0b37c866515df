/**
 * A dialog on the UAS side (RFC 3261 §12): created by our 2xx to an INVITE, ended by BYE (§15);
 * or created by our 200 to a SUBSCRIBE (RFC 6665 §4.2.1.1), ended with its subscription (end()).
 */
import { EventEmitter } from 'node:events';
import { IncomingSubscribe } from './incoming-subscribe.js';
import { Invite2xxRetransmitter } from './invite-2xx-retransmitter.js';
import { SipRequest, type SipResponse } from './message.js';
import { parseNameAddr } from './name-addr.js';
import { createResponse, isLocalResponse, type MessageBody } from './response.js';
import type { InviteServerTransaction } from './transactions/invite-server-transaction.js';
import type { ServerTransaction } from './transactions/server-transaction.js';
import { sixtyFourT1 } from './timers.js';
import type { TransportAddress } from './transport.js';
import { allowEventsHeaders, capabilityHeaders, type UasCore } from './uas-core.js';
import { formatUri, parseUri } from './uri.js';

export type DialogTerminationReason =
  | 'remoteBye' // the peer sent BYE (answered 200)
  | 'localBye' // bye() was called
  | 'ackTimeout' // no ACK for our 2xx within 64*T1; we sent BYE (§13.3.1.4)
  | 'transportError' // a request in the dialog could not be sent
  | 'remoteGone' // a request in the dialog got 481 or 408, or timed out (§12.2.1.2)
  | 'ended' // end() was called: a dialog without a session (a subscription's) is over
  | 'closed'; // the endpoint was closed

export type DialogState = 'confirmed' | 'terminated';

export interface DialogRequestOptions {
  headers?: Record<string, string>;
  body?: MessageBody;
}

/** respond() handed to 'info' and 'request' listeners. */
export type RespondFn = (status: number, reason: string, body?: MessageBody) => void;

interface PendingAck {
  cseq: number;
  retransmitter: Invite2xxRetransmitter;
  settle(err?: Error): void;
}

/** Methods whose requests carry our Contact (target refresh and subscription requests). */
const METHODS_WITH_CONTACT = new Set(['INVITE', 'UPDATE', 'SUBSCRIBE', 'NOTIFY', 'REFER']);

export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}|${localTag}|${remoteTag}`;
}

export class Dialog extends EventEmitter {
  readonly id: string;
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  readonly localUri: string;
  readonly remoteUri: string;
  readonly routeSet: string[];
  private target: string;
  private ackRequest: SipRequest | undefined;
  /** "The local sequence number MUST be empty" for a UAS dialog until it sends a request (§12.1.1). */
  private localSeq: number | undefined;
  private remoteSeq: number;
  /** Our From in requests: the INVITE's To with our tag (§12.2.1.1). */
  private readonly localFrom: string;
  /** Our To in requests: the INVITE's From, remote tag included. */
  private readonly remoteTo: string;
  private readonly contact: string;
  private pendingAck: PendingAck | undefined;
  private pendingReinvite: InviteServerTransaction | undefined;
  private reinviteGuard: NodeJS.Timeout | undefined;
  private endedBy: DialogTerminationReason | undefined;
  private byeDone: Promise<void> | undefined;

  /**
   * "The route set MUST be set to the list of URIs in the Record-Route header field from the
   * request, taken in order and preserving all URI parameters... The remote target MUST be set to
   * the URI from the Contact header field of the request... The remote sequence number MUST be set
   * to the value of the sequence number in the CSeq header field of the request... The call
   * identifier component of the dialog ID MUST be set to the value of the Call-ID in the request.
   * The local tag component of the dialog ID MUST be set to the tag in the To field in the
   * response to the request, and the remote tag ... to the tag in the From field of the request."
   * (§12.1.1). The UAS keeps the Record-Route order; only a UAC reverses it.
   */
  constructor(
    private readonly core: UasCore,
    invite: SipRequest,
    localTag: string,
  ) {
    super();
    const from = invite.from;
    const to = invite.to;
    this.callId = invite.callId;
    this.localTag = localTag;
    this.remoteTag = from.tag ?? '';
    this.id = dialogKey(this.callId, this.localTag, this.remoteTag);
    this.localUri = to.uri;
    this.remoteUri = from.uri;
    this.target = parseNameAddr(invite.get('contact') ?? '').uri;
    this.routeSet = invite.getAll('record-route').map((rr) => parseNameAddr(rr).uri);
    this.remoteSeq = invite.cseq.seq;
    const toValue = invite.get('to') ?? '';
    this.localFrom = to.tag === undefined ? `${toValue};tag=${localTag}` : toValue;
    this.remoteTo = invite.get('from') ?? '';
    const source = invite.topVia.transport === 'TCP' ? 'tcp' : 'udp';
    this.contact = core.contactHeader(source);
  }

  get state(): DialogState {
    return this.endedBy === undefined ? 'confirmed' : 'terminated';
  }

  get remoteTarget(): string {
    return this.target;
  }

  /** The ACK that confirmed the dialog; its body is the answer to a delayed offer (§13.2.1). */
  get ack(): SipRequest | undefined {
    return this.ackRequest;
  }

  get terminationReason(): DialogTerminationReason | undefined {
    return this.endedBy;
  }

  /**
   * Starts the §13.3.1.4 retransmission of a 2xx the transaction just sent; resolves on its ACK,
   * rejects if none comes (a BYE is then sent) or the dialog ends first. @internal
   */
  awaitAck(response: SipResponse, transaction: InviteServerTransaction): Promise<void> {
    const retransmitter = new Invite2xxRetransmitter({
      timers: this.core.timers,
      reliable: transaction.destination.transport === 'tcp',
      retransmit: () => this.core.sendResponse(response, transaction.destination),
      onGiveUp: () => this.ackTimedOut(),
    });
    return new Promise<void>((resolve, reject) => {
      this.pendingAck = {
        cseq: response.cseq.seq,
        retransmitter,
        settle: (err) => (err ? reject(err) : resolve()),
      };
      retransmitter.start();
    });
  }

  /** An ACK for a 2xx of this dialog (it is its own transaction, §17.1.1.3). @internal */
  receiveAck(ack: SipRequest): void {
    const pending = this.pendingAck;
    // Retransmitted ACKs and ACKs for another INVITE are absorbed.
    if (!pending || ack.cseq.seq !== pending.cseq) return;
    pending.retransmitter.stop();
    this.pendingAck = undefined;
    if (this.ackRequest === undefined) this.ackRequest = ack;
    else this.safeEmit('ack', ack);
    pending.settle();
  }

  private ackTimedOut(): void {
    const pending = this.pendingAck;
    if (!pending) return;
    this.pendingAck = undefined;
    this.core.logger.info({ callId: this.callId }, 'no ACK for 2xx within 64*T1: sending BYE');
    void this.sendBye('ackTimeout');
    pending.settle(new Error('no ACK for the 2xx response'));
  }

  /**
   * A request inside this dialog, already in its server transaction; `source` is where it came
   * from (default: where its responses go). @internal
   */
  receiveRequest(request: SipRequest, transaction: ServerTransaction, source: TransportAddress = transaction.destination): void {
    const answer = (status: number, reason: string, headers: Record<string, string> = {}, body?: MessageBody): void => {
      transaction.respond(
        createResponse(request, status, reason, {
          toTag: this.localTag,
          headers: { Server: this.core.userAgent, ...headers },
          body: body ?? null,
        }),
      );
    };
    if (this.endedBy !== undefined) {
      // Our BYE is on its way: a BYE crossing it is still answered; nothing else is (§15.1.1).
      if (request.method === 'BYE') answer(200, 'OK');
      else answer(481, 'Call/Transaction Does Not Exist');
      return;
    }
    // "If the remote sequence number was not empty, but the sequence number of the request is
    // lower than the remote sequence number, the request is out of order and MUST be rejected
    // with a 500 (Server Internal Error) response." (§12.2.2)
    const seq = request.cseq.seq;
    if (seq < this.remoteSeq) {
      answer(500, 'CSeq Out of Order');
      return;
    }
    this.remoteSeq = seq;

    switch (request.method) {
      case 'BYE':
        // "the UAS core ... SHOULD terminate the session ... and SHOULD generate a 2xx response"
        // (§15.1.2)
        answer(200, 'OK');
        this.safeEmit('bye', request);
        this.terminate('remoteBye');
        this.core.forgetDialog(this.id);
        return;
      case 'INVITE':
        this.receiveReinvite(request, transaction as InviteServerTransaction, answer);
        return;
      case 'OPTIONS':
        answer(200, 'OK', capabilityHeaders(this.core));
        return;
      case 'INFO':
        // INFO (RFC 6086) carries digits (application/dtmf-relay); the listener answers.
        if (!this.handOver('info', request, answer)) answer(200, 'OK');
        return;
      case 'SUBSCRIBE':
        this.receiveSubscribe(request, transaction, source, answer);
        return;
      default:
        if (!this.handOver('request', request, answer)) {
          // A NOTIFY for a REFER we sent needs no more than a 200 (RFC 3515 §2.4.4).
          if (request.method === 'NOTIFY') answer(200, 'OK');
          else answer(501, 'Not Implemented', { Allow: this.core.allowHeader() });
        }
    }
  }

  private handOver(
    event: string,
    request: SipRequest,
    answer: (status: number, reason: string, headers?: Record<string, string>, body?: MessageBody) => void,
  ): boolean {
    if (this.listenerCount(event) === 0) return false;
    let answered = false;
    const respond: RespondFn = (status, reason, body) => {
      if (answered) return;
      answered = true;
      answer(status, reason, {}, body);
    };
    this.safeEmit(event, request, respond);
    return true;
  }

  /**
   * A SUBSCRIBE in the dialog: a refresh of the subscription that created it, or with Expires 0
   * its end (RFC 6665 §4.1.2.2, §4.1.2.3). The 'subscribe' listener (the subscription) answers
   * it through the IncomingSubscribe. Without one (an INVITE dialog) we take no subscription:
   * 403 rather than 481, which would tell the peer the whole dialog is gone (§12.2.2).
   */
  private receiveSubscribe(
    request: SipRequest,
    transaction: ServerTransaction,
    source: TransportAddress,
    answer: (status: number, reason: string, headers?: Record<string, string>) => void,
  ): void {
    if (this.listenerCount('subscribe') === 0) {
      answer(403, 'Forbidden');
      return;
    }
    const subscribe = new IncomingSubscribe(this.core, transaction, request, source, { dialog: this });
    try {
      this.emit('subscribe', subscribe);
    } catch (err) {
      this.core.logger.error({ err, callId: this.callId }, 'subscribe listener threw');
      if (subscribe.pending) subscribe.reject(500, 'Server Internal Error');
    }
  }

  /**
   * A 2xx to a target refresh request replaces the remote target with the request's Contact
   * (§12.2.2); RFC 6665 makes SUBSCRIBE a target refresh request. A Contact we cannot read
   * leaves the target as it was. @internal
   */
  refreshTarget(request: SipRequest): void {
    const contact = request.get('contact');
    if (contact === undefined) return;
    try {
      this.target = parseNameAddr(contact).uri;
    } catch {
      // keep the old target
    }
  }

  /** A re-INVITE (§14.2): handed to the 'reinvite' listener, 488 without one. */
  private receiveReinvite(
    request: SipRequest,
    transaction: InviteServerTransaction,
    answer: (status: number, reason: string, headers?: Record<string, string>, body?: MessageBody) => void,
  ): void {
    if (this.pendingReinvite || this.pendingAck) {
      // "A UAS that receives a second INVITE before it sends the final response to a first INVITE
      // with a lower CSeq sequence number on the same dialog MUST return a 500 (Server Internal
      // Error) response to the second INVITE and MUST include a Retry-After header field with a
      // randomly chosen value of between 0 and 10 seconds." (§14.2)
      answer(500, 'Server Internal Error', { 'Retry-After': String(Math.floor(Math.random() * 11)) });
      return;
    }
    if (this.listenerCount('reinvite') === 0) {
      answer(488, 'Not Acceptable Here');
      return;
    }
    this.pendingReinvite = transaction;
    transaction.localTag = this.localTag;
    let answered = false;
    // A listener that never answers would hold the transaction (and block later re-INVITEs).
    this.reinviteGuard = setTimeout(() => {
      this.core.logger.warn({ callId: this.callId }, 're-INVITE not answered by the application: 500');
      respond(500, 'Server Internal Error');
    }, sixtyFourT1(this.core.timers));
    const respond: RespondFn = (status, reason, body) => {
      if (answered || this.pendingReinvite !== transaction) return;
      if (status < 200) {
        answer(status, reason, {}, body);
        return;
      }
      answered = true;
      this.pendingReinvite = undefined;
      clearTimeout(this.reinviteGuard);
      this.reinviteGuard = undefined;
      if (status >= 300) {
        answer(status, reason, {}, body);
        return;
      }
      // A 2xx to a target refresh: "the UAS MUST replace the dialog's remote target URI with the
      // URI from the Contact header field in that request, if present." (§12.2.2)
      const contact = request.get('contact');
      if (contact !== undefined) this.target = parseNameAddr(contact).uri;
      const response = createResponse(request, status, reason, {
        toTag: this.localTag,
        headers: this.acceptHeaders(),
        body: body ?? null,
      });
      transaction.respond(response);
      this.awaitAck(response, transaction).catch(() => {});
    };
    // CANCEL of a pending re-INVITE: 487 (§9.2); a BYE answers it with 487 too (terminate()).
    transaction.cancelHandler = () => respond(487, 'Request Terminated');
    this.safeEmit('reinvite', request, respond);
  }

  /**
   * Headers of a 2xx to an INVITE or SUBSCRIBE: Contact, Allow, Supported (§13.3.1.4, §12.1.1),
   * and Allow-Events when we notify for some event package (RFC 6665 §4.4.4).
   */
  acceptHeaders(): Record<string, string> {
    return {
      Contact: this.contact,
      Allow: this.core.allowHeader(),
      Supported: this.core.supportedHeader(),
      ...allowEventsHeaders(this.core),
      Server: this.core.userAgent,
    };
  }

  /**
   * Ends the dialog from our side (§15.1.1): the session ends at once ('terminated' is emitted),
   * the dialog lingers until the BYE gets a final response or times out. Idempotent.
   */
  bye(): Promise<void> {
    return this.sendBye('localBye');
  }

  private sendBye(reason: DialogTerminationReason): Promise<void> {
    if (this.byeDone) return this.byeDone;
    if (this.endedBy !== undefined) {
      this.byeDone = Promise.resolve();
      return this.byeDone;
    }
    this.terminate(reason);
    this.byeDone = this.send('BYE', {})
      .then(() => undefined)
      .catch((err: unknown) => this.core.logger.debug({ err, callId: this.callId }, 'BYE failed'))
      .finally(() => this.core.forgetDialog(this.id));
    return this.byeDone;
  }

  /**
   * Sends a request within the dialog (§12.2.1.1), e.g. REFER or NOTIFY, and resolves with its
   * final response (a local 408 on timeout, 503 when it cannot be sent).
   */
  async request(method: string, options: DialogRequestOptions = {}): Promise<SipResponse> {
    if (this.endedBy !== undefined) throw new Error('dialog terminated');
    if (method === 'INVITE' || method === 'ACK' || method === 'CANCEL' || method === 'BYE') {
      throw new Error(`${method} cannot be sent with Dialog.request()`);
    }
    const response = await this.send(method, options);
    if (this.endedBy === undefined) {
      // "If the response for a request within a dialog is a 481 (Call/Transaction Does Not Exist)
      // or a 408 (Request Timeout), the UAC SHOULD terminate the dialog." (§12.2.1.2)
      if (response.status === 481 || response.status === 408) this.endAndForget('remoteGone');
      else if (response.status === 503 && isLocalResponse(response)) this.endAndForget('transportError');
    }
    return response;
  }

  /**
   * Ends the dialog without a BYE and drops it from the dialog table: for a dialog that carries
   * no session, only a subscription, once that subscription is over ("A subscription is
   * destroyed after a notifier sends a NOTIFY request with a "Subscription-State" of
   * "terminated"" and a dialog goes with its last usage, RFC 6665 §4.4.1). Idempotent.
   */
  end(): void {
    if (this.endedBy === undefined) this.endAndForget('ended');
  }

  private endAndForget(reason: DialogTerminationReason): void {
    this.terminate(reason);
    this.core.forgetDialog(this.id);
  }

  /**
   * Builds a request in the dialog (§12.2.1.1): Request-URI and Route from the remote target and
   * route set (loose or strict routing), From/To/Call-ID from the dialog, CSeq one more than the
   * last one we used.
   */
  private send(method: string, options: DialogRequestOptions): Promise<SipResponse> {
    this.localSeq = this.localSeq === undefined ? 1 + Math.floor(Math.random() * 10_000) : this.localSeq + 1;
    let requestUri = this.target;
    let routes = [...this.routeSet];
    let nextHop = requestUri;
    const first = routes[0];
    if (first !== undefined) {
      if (isLooseRouter(first)) {
        // "If the route set is not empty, and the first URI in the route set contains the lr
        // parameter, the UAC MUST place the remote target URI into the Request-URI and MUST
        // include a Route header field containing the route set values in order"
        nextHop = first;
      } else {
        // "If the route set is not empty, and its first URI does not contain the lr parameter,
        // the UAC MUST place the first URI from the route set into the Request-URI, stripping any
        // parameters that are not allowed in a Request-URI. The UAC MUST add a Route header field
        // containing the remainder of the route set values in order, including all parameters.
        // The UAC MUST then place the remote target URI into the Route header field as the last
        // value."
        requestUri = stripForRequestUri(first);
        routes = [...routes.slice(1), this.target];
        nextHop = requestUri;
      }
    }
    const request = new SipRequest(method, requestUri);
    request.append('Max-Forwards', '70');
    for (const route of routes) request.append('Route', `<${route}>`);
    request.append('From', this.localFrom);
    request.append('To', this.remoteTo);
    request.append('Call-ID', this.callId);
    request.append('CSeq', `${this.localSeq} ${method}`);
    if (METHODS_WITH_CONTACT.has(method)) request.append('Contact', this.contact);
    request.append('User-Agent', this.core.userAgent);
    for (const [name, value] of Object.entries(options.headers ?? {})) request.set(name, value);
    if (options.body) request.setBody(options.body.contentType, options.body.content);
    return this.core.sendRequest(request, nextHop);
  }

  /** Marks the session over: stops 2xx retransmission, answers a pending re-INVITE. @internal */
  terminate(reason: DialogTerminationReason): void {
    if (this.endedBy !== undefined) return;
    this.endedBy = reason;
    const pending = this.pendingAck;
    this.pendingAck = undefined;
    if (pending) {
      pending.retransmitter.stop();
      pending.settle(new Error(`dialog ended before ACK (${reason})`));
    }
    const reinvite = this.pendingReinvite;
    this.pendingReinvite = undefined;
    clearTimeout(this.reinviteGuard);
    this.reinviteGuard = undefined;
    // "The UAS MUST still respond to any pending requests received for that dialog. It is
    // RECOMMENDED that a 487 (Request Terminated) response be generated to those pending
    // requests." (§15.1.2)
    if (reinvite && !reinvite.finalResponseSent) {
      reinvite.respond(createResponse(reinvite.request, 487, 'Request Terminated', { toTag: this.localTag }));
    }
    this.safeEmit('terminated', reason);
  }

  /** A throwing listener must not break the SIP stack. */
  private safeEmit(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.core.logger.error({ err, event, callId: this.callId }, 'dialog listener threw');
    }
  }
}

function isLooseRouter(uri: string): boolean {
  try {
    return parseUri(uri).params['lr'] !== undefined;
  } catch {
    return false;
  }
}

/** Removes what a Request-URI may not carry: the method parameter and headers (§19.1.1 Table 1). */
function stripForRequestUri(uri: string): string {
  try {
    const parsed = parseUri(uri);
    delete parsed.params['method'];
    parsed.headers = Object.create(null) as Record<string, string>;
    return formatUri(parsed);
  } catch {
    return uri;
  }
}
