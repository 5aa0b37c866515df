/**
 * The production engine (SIP_ENGINE=drachtio): drachtio-server carries the SIP signalling and
 * FreeSWITCH the media; vmaccess drives both — drachtio-server over its control connection
 * (drachtio-srf, inbound mode: we connect to DRACHTIO_HOST:PORT), FreeSWITCH over ESL
 * (drachtio-fsmrf). The router, the IVR machine, the session runner, the store and the guard are
 * the same objects the embedded engine uses; only the call-control port differs.
 *
 * An INVITE is answered exactly as on the embedded engine: 415/488 for an offer we cannot use
 * (checked before the store is touched), 503 + Retry-After when the store, FreeSWITCH or the
 * server's capacity is not there, 404 for an unknown domain or number; otherwise FreeSWITCH gets
 * an endpoint for the caller's offer and the caller a 200 OK with FreeSWITCH's answer.
 */
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import type { HealthCheck } from '../../http/http-server.js';
import { isDigit } from '../../ivr/types.js';
import { failedLoginSource } from '../../guard/login-guard.js';
import type { CallEngine } from '../engine.js';
import type { CallRouter, RouteResult } from '../router.js';
import { CallSession, type AccessCodeOperations, type MessageOperations } from '../session.js';
import type { AudioStore } from '../../messages/audio-store.js';
import { ivrSettingsFor } from '../ivr-settings.js';
import { negotiate, type NegotiatedMedia } from '../sdp.js';
import { parseDtmfInfo } from '../dtmf-info.js';
import { InviteRateLimiter } from '../invite-rate-limiter.js';
import { countRoutingFailure, type Metrics } from '../../metrics/metrics.js';
import type { DigitMethod } from '../call-control.js';
import { addressingOf } from './addressing.js';
import { DrachtioCall } from './drachtio-call.js';
import { freeswitchMessageFiles, type FreeswitchMessageFiles } from './message-files.js';
import type { DtmfEvent, MediaEndpoint, SrfApp, SrfDialog, SrfRequest, SrfResponse } from './drachtio-types.js';
import { MediaServerConnection } from './media-server-connection.js';
import { Mrf, Srf } from './modules.js';
import { DrachtioMwi } from './mwi.js';
import type { MwiBackend } from '../message-summary.js';
import type { ExpiresPolicy } from '../mwi-policy.js';

export interface DrachtioEngineOptions {
  readonly config: Config;
  readonly router: CallRouter;
  readonly accessCodes: AccessCodeOperations;
  readonly messages: MessageOperations;
  /** The message audio store (files, or the database). */
  readonly audio: AudioStore;
  /** DATA_DIR/messages as we see it: FreeSWITCH records into and plays from it (FREESWITCH_MESSAGES_DIR). */
  readonly audioDir: string;
  readonly logger: Logger;
  /** Longest wait between reconnects to drachtio-server and FreeSWITCH (tests shorten it). */
  readonly maxRetryMs?: number;
  readonly metrics?: Metrics;
  /** When set, message-summary SUBSCRIBEs are taken and NOTIFYd (./mwi.ts); without it none are routed to us. */
  readonly mwi?: MwiBackend;
  /** MWI subscription durations (tests shorten them). */
  readonly mwiExpires?: Partial<ExpiresPolicy>;
}

interface ActiveCall {
  readonly call: DrachtioCall;
  readonly session: CallSession;
  readonly done: Promise<void>;
}

/** RFC 3261 §21.5.4 / §20.33: how long a refused caller should wait before trying again. */
const RETRY_AFTER_BUSY_S = '5';
const RETRY_AFTER_DOWN_S = '30';
/** drachtio-srf keepalive on the control connection (its default is off). */
const PING_INTERVAL_MS = 10_000;

/** FreeSWITCH's DTMF-Source header → how the digit reached us. */
function digitMethodOf(source: string | undefined): DigitMethod {
  return source === 'INBAND_AUDIO' ? 'inband' : source === 'ENDPOINT' ? 'info' : 'rfc4733';
}

export class DrachtioEngine implements CallEngine {
  readonly #srf: SrfApp;
  readonly #media: MediaServerConnection;
  readonly #calls = new Map<string, ActiveCall>();
  /** INVITEs being answered (routing, FreeSWITCH endpoint, 200): drain waits for them too. */
  readonly #setups = new Set<Promise<void>>();
  readonly #log: Logger;
  #drachtioConnected = false;
  #drachtioHostport: string | null = null;
  #lastDrachtioError = '';
  #accepting = true;
  #closed = false;
  readonly #inviteRate: InviteRateLimiter;
  readonly #mwi: DrachtioMwi | null;
  readonly #messageFiles: FreeswitchMessageFiles;

  constructor(private readonly opts: DrachtioEngineOptions) {
    const { config } = opts;
    this.#log = opts.logger.child({ engine: 'drachtio' });
    this.#messageFiles = freeswitchMessageFiles({
      audio: opts.audio, localDir: opts.audioDir, freeswitchDir: config.freeswitch.messagesDir, logger: this.#log,
    });
    this.#srf = new Srf();
    const mrf = new Mrf(this.#srf);
    this.#media = new MediaServerConnection({
      host: config.freeswitch.host,
      port: config.freeswitch.port,
      secret: config.freeswitch.secret,
      profile: config.freeswitch.profile,
      listenAddress: config.freeswitch.eslListen.address,
      listenPort: config.freeswitch.eslListen.port,
      advertisedAddress: config.freeswitch.eslAdvertisedAddress,
      mrf,
      logger: this.#log,
      ...(opts.maxRetryMs !== undefined ? { maxRetryMs: opts.maxRetryMs } : {}),
    });
    this.#inviteRate = new InviteRateLimiter({ ratePerS: config.inviteRate.perSecond, burst: config.inviteRate.burst });
    this.#mwi = opts.mwi === undefined ? null : new DrachtioMwi({
      srf: this.#srf, backend: opts.mwi, isTrusted: (address) => config.trustedSipPeers.contains(address), logger: this.#log,
      ...(opts.mwiExpires !== undefined ? { expires: opts.mwiExpires } : {}),
    });
    // RTP is FreeSWITCH's here: only the call count is ours to report.
    opts.metrics?.setMediaSource({ activeCalls: () => this.#calls.size, rtpPacketsSent: () => 0, rtpLateTicks: () => 0, rtpSkippedSlots: () => 0 });
  }

  get activeCalls(): number {
    return this.#calls.size;
  }

  /** INVITEs being answered right now (they count against MAX_CALLS as calls do). */
  get setupsInProgress(): number {
    return this.#setups.size;
  }

  /** Live message-summary subscriptions (0 without `mwi`). */
  get mwiSubscriptions(): number {
    return this.#mwi?.subscriptions ?? 0;
  }

  get drachtioConnected(): boolean {
    return this.#drachtioConnected;
  }

  get mediaServerState(): MediaServerConnection['state'] {
    return this.#media.state;
  }

  async start(): Promise<void> {
    const { drachtio } = this.opts.config;
    const target = `${drachtio.host}:${drachtio.port}`;
    const srf = this.#srf;
    srf.on('connect', (err: Error | null, hostport: string) => {
      if (err) {
        // Typically a wrong DRACHTIO_SECRET: drachtio-server closes and srf tries again.
        this.#log.error({ drachtio: target, reason: err.message }, 'drachtio-server refused us');
        return;
      }
      this.#drachtioConnected = true;
      this.#drachtioHostport = hostport;
      this.#log.info({ drachtio: target, sip: hostport }, 'connected to drachtio-server');
    });
    // One line per retry: the reason comes from the 'error' just before it.
    srf.on('error', (err: Error) => {
      this.#lastDrachtioError = (err as NodeJS.ErrnoException).code ?? err.message;
      this.#log.debug({ drachtio: target, reason: err.message }, 'drachtio-server connection error');
    });
    srf.on('reconnecting', (info: { delay: number; attempt: number }) => {
      this.#log.warn({ drachtio: target, reason: this.#lastDrachtioError || 'connection lost', attempt: info.attempt, retryInMs: info.delay },
        'drachtio-server unreachable; retrying');
    });
    srf.on('close', () => {
      if (!this.#drachtioConnected) return;
      this.#drachtioConnected = false;
      if (!this.#closed) this.#log.error({ drachtio: target }, 'lost the connection to drachtio-server; reconnecting');
    });
    srf.invite((req, res) => {
      const setup = this.#onInvite(req, res).catch((err: unknown) => {
        this.#log.error({ err }, 'INVITE handling failed');
        this.#reject(res, 500);
      }).finally(() => this.#setups.delete(setup));
      this.#setups.add(setup);
    });
    // Routes are asked for at connect: the SUBSCRIBE handler must be in place before.
    this.#mwi?.register();
    srf.connect({
      host: drachtio.host,
      port: drachtio.port,
      secret: drachtio.secret,
      enablePing: true,
      pingInterval: PING_INTERVAL_MS,
      reconnect: { retryMaxDelay: this.opts.maxRetryMs ?? 10_000 },
    });
    this.#media.start();
  }

  describe(): Record<string, unknown> {
    const { drachtio, freeswitch } = this.opts.config;
    return {
      drachtio: `${drachtio.host}:${drachtio.port}`,
      freeswitch: `${freeswitch.host}:${freeswitch.port}`,
      sip: this.#drachtioHostport,
      promptsDir: freeswitch.promptsDir,
    };
  }

  health(): HealthCheck[] {
    return [
      { name: 'drachtio', check: () => Promise.resolve(this.#drachtioConnected) },
      { name: 'mediaServer', check: () => Promise.resolve(this.#media.mediaServer !== null) },
    ];
  }

  async drain(graceMs: number): Promise<void> {
    this.#accepting = false;
    // With several vmaccess apps on one drachtio-server, stop being offered new INVITEs so they
    // go to the others (`remove_route|invite`); in-dialog requests of our calls still arrive.
    // An INVITE already on its way still gets 503 + Retry-After.
    withdrawInviteRoute(this.#srf, this.#log);
    // Subscriptions end now (a last NOTIFY each), not after the calls: phones re-subscribe elsewhere.
    this.#mwi?.drain();
    const until = Date.now() + graceMs;
    // Calls being answered right now become calls (or fail) first.
    await Promise.race([Promise.all([...this.#setups]), sleep(graceMs)]);
    if (this.#calls.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all([...this.#calls.values()].map((c) => c.done)).then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), Math.max(0, until - Date.now())); }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#log.warn({ activeCalls: this.#calls.size }, 'grace period over: hanging up remaining calls');
      // Through the session, so the IVR stops with the call and it counts as ended by the server.
      for (const c of this.#calls.values()) c.session.hangupByServer('shutdown grace over');
      await Promise.race([Promise.all([...this.#calls.values()].map((c) => c.done)), sleep(2000)]);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#accepting = false;
    for (const c of this.#calls.values()) {
      c.session.remoteHangup('shutdown');
      await c.call.release();
    }
    await this.#mwi?.close();
    this.#drachtioConnected = false;
    stopSrf(this.#srf);
    await this.#media.close();
  }

  // -------------------------------------------------------------------------------------------

  #reject(res: SrfResponse, status: number, headers?: Record<string, string>): void {
    if (res.finalResponseSent) return;
    try {
      res.send(status, headers !== undefined ? { headers } : {});
      this.opts.metrics?.invitesRejected.inc({ status: String(status) });
    } catch (err) {
      this.#log.debug({ err }, 'reject after final response');
    }
  }

  async #onInvite(req: SrfRequest, res: SrfResponse): Promise<void> {
    const callId = req.get('Call-ID') ?? '';
    const log = this.#log.child({ callId });
    let cancelled = false;
    req.on('cancel', () => { cancelled = true; });

    if (!this.#accepting) {
      this.#reject(res, 503, { 'Retry-After': RETRY_AFTER_BUSY_S });
      return;
    }
    // Capacity and floods (RFC 3261 §21.5.4 503 with Retry-After).
    // This INVITE is not in #setups yet (it is added once its handler returns its promise).
    if (this.#calls.size + this.#setups.size >= this.opts.config.maxCalls) {
      log.warn({ activeCalls: this.#calls.size, maxCalls: this.opts.config.maxCalls }, 'INVITE refused: MAX_CALLS reached');
      this.#reject(res, 503, { 'Retry-After': RETRY_AFTER_BUSY_S });
      return;
    }
    const source = req.source_address;
    if (!this.opts.config.trustedSipPeers.contains(source) && !this.#inviteRate.allow(source)) {
      log.warn({ source }, 'INVITE refused: per-source INVITE rate exceeded');
      this.#reject(res, 503, { 'Retry-After': String(this.#inviteRate.retryAfterS(source)) });
      return;
    }

    // Media first: an offer we cannot answer is refused before touching the store.
    const contentType = (req.get('Content-Type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (req.body === '') {
      // A delayed offer would need FreeSWITCH to offer and the ACK's answer passed back to it;
      // drachtio-fsmrf 4 does not carry that through, so say plainly what we need.
      log.info('INVITE refused: no SDP offer (delayed offer is not supported on this engine)');
      this.#reject(res, 488, { Warning: '399 vmaccess "An SDP offer in the INVITE is required"' });
      return;
    }
    if (contentType !== 'application/sdp') {
      this.#reject(res, 415, { Accept: 'application/sdp' });
      return;
    }
    const offer = negotiate(req.body);
    if (!offer.ok) {
      log.info({ reason: offer.reason }, 'INVITE refused: no usable audio');
      this.#reject(res, 488, { Warning: '305 vmaccess "Incompatible media format"' });
      return;
    }

    let route: RouteResult;
    try {
      route = await this.opts.router.route(addressingOf(req));
    } catch (err) {
      log.error({ err }, 'routing failed: store unavailable');
      countRoutingFailure(this.opts.metrics, err);
      this.#reject(res, 503, { 'Retry-After': RETRY_AFTER_DOWN_S });
      return;
    }
    if (route.kind !== 'routed') {
      log.info({ result: route.kind }, 'INVITE refused: no such access number');
      this.#reject(res, 404);
      return;
    }
    if (cancelled) return;

    if (this.opts.config.answerDelayMs > 0) {
      // ANSWER_DELAY_MS: ring first, as on the embedded engine.
      res.send(180);
      await sleep(this.opts.config.answerDelayMs);
      if (cancelled) return;
    }
    const ms = this.#media.mediaServer;
    if (ms === null) {
      log.warn('INVITE refused: no media server');
      this.#reject(res, 503, { 'Retry-After': RETRY_AFTER_DOWN_S });
      return;
    }
    // G.711 only, in the caller's order of preference (the prompts are 8 kHz).
    const codecs = offer.media.codec.name === 'PCMA' ? ['PCMA', 'PCMU'] : ['PCMU', 'PCMA'];
    let endpoint: MediaEndpoint;
    try {
      endpoint = await ms.createEndpoint({ remoteSdp: req.body, codecs });
    } catch (err) {
      log.error({ err: (err as Error).message }, 'FreeSWITCH could not take the call');
      if (!cancelled) this.#reject(res, 503, { 'Retry-After': RETRY_AFTER_BUSY_S });
      return;
    }
    if (cancelled || this.#closed) {
      if (cancelled) this.opts.metrics?.calls.inc({ outcome: 'cancelled' });
      await endpoint.destroy().catch(() => undefined);
      return;
    }
    let dialog: SrfDialog;
    try {
      dialog = await this.#srf.createUAS(req, res, { localSdp: endpoint.local.sdp });
    } catch (err) {
      // CANCEL (487, sent by drachtio-server) or the caller gone: release FreeSWITCH's channel.
      log.info({ err: (err as Error).message }, 'call not established');
      await endpoint.destroy().catch(() => undefined);
      return;
    }
    if (!dialog.connected) {
      // The caller's BYE came in the same read as its ACK: drachtio-srf handled both before this
      // continuation ran and emitted 'destroy' with nobody listening yet. Without this check the
      // call would sit in the IVR, talking to nobody, until its timeouts said goodbye.
      log.info('caller hung up as the call was answered');
      this.opts.metrics?.calls.inc({ outcome: 'ended_by_caller' });
      await endpoint.destroy().catch(() => undefined);
      return;
    }
    this.#startCall(dialog, endpoint, offer.media, route, callId, failedLoginSource(route.call, req.source_address), log);
  }

  #startCall(
    dialog: SrfDialog, endpoint: MediaEndpoint, media: NegotiatedMedia,
    route: Extract<RouteResult, { kind: 'routed' }>, callId: string, loginSource: string, log: Logger,
  ): void {
    const { domain } = route.call;
    const call = new DrachtioCall({
      dialog, endpoint, callId, promptsDir: this.opts.config.freeswitch.promptsDir, domain: domain.name, logger: log,
      messageFiles: this.#messageFiles,
    });
    const session = new CallSession({
      call, domain: domain.name, entry: route.call.entry, settings: ivrSettingsFor(this.opts.config, domain),
      accessCodes: this.opts.accessCodes, messages: this.opts.messages, caller: route.call.caller,
      actor: route.call.actor, loginSource, logger: this.opts.logger,
      ...(this.opts.metrics !== undefined ? { metrics: this.opts.metrics } : {}),
    });

    endpoint.on('dtmf', (evt: DtmfEvent) => {
      const digit = evt.dtmf?.toUpperCase();
      if (digit !== undefined && isDigit(digit)) session.digit(digit, digitMethodOf(evt.source));
    });
    // SIP INFO ends at the caller's dialog in drachtio-server: FreeSWITCH never sees it.
    dialog.on('info', (req: SrfRequest, res: SrfResponse) => {
      const digit = parseDtmfInfo(req.get('Content-Type'), req.body);
      if (digit === 'unsupported') {
        res.send(415, { headers: { Accept: 'application/dtmf-relay, application/dtmf' } });
        return;
      }
      res.send(200);
      if (digit !== null && isDigit(digit)) session.digit(digit, 'info');
    });
    // A new offer from the caller (hold, unhold, new media address): FreeSWITCH answers it.
    dialog.on('modify', (req: SrfRequest, res: SrfResponse) => {
      const again = negotiate(req.body);
      if (!again.ok) {
        res.send(488, { headers: { Warning: '305 vmaccess "Incompatible media format"' } });
        return;
      }
      endpoint.modify(req.body).then(
        (answer) => res.send(200, { body: answer, headers: { 'Content-Type': 'application/sdp' } }),
        (err: unknown) => {
          log.warn({ err: (err as Error).message }, 're-INVITE towards FreeSWITCH failed');
          res.send(488);
        },
      );
    });
    dialog.on('destroy', () => session.remoteHangup('bye'));
    endpoint.on('destroy', () => session.remoteHangup('media'));

    const done = session.ended.then(async (reason) => {
      this.opts.metrics?.calls.inc({ outcome: reason === 'localHangup' ? 'ended_by_server' : 'ended_by_caller' });
      await call.release();
      this.#calls.delete(callId);
    });
    this.#calls.set(callId, { call, session, done });
    if (media.telephoneEventPayloadType === null) {
      // No RFC 4733 offered: FreeSWITCH's in-band detector (DTMF-Source INBAND_AUDIO).
      endpoint.execute('start_dtmf').catch((err: unknown) => log.warn({ err: (err as Error).message }, 'start_dtmf failed'));
    }
    session.start();
  }
}

/** drachtio-srf 5.0.29's agent (lib/drachtio-agent.js) keeps the routed verbs; srf does not expose removal. */
function withdrawInviteRoute(srf: SrfApp, log: Logger): void {
  const agent = (srf.app as unknown as { client?: { removeRoute?: (verb: string) => void } }).client;
  try {
    agent?.removeRoute?.('invite');
    log.info('draining: asked drachtio-server to send new INVITEs elsewhere');
  } catch (err) {
    log.debug({ err: (err as Error).message }, 'could not withdraw the INVITE route');
  }
}

/**
 * Disconnects drachtio-srf for good. `srf.disconnect()` alone fails while srf is between
 * reconnect attempts (it asserts on the missing socket before it marks itself closing), and its
 * pending retry timer then goes on forever — so mark the wire protocol closing and stop that timer
 * first (drachtio-srf 5.0.29, pinned; lib/wire-protocol.js).
 */
function stopSrf(srf: SrfApp): void {
  const wp = (srf.app as unknown as { client?: { wp?: { closing?: boolean; reconnectVars?: { retryTimer?: NodeJS.Timeout | null } } } }).client?.wp;
  if (wp !== undefined) {
    wp.closing = true;
    const timer = wp.reconnectVars?.retryTimer;
    if (timer) clearTimeout(timer);
    if (wp.reconnectVars !== undefined) wp.reconnectVars.retryTimer = null;
  }
  try {
    srf.disconnect();
  } catch {
    // not connected right now: nothing to close
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
