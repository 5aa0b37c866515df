/**
 * The embedded SIP endpoint: transports, the transaction layer and the UAS core (RFC 3261 §8.2,
 * §12, §13.3, §15, §17, §18) behind one object.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../../../log.js';
import { Dialog, dialogKey } from './dialog.js';
import { SipParseError } from './errors.js';
import { formatHost } from './grammar.js';
import { newBranch, newCallId, newTag } from './ids.js';
import { IncomingInvite } from './incoming-invite.js';
import { IncomingSubscribe } from './incoming-subscribe.js';
import { parseMessage, SipRequest, SipResponse } from './message.js';
import { allowHeader, checkRequest } from './request-checks.js';
import { annotateTopVia, responseDestination } from './response-routing.js';
import { createLocalResponse, createResponse, type MessageBody } from './response.js';
import { resolveTimers, type SipTimers } from './timers.js';
import { InviteServerTransaction } from './transactions/invite-server-transaction.js';
import { clientTransactionKey, responseClientTransactionKey, serverTransactionKey } from './transactions/matching.js';
import { NonInviteClientTransaction } from './transactions/non-invite-client-transaction.js';
import { NonInviteServerTransaction } from './transactions/non-invite-server-transaction.js';
import type { ServerTransaction } from './transactions/server-transaction.js';
import { TransactionState, type Transaction, type TransactionEnvironment } from './transactions/transaction.js';
import { SipTcpTransport } from './transport-tcp.js';
import { SipUdpTransport } from './transport-udp.js';
import type { ReceiveInfo, SipTransport, TransportAddress, TransportProtocol } from './transport.js';
import { capabilityHeaders, type UasCore } from './uas-core.js';
import { parseUri } from './uri.js';

export interface SipEndpointOptions {
  address: string;
  port: number;
  /** Host or address put in our Contact and Via (what peers can reach us at). */
  advertisedHost: string;
  userAgent?: string;
  timers?: Partial<SipTimers>;
  logger: Logger;
  /** Listen on TCP too, on the same port number. */
  tcp?: boolean;
  /** Option tags we implement (Supported header, Require checks); default none. */
  supportedExtensions?: string[];
  /** Reject an INVITE with 480 when the application has not answered it in this time (default 180 s). */
  inviteAnswerTimeoutMs?: number;
  tcpIdleTimeoutMs?: number;
}

/** A NOTIFY outside any dialog ("unsolicited"), e.g. message waiting to a configured contact. */
export interface OutOfDialogNotify {
  /**
   * Request-URI and where the request goes (host, port, maddr and transport of the URI, A/AAAA
   * lookup only): a sip: URI such as `sip:201@192.0.2.10:5060`.
   */
  target: string;
  /** The To URI: the resource the notification is about, e.g. the mailbox `sip:201@pbx.example`. */
  to: string;
  /** The From URI; default our own address (`sip:<advertisedHost>:<port>`). */
  from?: string;
  /** Event header value, e.g. `message-summary` (RFC 6665 §8.2.1). */
  event: string;
  /** Subscription-State header value, which every NOTIFY carries (RFC 6665 §8.2.3). */
  subscriptionState: string;
  body?: MessageBody;
  headers?: Record<string, string>;
}

export interface SipEndpointStats {
  serverTransactions: number;
  clientTransactions: number;
  dialogs: number;
}

export const DEFAULT_ALLOWED_METHODS: readonly string[] = ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'INFO', 'REFER', 'NOTIFY'];
/** Retry-After (seconds) on 503 while not accepting calls. */
const SHUTDOWN_RETRY_AFTER_S = 30;
const DEFAULT_SIP_PORT = 5060;

/** Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB) (§25.1) */
function toReasonPhrase(text: string): string {
  return text.replace(/[^A-Za-z0-9 \-_.!~*'();/?:@&=+$,]/g, '').slice(0, 80) || 'Bad Request';
}

export class SipEndpoint {
  /** A new INVITE outside any dialog, after 100 Trying was sent. Default: 480. */
  onInvite: (invite: IncomingInvite) => void = (invite) => invite.reject(480, 'Temporarily Unavailable');
  allowedMethods: string[] = [...DEFAULT_ALLOWED_METHODS];
  /**
   * Event packages we act as notifier for, sent as Allow-Events in OPTIONS responses and in 2xx
   * to INVITE and SUBSCRIBE (RFC 6665 §4.4.4). A notifier adds its package when it attaches.
   */
  allowEvents: string[] = [];
  /** false: new INVITEs (and OPTIONS outside a dialog, §11.2, and new SUBSCRIBEs) get 503 with Retry-After. */
  acceptingCalls = true;
  readonly supportedExtensions: string[];

  private readonly timers: SipTimers;
  private readonly logger: Logger;
  private readonly userAgent: string;
  private udp: SipUdpTransport | undefined;
  private tcp: SipTcpTransport | undefined;
  private closed = false;
  private readonly serverTransactions = new Map<string, ServerTransaction>();
  private readonly clientTransactions = new Map<string, NonInviteClientTransaction>();
  private readonly dialogs = new Map<string, Dialog>();
  private readonly invites = new Set<IncomingInvite>();
  private readonly core: UasCore;
  private subscribeHandler: ((subscribe: IncomingSubscribe) => void) | undefined;

  constructor(private readonly options: SipEndpointOptions) {
    this.timers = resolveTimers(options.timers);
    this.logger = options.logger;
    this.userAgent = options.userAgent ?? 'vmaccess';
    this.supportedExtensions = [...(options.supportedExtensions ?? [])];
    this.core = {
      timers: this.timers,
      logger: this.logger,
      userAgent: this.userAgent,
      allowHeader: () => allowHeader(this),
      supportedHeader: () => this.supportedExtensions.join(', '),
      allowEventsHeader: () => this.allowEvents.join(', '),
      contactHeader: (transport) => this.contactHeader(transport),
      sendResponse: (response, dest) => this.sendOrLog(response, dest),
      sendRequest: (request, nextHop) => this.sendRequest(request, nextHop),
      registerDialog: (dialog) => this.dialogs.set(dialog.id, dialog),
      forgetDialog: (id) => this.dialogs.delete(id),
    };
  }

  /**
   * A new SUBSCRIBE outside any dialog (RFC 6665 §4.2.1.1): the handler accepts it (200 with
   * Expires; that creates the subscription's dialog) or rejects it. Setting a handler adds
   * SUBSCRIBE to Allow; without one SUBSCRIBE gets 405 (§8.2.1). SUBSCRIBEs inside a dialog go
   * to that dialog's 'subscribe' listeners instead.
   */
  get onSubscribe(): ((subscribe: IncomingSubscribe) => void) | undefined {
    return this.subscribeHandler;
  }

  set onSubscribe(handler: ((subscribe: IncomingSubscribe) => void) | undefined) {
    this.subscribeHandler = handler;
    const listed = this.allowedMethods.includes('SUBSCRIBE');
    if (handler && !listed) this.allowedMethods = [...this.allowedMethods, 'SUBSCRIBE'];
    else if (!handler && listed) this.allowedMethods = this.allowedMethods.filter((m) => m !== 'SUBSCRIBE');
  }

  /** Binds UDP (and TCP on the same port number when `tcp` is set). */
  async start(): Promise<void> {
    if (this.udp) throw new Error('SIP endpoint already started');
    const attempts = this.options.port === 0 && this.options.tcp ? 5 : 1;
    for (let attempt = 1; ; attempt++) {
      const udp = await SipUdpTransport.bind(this.options.address, this.options.port, this.logger);
      if (!this.options.tcp) {
        this.udp = udp;
        break;
      }
      try {
        this.tcp = await SipTcpTransport.listen({
          address: this.options.address,
          port: udp.local.port,
          logger: this.logger,
          ...(this.options.tcpIdleTimeoutMs === undefined ? {} : { idleTimeoutMs: this.options.tcpIdleTimeoutMs }),
        });
        this.udp = udp;
        break;
      } catch (err) {
        await udp.close();
        // With port 0 the UDP port may be taken on TCP: pick another pair.
        if (attempt >= attempts || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    const transports: SipTransport[] = this.tcp ? [this.udp, this.tcp] : [this.udp];
    for (const transport of transports) transport.onMessage((buf, source, info) => this.receive(buf, source, info));
    this.logger.info({ address: this.udp.local.address, port: this.udp.local.port, tcp: Boolean(this.tcp) }, 'SIP endpoint listening');
  }

  /** Stops everything: timers, transactions, dialogs ('terminated' with 'closed'), sockets. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.acceptingCalls = false;
    for (const invite of this.invites) invite.dispose();
    this.invites.clear();
    for (const dialog of [...this.dialogs.values()]) dialog.terminate('closed');
    this.dialogs.clear();
    for (const tx of this.serverTransactions.values()) tx.dispose();
    this.serverTransactions.clear();
    for (const tx of [...this.clientTransactions.values()]) tx.abort();
    this.clientTransactions.clear();
    await Promise.all([this.udp?.close(), this.tcp?.close()]);
  }

  get local(): { address: string; port: number } {
    if (!this.udp) throw new Error('SIP endpoint not started');
    return { address: this.udp.local.address, port: this.udp.local.port };
  }

  stats(): SipEndpointStats {
    return {
      serverTransactions: this.serverTransactions.size,
      clientTransactions: this.clientTransactions.size,
      dialogs: this.dialogs.size,
    };
  }

  // ---- transport layer ---------------------------------------------------------------------

  private contactHeader(transport: TransportProtocol): string {
    const param = transport === 'tcp' ? ';transport=tcp' : '';
    return `<sip:${formatHost(this.options.advertisedHost)}:${this.local.port}${param}>`;
  }

  private transportFor(dest: TransportAddress): SipTransport | undefined {
    return dest.transport === 'tcp' ? this.tcp : this.udp;
  }

  private send(buf: Buffer, dest: TransportAddress): Promise<void> {
    const transport = this.transportFor(dest);
    if (!transport || this.closed) return Promise.reject(new Error(`no ${dest.transport} transport`));
    return transport.send(buf, dest);
  }

  private sendOrLog(message: SipRequest | SipResponse, dest: TransportAddress): void {
    this.send(message.serialize(), dest).catch((err: unknown) => this.logger.debug({ err, dest }, 'SIP send failed'));
  }

  private receive(buf: Buffer, source: TransportAddress, info?: ReceiveInfo): void {
    if (this.closed) return;
    if (info?.oversize) {
      // A body over the cap: RFC 3261 §21.4.11 413 (Request Entity Too Large); a header section
      // over it: 400 (§21.4.1). Then the transport drops the connection.
      if (info.oversizePart === 'header') this.answerUnparsed(responseHeadersOnly(buf), source, 400, 'Header Section Too Large');
      else this.answerUnparsed(buf, source, 413, 'Request Entity Too Large');
      return;
    }
    let message: SipRequest | SipResponse;
    try {
      message = parseMessage(buf, source.transport);
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      const partial = err.partial;
      if (partial instanceof SipRequest && partial.method !== 'ACK') {
        // "malformed but answerable": RFC 3261 §8.2, §18.3 (400), §8.2.2.? 505 for a version.
        this.answerStatelessly(partial, source, err.status, err.status === 505 ? 'Version Not Supported' : err.reason);
      } else {
        this.logger.debug({ source, reason: err.reason }, 'dropped unparseable SIP message');
      }
      return;
    }
    if (message instanceof SipResponse) this.receiveResponse(message);
    else this.receiveRequest(message, source);
  }

  private answerUnparsed(buf: Buffer, source: TransportAddress, status: number, reason: string): void {
    try {
      const message = parseMessage(buf, 'udp');
      if (message instanceof SipRequest && message.method !== 'ACK') this.answerStatelessly(message, source, status, reason);
    } catch (err) {
      const partial = err instanceof SipParseError ? err.partial : undefined;
      if (partial instanceof SipRequest && partial.method !== 'ACK') this.answerStatelessly(partial, source, status, reason);
    }
  }

  /**
   * A response without a transaction, to a request we could not take in (§8.2, §18.2.2).
   *
   * RFC 4475 has a malformed request answered even when the malformed part is a header the
   * response copies: a broken Via (§3.1.2.1 badinv01), CSeq (§3.1.2.4 scalar02), To or From
   * (§3.1.2.6, .14, .15), a SIP/7.0 Via (§3.1.2.16 → 505), or none of From, To, Call-ID (§3.3.1
   * insuf). So the response copies those headers as they came, and leaves out the ones that are
   * missing (§8.2.6.2 copies, it never invents). It needs a Via and a CSeq, which is what a client
   * matches a response on (§17.1.3), and goes where the top Via says (§18.2.2) or, when that Via
   * cannot be read, back to the source address and port, as RFC 3581 §4 would send it.
   */
  private answerStatelessly(request: SipRequest, source: TransportAddress, status: number, reason: string): void {
    if (!request.has('via') || !request.has('cseq')) {
      this.logger.debug({ source, reason }, 'dropped unanswerable SIP request');
      return;
    }
    let dest: TransportAddress = source;
    try {
      annotateTopVia(request, source);
      dest = responseDestination(request, source);
    } catch {
      // The top Via cannot be read: the answer goes back where the request came from.
    }
    try {
      const response = createResponse(request, status, toReasonPhrase(reason), { headers: { Server: this.userAgent } });
      this.logger.debug({ source, status, reason }, 'answered malformed SIP request');
      this.sendOrLog(response, dest);
    } catch {
      this.logger.debug({ source, reason }, 'dropped unanswerable SIP request');
    }
  }

  // ---- transaction layer -------------------------------------------------------------------

  private environment(dest: TransportAddress, table: Map<string, Transaction>): TransactionEnvironment {
    return {
      timers: this.timers,
      logger: this.logger,
      destination: dest,
      send: (message) => this.send(message.serialize(), dest),
      onTerminated: (tx) => {
        if (table.get(tx.id) === tx) table.delete(tx.id);
      },
    };
  }

  private receiveResponse(response: SipResponse): void {
    // §18.1.2 / §17.1.3: a response without a matching client transaction is dropped (we send
    // no INVITEs, so there are no stray 2xx retransmissions to pass up).
    const tx = this.clientTransactions.get(responseClientTransactionKey(response));
    if (tx) tx.receiveResponse(response);
    else this.logger.debug({ status: response.status, callId: response.callId }, 'response matches no transaction');
  }

  private receiveRequest(request: SipRequest, source: TransportAddress): void {
    annotateTopVia(request, source);
    const dest = responseDestination(request, source);
    const key = serverTransactionKey(request);
    const existing = this.serverTransactions.get(key);
    if (existing) {
      // §17.2.3: a retransmission (or the ACK of a non-2xx) goes to its transaction.
      if (!existing.receiveRequest(request) && request.method === 'ACK') this.receiveAck(request);
      return;
    }
    if (request.method === 'ACK') {
      // "the ACK for a 2xx response ... is passed directly to the UAS core" (§17.2.3, §13.3.1.4).
      this.receiveAck(request);
      return;
    }
    const tx =
      request.method === 'INVITE'
        ? new InviteServerTransaction(key, request, this.environment(dest, this.serverTransactions))
        : new NonInviteServerTransaction(key, request, this.environment(dest, this.serverTransactions));
    this.serverTransactions.set(key, tx);
    try {
      if (request.method === 'CANCEL') this.receiveCancel(request, tx);
      else this.receiveNewRequest(request, tx, source);
    } catch (err) {
      this.logger.error({ err, method: request.method, callId: request.callId }, 'SIP request handling failed');
      if (!tx.finalResponseSent && tx.state !== TransactionState.Terminated) {
        tx.respond(createResponse(request, 500, 'Server Internal Error', { headers: { Server: this.userAgent } }));
      }
    }
  }

  // ---- UAS core ----------------------------------------------------------------------------

  private answer(tx: ServerTransaction, status: number, reason: string, headers: Record<string, string> = {}, toTag?: string): void {
    tx.respond(
      createResponse(tx.request, status, reason, {
        ...(toTag === undefined ? {} : { toTag }),
        headers: { Server: this.userAgent, ...headers },
      }),
    );
  }

  private receiveNewRequest(request: SipRequest, tx: ServerTransaction, source: TransportAddress): void {
    const rejection = checkRequest(request, this);
    if (rejection) {
      this.answer(tx, rejection.status, rejection.reason, rejection.headers);
      return;
    }
    const toTag = request.to.tag;
    if (toTag !== undefined) {
      // "If the UAS wishes to reject the request because it does not wish to recreate the dialog,
      // it MUST respond to the request with a 481 (Call/Transaction Does Not Exist)" (§12.2.2)
      const dialog = this.dialogs.get(dialogKey(request.callId, toTag, request.from.tag ?? ''));
      if (dialog) dialog.receiveRequest(request, tx, source);
      else this.answer(tx, 481, 'Call/Transaction Does Not Exist');
      return;
    }
    if (this.isMergedRequest(request, tx)) {
      this.answer(tx, 482, 'Loop Detected');
      return;
    }
    switch (request.method) {
      case 'INVITE':
        this.receiveInvite(request, tx as InviteServerTransaction, source);
        return;
      case 'OPTIONS':
        // "The response code chosen MUST be the same that would have been chosen had the request
        // been an INVITE." (§11.2)
        if (this.acceptingCalls) this.answer(tx, 200, 'OK', capabilityHeaders(this.core));
        else this.answer(tx, 503, 'Service Unavailable', { 'Retry-After': String(SHUTDOWN_RETRY_AFTER_S) });
        return;
      case 'SUBSCRIBE':
        this.receiveSubscribe(request, tx, source);
        return;
      default:
        // BYE, INFO, NOTIFY, REFER... outside a dialog (§15.1.2: "If the BYE does not match an
        // existing dialog, the UAS core SHOULD generate a 481").
        this.answer(tx, 481, 'Call/Transaction Does Not Exist');
    }
  }

  /**
   * "If the request has no tag in the To header field, the UAS core MUST check the request against
   * ongoing transactions. If the From tag, Call-ID, and CSeq exactly match those associated with
   * an ongoing transaction, but the request does not match that transaction ... the UAS core
   * SHOULD generate a 482 (Loop Detected) response" (§8.2.2.2)
   */
  private isMergedRequest(request: SipRequest, self: ServerTransaction): boolean {
    const callId = request.callId;
    const fromTag = request.from.tag;
    const cseq = request.get('cseq');
    for (const tx of this.serverTransactions.values()) {
      if (tx === self || tx.request.method !== request.method || tx.request.callId !== callId) continue;
      if (tx.request.get('cseq') === cseq && tx.request.from.tag === fromTag) return true;
    }
    return false;
  }

  private receiveInvite(request: SipRequest, tx: InviteServerTransaction, source: TransportAddress): void {
    if (!this.acceptingCalls) {
      this.answer(tx, 503, 'Service Unavailable', { 'Retry-After': String(SHUTDOWN_RETRY_AFTER_S) });
      return;
    }
    const invite = new IncomingInvite(this.core, tx, request, source, {
      ...(this.options.inviteAnswerTimeoutMs === undefined ? {} : { answerTimeoutMs: this.options.inviteAnswerTimeoutMs }),
      onSettled: (settled) => this.invites.delete(settled),
    });
    this.invites.add(invite);
    try {
      this.onInvite(invite);
    } catch (err) {
      this.logger.error({ err, callId: request.callId }, 'onInvite handler threw');
      if (invite.pending) invite.reject(500, 'Server Internal Error');
    }
  }

  /** A new SUBSCRIBE (RFC 6665 §4.2.1): to the onSubscribe handler, 405 without one (§8.2.1). */
  private receiveSubscribe(request: SipRequest, tx: ServerTransaction, source: TransportAddress): void {
    const handler = this.subscribeHandler;
    if (!handler) {
      this.answer(tx, 405, 'Method Not Allowed', { Allow: allowHeader(this) });
      return;
    }
    if (!this.acceptingCalls) {
      this.answer(tx, 503, 'Service Unavailable', { 'Retry-After': String(SHUTDOWN_RETRY_AFTER_S) });
      return;
    }
    const subscribe = new IncomingSubscribe(this.core, tx, request, source, {
      createDialog: (localTag) => new Dialog(this.core, request, localTag),
    });
    try {
      handler(subscribe);
    } catch (err) {
      this.logger.error({ err, callId: request.callId }, 'onSubscribe handler threw');
      if (subscribe.pending) subscribe.reject(500, 'Server Internal Error');
    }
  }

  /**
   * "The CANCEL method requests that the TU at the server side cancel a pending transaction. The
   * TU determines the transaction to be cancelled by taking the CANCEL request, and then assuming
   * that the request method is anything but CANCEL or ACK and applying the transaction matching
   * procedures of Section 17.2.3." ... "If the UAS did not find a matching transaction for the
   * CANCEL according to the procedure above, it SHOULD respond to the CANCEL with a 481" ...
   * "the To tag of the response to the CANCEL and the To tag in the response to the original
   * request SHOULD be the same." (§9.2)
   */
  private receiveCancel(request: SipRequest, tx: ServerTransaction): void {
    const target = this.serverTransactions.get(serverTransactionKey(request, 'INVITE'));
    if (!(target instanceof InviteServerTransaction)) {
      this.answer(tx, 481, 'Call/Transaction Does Not Exist');
      return;
    }
    this.answer(tx, 200, 'OK', {}, target.localTag);
    if (target.state === TransactionState.Proceeding && !target.finalResponseSent) {
      if (target.cancelHandler) target.cancelHandler();
      else this.answer(target, 487, 'Request Terminated', {}, target.localTag);
    }
  }

  private receiveAck(ack: SipRequest): void {
    const toTag = ack.to.tag;
    const dialog = toTag === undefined ? undefined : this.dialogs.get(dialogKey(ack.callId, toTag, ack.from.tag ?? ''));
    if (dialog) dialog.receiveAck(ack);
    else this.logger.debug({ callId: ack.callId }, 'ACK matches no dialog');
  }

  // ---- requests we send ----------------------------------------------------------------------

  /**
   * Next hop of a request (RFC 3263 simplified): the URI's maddr or host, A/AAAA lookup only,
   * the transport parameter (UDP by default), port 5060 by default. sips: needs TLS, which we lack.
   */
  private async resolveNextHop(uri: string): Promise<TransportAddress> {
    const parsed = parseUri(uri);
    if (parsed.scheme !== 'sip') throw new Error(`cannot send to a ${parsed.scheme}: URI`);
    const param = parsed.params['transport']?.toLowerCase();
    const transport: TransportProtocol = param === 'tcp' ? 'tcp' : 'udp';
    if (param !== undefined && param !== 'tcp' && param !== 'udp') throw new Error('unsupported transport');
    if (!this.transportFor({ transport, address: '', port: 0 })) throw new Error(`no ${transport} transport`);
    const host = parsed.params['maddr'] ?? parsed.host;
    const address = isIP(host) ? host : (await lookup(host)).address;
    return { transport, address, port: parsed.port ?? DEFAULT_SIP_PORT };
  }

  /**
   * Sends a NOTIFY outside any dialog and resolves with the final status (a local 408 when no
   * response came, 503 when it could not be sent or routed). It is a request of its own (§8.1.1):
   * a new Call-ID, From with a new tag, To without one, CSeq 1, our Contact (RFC 6665 wants one
   * in every NOTIFY), Event and Subscription-State (RFC 6665 §8.2.1, §8.2.3). Throws when
   * `target`, `to` or `from` is not a SIP URI.
   */
  async sendNotify(notify: OutOfDialogNotify): Promise<number> {
    const target = parseUri(notify.target);
    parseUri(notify.to);
    if (notify.from !== undefined) parseUri(notify.from);
    if (!this.udp || this.closed) return 503;
    const transport: TransportProtocol = target.params['transport']?.toLowerCase() === 'tcp' ? 'tcp' : 'udp';
    const from = notify.from ?? `sip:${formatHost(this.options.advertisedHost)}:${this.local.port}`;
    const request = new SipRequest('NOTIFY', notify.target);
    request.append('Max-Forwards', '70');
    request.append('From', `<${from}>;tag=${newTag()}`);
    request.append('To', `<${notify.to}>`);
    request.append('Call-ID', newCallId());
    request.append('CSeq', '1 NOTIFY');
    request.append('Contact', this.contactHeader(transport));
    request.append('Event', notify.event);
    request.append('Subscription-State', notify.subscriptionState);
    request.append('User-Agent', this.userAgent);
    for (const [name, value] of Object.entries(notify.headers ?? {})) request.set(name, value);
    if (notify.body) request.setBody(notify.body.contentType, notify.body.content);
    return (await this.sendRequest(request, notify.target)).status;
  }

  private async sendRequest(request: SipRequest, nextHop: string): Promise<SipResponse> {
    let dest: TransportAddress;
    try {
      dest = await this.resolveNextHop(nextHop);
    } catch (err) {
      this.logger.debug({ err, method: request.method }, 'no route for SIP request');
      return createLocalResponse(request, 503, 'Service Unavailable');
    }
    if (this.closed) return createLocalResponse(request, 503, 'Service Unavailable');
    // "the UAC MUST insert a Via into the request... The branch ID inserted by an element
    // compliant with this specification MUST always begin with the characters "z9hG4bK"" (§8.1.1.7);
    // rport asks for the response at our source port (RFC 3581 §3).
    const branch = newBranch();
    const sentBy = `${formatHost(this.options.advertisedHost)}:${this.local.port}`;
    request.prepend('Via', `SIP/2.0/${dest.transport.toUpperCase()} ${sentBy};branch=${branch};rport`);
    const key = clientTransactionKey(branch, request.method);
    return new Promise<SipResponse>((resolve) => {
      const tx = new NonInviteClientTransaction(key, request, this.environment(dest, this.clientTransactions), {
        onResponse: (response) => {
          if (response.status >= 200) resolve(response);
        },
        onTimeout: () => resolve(createLocalResponse(request, 408, 'Request Timeout')),
        onTransportError: () => resolve(createLocalResponse(request, 503, 'Service Unavailable')),
      });
      this.clientTransactions.set(key, tx);
    });
  }
}

/**
 * A header section too large to parse, cut down to what a response copies (§8.2.6.2: Via, From,
 * To, Call-ID, CSeq) so that the sender still learns why; lines over 2 KiB are not kept.
 */
function responseHeadersOnly(head: Buffer): Buffer {
  const lines = head.toString('latin1').split('\r\n');
  const kept = [lines[0] ?? ''];
  for (const line of lines.slice(1)) {
    if (line.length <= 2048 && /^(via|v|from|f|to|t|call-id|i|cseq)[ \t]*:/i.test(line)) kept.push(line);
  }
  return Buffer.from(`${kept.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, 'latin1');
}
