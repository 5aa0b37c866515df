/**
 * FakeDrachtioServer — a stand-in for drachtio-server, which cannot run on this machine.
 *
 * Towards vmaccess it speaks drachtio's control protocol on a loopback TCP port, as the real
 * drachtio-srf 5.0.29 in the engine reads it (lib/wire-protocol.js, lib/drachtio-agent.js):
 * frames `<bytes>#<msgId>|<verb>|…`, `authenticate` / `route` / `ping` commands answered with
 * `response|<msgId>|OK|…`, and SIP messages as `sip|…` frames whose leader carries the
 * transaction and dialog ids. Like the real server it fills in what an application leaves out of
 * a request (Via, From tag, Call-ID, CSeq, Contact), adds a To tag and Contact to the
 * application's 2xx, echoes every message it "sent" back to the application, answers a CANCEL
 * with 487 itself, and keeps the dialogs (INVITE and SUBSCRIBE ones; a NOTIFY saying
 * `terminated` ends a subscription's).
 *
 * Towards the network it does not open SIP sockets: tests play the callers (FakeCaller) and
 * FreeSWITCH's SIP profile (a NetworkPeer registered for its host:port, see FakeFreeSwitch).
 * What is fake is therefore the SIP transport and drachtio-server's C++ stack; what is real is
 * drachtio-srf's request/response/dialog objects and the engine on top of them.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { buildSip, header, headerPairs, parseSip, tagOf, token, withHeader, type SipText } from './sip-text.js';

export interface FakeResponse {
  readonly status: number;
  readonly reason?: string;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: string;
}

/** The far end of one leg (a caller, or FreeSWITCH): answers what the application sends it. */
export interface NetworkPeer {
  readonly address: string;
  readonly port: number;
  /** A request from the application: a new INVITE (no leg yet) or an in-dialog request. */
  onRequest(request: SipText, leg: Leg | null): Promise<FakeResponse> | FakeResponse;
  /** The application's ACK for a 2xx this peer sent. */
  onAck?(leg: Leg): void;
  /** The leg a 2xx of this peer created (UAC legs towards FreeSWITCH). */
  onLeg?(leg: Leg): void;
}

/** One dialog between the application and a network peer. */
export class Leg {
  ended = false;
  /** CSeq of requests the application sends / the peer sends. */
  appCseq: number;
  peerCseq = 100;
  constructor(
    readonly id: string,
    readonly callId: string,
    readonly peer: NetworkPeer,
    /** From/To as the application side sees them (with tags). */
    readonly appUri: string, readonly appTag: string,
    readonly peerUri: string, readonly peerTag: string,
    appCseq: number,
  ) {
    this.appCseq = appCseq;
  }
}

interface PendingNetworkRequest {
  readonly request: SipText;
  readonly peer: NetworkPeer;
  readonly leg: Leg | null;
  resolve(response: SipText): void;
  cancelled?: boolean;
}

const SERVER_HOSTPORT = '127.0.0.1:5060';

export class FakeDrachtioServer {
  readonly #server: Server;
  readonly #secret: string;
  #app: Socket | null = null;
  #buffer = Buffer.alloc(0);
  #seq = 0;
  readonly #peers = new Map<string, NetworkPeer>();
  readonly #legs = new Map<string, Leg>();
  readonly #pending = new Map<string, PendingNetworkRequest>();
  /** The request verbs the application asked for (`route|invite`). */
  readonly routes = new Set<string>();
  /** Every frame the application sent, for assertions and failure messages. */
  readonly fromApp: string[] = [];
  authenticated = 0;
  #authWaiters: Array<() => void> = [];

  private constructor(server: Server, secret: string) {
    this.#server = server;
    this.#secret = secret;
    server.on('connection', (socket) => this.#onConnection(socket));
  }

  static async start(opts: { secret: string; port?: number }): Promise<FakeDrachtioServer> {
    const server = createServer();
    server.listen(opts.port ?? 0, '127.0.0.1');
    await once(server, 'listening');
    return new FakeDrachtioServer(server, opts.secret);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get connected(): boolean {
    return this.#app !== null;
  }

  /** Resolves once an application has authenticated and asked for INVITEs. */
  waitForApp(timeoutMs = 10_000): Promise<void> {
    if (this.#app !== null && this.routes.has('invite')) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no application connected to the fake drachtio-server')), timeoutMs);
      this.#authWaiters.push(() => { clearTimeout(timer); resolve(); });
    });
  }

  /** Requests the application sends to `host:port` (FreeSWITCH's SIP profile) go to `peer`. */
  registerPeer(hostport: string, peer: NetworkPeer): void {
    this.#peers.set(hostport, peer);
  }

  /** Drops the application's control connection (as a drachtio-server restart would). */
  dropApp(): void {
    this.#app?.destroy();
    this.#app = null;
    this.routes.clear();
  }

  async close(): Promise<void> {
    this.dropApp();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // --- network → application -------------------------------------------------------------------

  /** A new INVITE from `peer` (a caller); resolves with the application's final response. */
  sendInvite(peer: NetworkPeer, opts: {
    requestUri: string; from: string; to?: string; body?: string; headers?: ReadonlyArray<readonly [string, string]>;
    contentType?: string; callId?: string;
  }): { callId: string; final: Promise<SipText>; cancel(): void } {
    const callId = opts.callId ?? `${token(8)}@${peer.address}`;
    const fromTag = token(4);
    const body = opts.body ?? '';
    const text = buildSip(`INVITE ${opts.requestUri} SIP/2.0`, [
      ['Via', `SIP/2.0/UDP ${peer.address}:${peer.port};branch=z9hG4bK${token(6)};rport`],
      ['Max-Forwards', '70'],
      ['From', `${opts.from};tag=${fromTag}`],
      ['To', opts.to ?? `<${opts.requestUri}>`],
      ['Call-ID', callId],
      ['CSeq', '1 INVITE'],
      ['Contact', `<sip:caller@${peer.address}:${peer.port}>`],
      ...(body !== '' ? [['Content-Type', opts.contentType ?? 'application/sdp'] as const] : []),
      ...(opts.headers ?? []),
    ], body);
    const txnId = this.#txn();
    let resolveFinal!: (r: SipText) => void;
    const final = new Promise<SipText>((resolve) => { resolveFinal = resolve; });
    const request = parseSip(text);
    this.#pending.set(txnId, { request, peer, leg: null, resolve: resolveFinal });
    this.#sendSip('network', peer, txnId, '', text);
    return {
      callId,
      final,
      cancel: () => {
        const pending = this.#pending.get(txnId);
        if (pending === undefined) return;
        pending.cancelled = true;
        this.#pending.delete(txnId);
        const cancel = buildSip(`CANCEL ${opts.requestUri} SIP/2.0`, [
          ['Via', header(request, 'via')!], ['Max-Forwards', '70'], ['From', header(request, 'from')!],
          ['To', header(request, 'to')!], ['Call-ID', callId], ['CSeq', '1 CANCEL'],
        ]);
        this.#sendSip('network', peer, this.#txn(), '', cancel);
        // drachtio-server answers the CANCEL and ends the INVITE with 487 itself.
        pending.resolve(parseSip(buildSip('SIP/2.0 487 Request Terminated', [
          ['Via', header(request, 'via')!], ['From', header(request, 'from')!],
          ['To', `${header(request, 'to')!};tag=${token(4)}`], ['Call-ID', callId], ['CSeq', '1 INVITE'],
        ])));
      },
    };
  }

  /**
   * A new request other than INVITE from `peer` (a SUBSCRIBE, an OPTIONS, …); resolves with the
   * application's final response. A 2xx to a SUBSCRIBE creates a dialog, found with `legOf`.
   */
  sendRequest(peer: NetworkPeer, method: string, opts: {
    requestUri: string; from: string; to?: string; body?: string; headers?: ReadonlyArray<readonly [string, string]>;
    contentType?: string; callId?: string; contact?: string | null;
  }): { callId: string; final: Promise<SipText> } {
    const callId = opts.callId ?? `${token(8)}@${peer.address}`;
    const body = opts.body ?? '';
    const contact = opts.contact === undefined ? `<sip:peer@${peer.address}:${peer.port}>` : opts.contact;
    const text = buildSip(`${method} ${opts.requestUri} SIP/2.0`, [
      ['Via', `SIP/2.0/UDP ${peer.address}:${peer.port};branch=z9hG4bK${token(6)};rport`],
      ['Max-Forwards', '70'],
      ['From', `${opts.from};tag=${token(4)}`],
      ['To', opts.to ?? `<${opts.requestUri}>`],
      ['Call-ID', callId],
      ['CSeq', `1 ${method}`],
      ...(contact !== null ? [['Contact', contact] as const] : []),
      ...(body !== '' ? [['Content-Type', opts.contentType ?? 'text/plain'] as const] : []),
      ...(opts.headers ?? []),
    ], body);
    const txnId = this.#txn();
    let resolveFinal!: (r: SipText) => void;
    const final = new Promise<SipText>((resolve) => { resolveFinal = resolve; });
    this.#pending.set(txnId, { request: parseSip(text), peer, leg: null, resolve: resolveFinal });
    this.#sendSip('network', peer, txnId, '', text);
    return { callId, final };
  }

  /** The caller's ACK for the application's 2xx. */
  sendAck(leg: Leg): void {
    const text = buildSip(`ACK sip:vmaccess@${SERVER_HOSTPORT} SIP/2.0`, [
      ['Via', `SIP/2.0/UDP ${leg.peer.address}:${leg.peer.port};branch=z9hG4bK${token(6)}`],
      ['Max-Forwards', '70'],
      ['From', `${leg.peerUri};tag=${leg.peerTag}`],
      ['To', `${leg.appUri};tag=${leg.appTag}`],
      ['Call-ID', leg.callId],
      ['CSeq', '1 ACK'],
    ]);
    this.#sendSip('network', leg.peer, this.#txn(), leg.id, text);
  }

  /** An in-dialog request from the leg's peer (BYE, INFO, re-INVITE); resolves with the application's answer. */
  sendInDialog(leg: Leg, method: string, opts: { headers?: ReadonlyArray<readonly [string, string]>; body?: string } = {}): Promise<SipText> {
    leg.peerCseq += 1;
    const text = buildSip(`${method} sip:vmaccess@${SERVER_HOSTPORT} SIP/2.0`, [
      ['Via', `SIP/2.0/UDP ${leg.peer.address}:${leg.peer.port};branch=z9hG4bK${token(6)}`],
      ['Max-Forwards', '70'],
      ['From', `${leg.peerUri};tag=${leg.peerTag}`],
      ['To', `${leg.appUri};tag=${leg.appTag}`],
      ['Call-ID', leg.callId],
      ['CSeq', `${leg.peerCseq} ${method}`],
      ['Contact', `<sip:peer@${leg.peer.address}:${leg.peer.port}>`],
      ...(opts.headers ?? []),
    ], opts.body ?? '');
    if (method === 'BYE') leg.ended = true;
    const txnId = this.#txn();
    return new Promise<SipText>((resolve) => {
      this.#pending.set(txnId, { request: parseSip(text), peer: leg.peer, leg, resolve });
      this.#sendSip('network', leg.peer, txnId, leg.id, text);
    });
  }

  legOf(callId: string): Leg | undefined {
    return [...this.#legs.values()].find((l) => l.callId === callId);
  }

  // --- the control connection --------------------------------------------------------------------

  #txn(): string {
    this.#seq += 1;
    return `txn-${this.#seq}-${token(3)}`;
  }

  #onConnection(socket: Socket): void {
    if (this.#app !== null) this.#app.destroy();
    this.#app = socket;
    this.#buffer = Buffer.alloc(0);
    socket.on('data', (data) => this.#onData(socket, data));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.#app === socket) {
        this.#app = null;
        this.routes.clear();
      }
    });
  }

  #write(payload: string): void {
    const socket = this.#app;
    if (socket === null || socket.destroyed) return;
    const framed = `${token(8)}|${payload}`;
    socket.write(`${Buffer.byteLength(framed)}#${framed}`);
  }

  #reply(msgId: string, tokens: readonly string[], message?: string): void {
    this.#write(`response|${msgId}|${tokens.join('|')}${message !== undefined ? `\r\n${message}` : ''}`);
  }

  /** `sip|<source>|<bytes>|udp|<address>|<port>|<time>|<txn>|<dialog>` + CRLF + message. */
  #sendSip(source: 'network', peer: NetworkPeer, txnId: string, dialogId: string, text: string): void {
    this.#write(`sip|${source}|${Buffer.byteLength(text)}|udp|${peer.address}|${peer.port}|${new Date().toISOString()}|${txnId}|${dialogId}\r\n${text}`);
  }

  #onData(socket: Socket, data: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, data]);
    for (;;) {
      const hash = this.#buffer.indexOf('#');
      if (hash <= 0) return;
      const length = Number(this.#buffer.toString('utf8', 0, hash));
      if (!Number.isInteger(length) || length <= 0) {
        socket.destroy();
        return;
      }
      if (this.#buffer.length < hash + 1 + length) return;
      const frame = this.#buffer.toString('utf8', hash + 1, hash + 1 + length);
      this.#buffer = this.#buffer.subarray(hash + 1 + length);
      this.fromApp.push(frame);
      try {
        this.#onFrame(socket, frame);
      } catch (err) {
        // A fake that throws would hang the test silently: make it loud instead.
        console.error('FakeDrachtioServer: bad frame', err, frame);
      }
    }
  }

  #onFrame(socket: Socket, frame: string): void {
    const eol = frame.indexOf('\r\n');
    const leader = eol === -1 ? frame : frame.slice(0, eol);
    const body = eol === -1 ? '' : frame.slice(eol + 2);
    const [msgId = '', verb = '', ...args] = leader.split('|');
    switch (verb) {
      case 'authenticate':
        if (args[0] === this.#secret) {
          this.authenticated += 1;
          this.#reply(msgId, ['OK', `udp/${SERVER_HOSTPORT},tcp/${SERVER_HOSTPORT}`, 'v0.9.4']);
        } else {
          this.#reply(msgId, ['NOK', 'incorrect secret']);
          setTimeout(() => socket.destroy(), 10);
        }
        return;
      case 'route':
        this.routes.add(args[0] ?? '');
        this.#reply(msgId, ['OK']);
        if (args[0] === 'invite') for (const w of this.#authWaiters.splice(0)) w();
        return;
      case 'remove_route':
        this.routes.delete(args[0] ?? '');
        this.#reply(msgId, ['OK']);
        return;
      case 'ping':
        this.#reply(msgId, ['OK']);
        return;
      case 'sip':
        this.#onAppSip(msgId, args[0] ?? '', args[1] ?? '', body);
        return;
      default:
        this.#reply(msgId, ['NOK', `unknown verb ${verb}`]);
    }
  }

  /** Echo of what we "sent": `response|<msgId>|OK|application|<bytes>|udp|<addr>|<port>|<time>|<txn>|<dialog>`. */
  #echo(msgId: string, txnId: string, dialogId: string, text: string): void {
    this.#reply(msgId, ['OK', 'application', String(Buffer.byteLength(text)), 'udp', '127.0.0.1', '5060', new Date().toISOString(), txnId, dialogId], text);
  }

  #onAppSip(msgId: string, txnId: string, dialogId: string, text: string): void {
    const msg = parseSip(text);
    if (msg.isResponse) {
      this.#onAppResponse(msgId, txnId, msg);
      return;
    }
    if (dialogId === '') {
      this.#onAppNewRequest(msgId, msg);
      return;
    }
    const leg = this.#legs.get(dialogId);
    if (leg === undefined || leg.ended) {
      this.#reply(msgId, ['NOK', 'unable to find dialog']);
      return;
    }
    this.#onAppInDialog(msgId, leg, msg);
  }

  /** The application answers a request we delivered (INVITE, BYE, INFO, re-INVITE). */
  #onAppResponse(msgId: string, txnId: string, msg: SipText): void {
    const pending = this.#pending.get(txnId);
    if (pending === undefined) {
      this.#reply(msgId, ['NOK', 'transaction not found']);
      return;
    }
    const status = msg.status ?? 0;
    let pairs = headerPairs(msg);
    let dialogId = pending.leg?.id ?? '';
    // A 2xx to a new INVITE or SUBSCRIBE creates a dialog (RFC 3261 §12.1, RFC 6665 §4.4.1).
    const createsDialog = (pending.request.method === 'INVITE' || pending.request.method === 'SUBSCRIBE') && pending.leg === null;
    if (createsDialog && status >= 200 && status < 300) {
      const to = header(msg, 'to') ?? header(pending.request, 'to')!;
      const appTag = tagOf(to) ?? token(4);
      if (tagOf(to) === undefined) pairs = withHeader(pairs, 'To', `${to};tag=${appTag}`);
      if (header(msg, 'contact') === undefined) pairs = withHeader(pairs, 'Contact', `<sip:${SERVER_HOSTPORT}>`);
      dialogId = `dlg-${token(5)}`;
      const fromHeader = header(pending.request, 'from')!;
      const leg = new Leg(dialogId, header(pending.request, 'call-id')!, pending.peer,
        to.replace(/;\s*tag=[^;]*/i, ''), appTag, fromHeader.replace(/;\s*tag=[^;]*/i, ''), tagOf(fromHeader)!, 0);
      this.#legs.set(dialogId, leg);
    } else if (createsDialog && status >= 300 && tagOf(header(msg, 'to')) === undefined) {
      pairs = withHeader(pairs, 'To', `${header(msg, 'to') ?? header(pending.request, 'to')!};tag=${token(4)}`);
    }
    const full = buildSip(msg.startLine, pairs, msg.body);
    this.#echo(msgId, txnId, dialogId, full);
    if (status >= 200) {
      this.#pending.delete(txnId);
      pending.resolve(parseSip(full));
    }
  }

  /** A new request from the application (the INVITE to FreeSWITCH): fill it in and hand it to the peer. */
  #onAppNewRequest(msgId: string, msg: SipText): void {
    const uri = msg.uri ?? '';
    const hostport = /^sips?:(?:[^@]*@)?([^;>]+)/.exec(uri)?.[1] ?? '';
    const peer = this.#peers.get(hostport);
    const txnId = this.#txn();
    const callId = header(msg, 'call-id') ?? `${token(8)}@127.0.0.1`;
    const from = header(msg, 'from') ?? '<sip:vmaccess@127.0.0.1>';
    const appTag = tagOf(from) ?? token(4);
    let pairs = headerPairs(msg);
    pairs = withHeader(pairs, 'Via', `SIP/2.0/UDP ${SERVER_HOSTPORT};branch=z9hG4bK${token(6)};rport`);
    pairs = withHeader(pairs, 'From', tagOf(from) === undefined ? `${from};tag=${appTag}` : from);
    if (header(msg, 'to') === undefined) pairs = withHeader(pairs, 'To', `<${uri}>`);
    pairs = withHeader(pairs, 'Call-ID', callId);
    if (header(msg, 'cseq') === undefined) pairs = withHeader(pairs, 'CSeq', `1 ${msg.method ?? 'INVITE'}`);
    if (header(msg, 'contact') === undefined) pairs = withHeader(pairs, 'Contact', `<sip:${SERVER_HOSTPORT}>`);
    if (header(msg, 'max-forwards') === undefined) pairs = withHeader(pairs, 'Max-Forwards', '70');
    if (msg.body !== '' && header(msg, 'content-type') === undefined) pairs = withHeader(pairs, 'Content-Type', 'application/sdp');
    const full = buildSip(msg.startLine, pairs, msg.body);
    this.#echo(msgId, txnId, '', full);
    const request = parseSip(full);
    if (peer === undefined) {
      this.#networkResponse(null, txnId, '', request, { status: 503, reason: 'Service Unavailable' }, { address: '127.0.0.1', port: 9 });
      return;
    }
    void Promise.resolve(peer.onRequest(request, null)).then((response) => {
      let dialogId = '';
      let peerTag = token(4);
      if (msg.method === 'INVITE' && response.status >= 200 && response.status < 300) {
        dialogId = `dlg-${token(5)}`;
        const to = header(request, 'to')!;
        const leg = new Leg(dialogId, callId, peer, from.replace(/;\s*tag=[^;]*/i, ''), appTag, to.replace(/;\s*tag=[^;]*/i, ''), peerTag, 1);
        this.#legs.set(dialogId, leg);
        peer.onLeg?.(leg);
        peerTag = leg.peerTag;
      }
      this.#networkResponse(null, txnId, dialogId, request, response, peer, peerTag);
    });
  }

  #onAppInDialog(msgId: string, leg: Leg, msg: SipText): void {
    const method = msg.method ?? '';
    const txnId = this.#txn();
    let pairs = headerPairs(msg);
    pairs = withHeader(pairs, 'Via', `SIP/2.0/UDP ${SERVER_HOSTPORT};branch=z9hG4bK${token(6)};rport`);
    pairs = withHeader(pairs, 'From', `${leg.appUri};tag=${leg.appTag}`);
    pairs = withHeader(pairs, 'To', `${leg.peerUri};tag=${leg.peerTag}`);
    pairs = withHeader(pairs, 'Call-ID', leg.callId);
    if (method !== 'ACK') leg.appCseq += 1;
    pairs = withHeader(pairs, 'CSeq', `${method === 'ACK' ? Math.max(1, leg.appCseq) : leg.appCseq} ${method}`);
    if (header(msg, 'max-forwards') === undefined) pairs = withHeader(pairs, 'Max-Forwards', '70');
    const full = buildSip(`${method} sip:peer@${leg.peer.address}:${leg.peer.port} SIP/2.0`, pairs, msg.body);
    this.#echo(msgId, txnId, leg.id, full);
    const request = parseSip(full);
    if (method === 'ACK') {
      leg.peer.onAck?.(leg);
      return;
    }
    if (method === 'BYE') leg.ended = true;
    void Promise.resolve(leg.peer.onRequest(request, leg)).then((response) => {
      // A NOTIFY saying `terminated` ends the subscription dialog (RFC 6665 §4.4.1).
      if (method === 'NOTIFY' && /^\s*terminated/i.test(header(request, 'subscription-state') ?? '')) leg.ended = true;
      this.#networkResponse(leg, txnId, leg.id, request, response, leg.peer);
    });
  }

  /** `sip|network|…|<txn>|<dialog>` + the peer's response to an application request. */
  #networkResponse(
    leg: Leg | null, txnId: string, dialogId: string, request: SipText, response: FakeResponse,
    from: { address: string; port: number }, peerTag?: string,
  ): void {
    const to = header(request, 'to')!;
    const toWithTag = tagOf(to) !== undefined ? to : `${to};tag=${peerTag ?? leg?.peerTag ?? token(4)}`;
    const pairs: Array<[string, string]> = [
      ['Via', header(request, 'via')!],
      ['From', header(request, 'from')!],
      ['To', toWithTag],
      ['Call-ID', header(request, 'call-id')!],
      ['CSeq', header(request, 'cseq')!],
      ...(response.status >= 200 && response.status < 300 && request.method === 'INVITE'
        ? [['Contact', `<sip:peer@${from.address}:${from.port}>`] as [string, string]] : []),
      ...(response.headers ?? []).map(([n, v]) => [n, v] as [string, string]),
    ];
    const text = buildSip(`SIP/2.0 ${response.status} ${response.reason ?? 'OK'}`, pairs, response.body ?? '');
    this.#write(`sip|network|${Buffer.byteLength(text)}|udp|${from.address}|${from.port}|${new Date().toISOString()}|${txnId}|${dialogId}\r\n${text}`);
  }
}
