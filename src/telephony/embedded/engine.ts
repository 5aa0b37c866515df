/**
 * The embedded engine: our own SIP UAS (./sip) and RTP media (./rtp) in one process, so that
 * `npm start` is a whole voicemail-access server on one box and the test suite can drive it with
 * sipp over real sockets. Production runs the same router and IVR behind drachtio instead.
 */
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import { isDigit } from '../../ivr/types.js';
import { ivrSettingsFor } from '../ivr-settings.js';
import type { HealthCheck } from '../../http/http-server.js';
import type { AccessCodeOperations, MessageOperations } from '../session.js';
import type { AudioStore } from '../../messages/audio-store.js';
import { CallSession } from '../session.js';
import { failedLoginSource } from '../../guard/login-guard.js';
import type { CallRouter, CallAddressing, RouteResult } from '../router.js';
import type { CallEngine } from '../engine.js';
import { EmbeddedCall } from './embedded-call.js';
import { localAddressToward } from './local-address.js';
import { buildAnswer, buildOffer, negotiate, negotiateAnswer, type NegotiatedMedia } from '../sdp.js';
import { MediaClock } from './rtp/media-clock.js';
import { RtpPortAllocator, RtpPortsExhaustedError, type RtpSocketPair } from './rtp/port-allocator.js';
import { PromptLibrary } from './rtp/prompt-library.js';
import { RtpSession } from './rtp/rtp-session.js';
import {
  parseNameAddr, parseUri, SipEndpoint, type Dialog, type IncomingInvite, type SipRequest,
} from './sip/index.js';
import { parseDtmfInfo } from '../dtmf-info.js';
import { InviteRateLimiter } from '../invite-rate-limiter.js';
import { countRoutingFailure, type Metrics } from '../../metrics/metrics.js';
import type { MwiBackend } from '../message-summary.js';
import type { ExpiresPolicy } from '../mwi-policy.js';
import { headerUser, MessageWaitingNotifier } from './message-waiting.js';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';

export interface EmbeddedEngineOptions {
  readonly config: Config;
  readonly router: CallRouter;
  readonly accessCodes: AccessCodeOperations;
  readonly messages: MessageOperations;
  /** Where message audio is read from for playback. */
  readonly audio: Pick<AudioStore, 'get'>;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** When set, message-summary SUBSCRIBEs are served and NOTIFYd (./message-waiting.ts); without it SUBSCRIBE gets 405. */
  readonly mwi?: MwiBackend;
  /** MWI subscription durations (tests shorten them). */
  readonly mwiExpires?: Partial<ExpiresPolicy>;
}

interface ActiveCall {
  readonly callId: string;
  readonly call: EmbeddedCall;
  readonly session: CallSession;
  readonly rtp: RtpSession;
  readonly done: Promise<void>;
}

/** RFC 3261 §21.5.4: how long a refused caller should wait before trying again. */
const RETRY_AFTER_BUSY_S = '5';
const RETRY_AFTER_STORE_S = '30';

export class EmbeddedEngine implements CallEngine {
  private readonly endpoint: SipEndpoint;
  private readonly clock = new MediaClock();
  private readonly ports: RtpPortAllocator;
  private readonly calls = new Map<string, ActiveCall>();
  private readonly log: Logger;
  private listening = false;
  /** INVITEs between arrival and a call (routing, ports, 200): MAX_CALLS counts them too. */
  private setups = 0;
  /** RTP packets sent by calls that have ended (the live ones are summed at scrape time). */
  private rtpSentByEndedCalls = 0;
  private readonly inviteRate: InviteRateLimiter;
  /** Message-waiting notifier (RFC 3842 over RFC 6665); null without `mwi`. */
  private readonly mwi: MessageWaitingNotifier | null;
  /** Set once the subscriptions are being ended (drain or close). */
  private mwiClosing: Promise<void> | undefined;

  private constructor(private readonly opts: EmbeddedEngineOptions, private readonly prompts: PromptLibrary) {
    const { config } = opts;
    this.log = opts.logger.child({ engine: 'embedded' });
    this.endpoint = new SipEndpoint({
      address: config.sip.address,
      port: config.sip.port,
      advertisedHost: config.rtp.address ?? (config.sip.address === '0.0.0.0' || config.sip.address === '::' ? '127.0.0.1' : config.sip.address),
      logger: this.log,
      tcp: true,
    });
    this.endpoint.onInvite = (invite: IncomingInvite) => {
      this.onInvite(invite).catch((err: unknown) => {
        this.log.error({ err }, 'INVITE handling failed');
        if (!invite.cancelled) this.safeReject(invite, 500, 'Server Internal Error');
      });
    };
    const rtpBind = config.sip.address === '::' ? '::' : config.sip.address === '0.0.0.0' ? '0.0.0.0' : config.sip.address;
    this.ports = new RtpPortAllocator({ address: rtpBind, min: config.rtp.portMin, max: config.rtp.portMax });
    this.inviteRate = new InviteRateLimiter({ ratePerS: config.inviteRate.perSecond, burst: config.inviteRate.burst });
    this.mwi = opts.mwi === undefined ? null : new MessageWaitingNotifier({
      endpoint: this.endpoint, backend: opts.mwi, logger: this.log,
      // The same trust as for INVITEs (TRUSTED_SIP_PEERS): only trusted peers may watch a mailbox.
      isTrusted: (address) => config.trustedSipPeers.contains(address),
      ...(opts.mwiExpires !== undefined ? { expires: opts.mwiExpires } : {}),
    });
    opts.metrics?.setMediaSource({
      mwiSubscriptions: () => this.mwi?.subscriptions ?? 0,
      activeCalls: () => this.calls.size,
      rtpPacketsSent: () => this.rtpSentByEndedCalls + [...this.calls.values()].reduce((n, c) => n + c.rtp.stats().packetsSent, 0),
      rtpLateTicks: () => this.clock.stats().lateTicks,
      rtpSkippedSlots: () => this.clock.stats().skippedSlots,
    });
  }

  static async create(opts: EmbeddedEngineOptions): Promise<EmbeddedEngine> {
    const prompts = await PromptLibrary.load(join(opts.config.promptsDir, 'en'));
    return new EmbeddedEngine(opts, prompts);
  }

  get activeCalls(): number {
    return this.calls.size;
  }

  /** Live message-summary subscriptions (0 without `mwi`). */
  get mwiSubscriptions(): number {
    return this.mwi?.subscriptions ?? 0;
  }

  get rtpPortsInUse(): number {
    return this.ports.inUse;
  }

  get sipStats(): ReturnType<SipEndpoint['stats']> {
    return this.endpoint.stats();
  }

  async start(): Promise<void> {
    await this.endpoint.start();
    this.listening = true;
  }

  describe(): Record<string, unknown> {
    return {
      address: this.endpoint.local.address,
      port: this.endpoint.local.port,
      transports: ['udp', 'tcp'],
      rtpPorts: `${this.opts.config.rtp.portMin}-${this.opts.config.rtp.portMax}`,
    };
  }

  health(): HealthCheck[] {
    return [{ name: 'sip', check: () => Promise.resolve(this.listening) }];
  }

  async drain(graceMs: number): Promise<void> {
    this.endpoint.acceptingCalls = false;
    // Subscriptions end now (a last NOTIFY each, reason=noresource), not after the calls.
    void this.endMwi();
    if (this.calls.size > 0) {
      const all = Promise.all([...this.calls.values()].map((c) => c.done));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        all.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), graceMs); }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.log.warn({ activeCalls: this.calls.size }, 'grace period over: hanging up remaining calls');
        // Through the session, so the IVR stops with the call and it counts as ended by the server.
        for (const c of this.calls.values()) c.session.hangupByServer('shutdown grace over');
        // Give the BYEs a moment to be answered (Timer F would take 32 s; do not wait for that).
        await Promise.race([Promise.all([...this.calls.values()].map((c) => c.done)), sleep(2000)]);
      }
    }
  }

  async close(): Promise<void> {
    this.listening = false;
    for (const c of this.calls.values()) c.session.remoteHangup('shutdown');
    // Best effort: the last NOTIFYs get a moment to be answered, not Timer F's 32 s.
    const mwiDone = this.endMwi();
    if (mwiDone) await Promise.race([mwiDone, sleep(2000)]);
    await this.endpoint.close();
  }

  /** Ends every MWI subscription (once); the promise settles when the last NOTIFYs are answered. */
  private endMwi(): Promise<void> | undefined {
    if (this.mwi && !this.mwiClosing) {
      this.mwiClosing = this.mwi.close().catch((err: unknown) => this.log.debug({ err }, 'MWI close failed'));
    }
    return this.mwiClosing;
  }

  // -------------------------------------------------------------------------------------------

  private safeReject(invite: IncomingInvite, status: number, reason: string, headers?: Record<string, string>): void {
    try {
      invite.reject(status, reason, headers);
      this.opts.metrics?.invitesRejected.inc({ status: String(status) });
    } catch (err) {
      this.log.debug({ err }, 'reject after final response');
    }
  }

  private addressing(req: SipRequest, source: string): CallAddressing {
    const ruri = parseUri(req.uri);
    const to = parseNameAddr(req.get('to') ?? '');
    const from = parseNameAddr(req.get('from') ?? '');
    const toUri = parseUri(to.uri);
    const fromUri = parseUri(from.uri);
    const assertedUser = headerUser(req.get('p-asserted-identity'));
    return {
      requestUser: ruri.user,
      requestHost: ruri.host,
      toHost: toUri.host,
      fromUser: fromUri.user,
      fromHost: fromUri.host,
      assertedUser,
      sourceAddress: source,
      fromDisplayName: from.displayName,
      requestUri: req.uri,
      diversion: req.getAll('diversion'),
      historyInfo: req.getAll('history-info'),
    };
  }

  private async onInvite(invite: IncomingInvite): Promise<void> {
    this.setups += 1;
    try {
      await this.admitInvite(invite);
    } finally {
      this.setups -= 1;
    }
  }

  private async admitInvite(invite: IncomingInvite): Promise<void> {
    const req = invite.request;
    const callId = req.get('call-id') ?? '';
    const log = this.log.child({ callId });
    const { config } = this.opts;

    // Capacity and floods first: RFC 3261 §21.5.4 503 with Retry-After (§20.33).
    if (this.calls.size + this.setups > config.maxCalls) {
      log.warn({ activeCalls: this.calls.size, maxCalls: config.maxCalls }, 'INVITE refused: MAX_CALLS reached');
      this.safeReject(invite, 503, 'Service Unavailable', { 'Retry-After': RETRY_AFTER_BUSY_S });
      return;
    }
    const source = invite.source.address;
    if (!config.trustedSipPeers.contains(source) && !this.inviteRate.allow(source)) {
      log.warn({ source }, 'INVITE refused: per-source INVITE rate exceeded');
      this.safeReject(invite, 503, 'Service Unavailable', { 'Retry-After': String(this.inviteRate.retryAfterS(source)) });
      return;
    }

    // Media first: an offer we cannot answer is refused before touching the store.
    const contentType = (req.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const hasBody = req.body.length > 0;
    let offered: NegotiatedMedia | null = null;
    if (hasBody) {
      if (contentType !== 'application/sdp') {
        // RFC 3261 §21.4.13: say which body types we take.
        this.safeReject(invite, 415, 'Unsupported Media Type', { Accept: 'application/sdp' });
        return;
      }
      const result = negotiate(req.body.toString('utf8'));
      if (!result.ok) {
        log.info({ reason: result.reason }, 'INVITE refused: no usable audio');
        // RFC 3261 §21.4.26 + Warning 305 (§20.43): incompatible media format.
        this.safeReject(invite, 488, 'Not Acceptable Here', { Warning: '305 vmaccess "Incompatible media format"' });
        return;
      }
      offered = result.media;
    }

    let route: RouteResult;
    try {
      route = await this.opts.router.route(this.addressing(req, invite.source.address));
    } catch (err) {
      log.error({ err }, 'routing failed: store unavailable');
      countRoutingFailure(this.opts.metrics, err);
      this.safeReject(invite, 503, 'Service Unavailable', { 'Retry-After': RETRY_AFTER_STORE_S });
      return;
    }
    if (route.kind !== 'routed') {
      log.info({ result: route.kind }, 'INVITE refused: no such access number');
      this.safeReject(invite, 404, 'Not Found');
      return;
    }
    if (invite.cancelled) {
      this.opts.metrics?.calls.inc({ outcome: 'cancelled' });
      return;
    }

    let pair: RtpSocketPair;
    try {
      pair = await this.ports.allocate();
    } catch (err) {
      if (err instanceof RtpPortsExhaustedError) {
        log.warn('RTP ports exhausted');
        this.safeReject(invite, 503, 'Service Unavailable', { 'Retry-After': RETRY_AFTER_BUSY_S });
        return;
      }
      throw err;
    }
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.ports.release(pair);
    };

    try {
      const towards = offered?.remote?.address ?? invite.source.address;
      const localAddress = this.opts.config.rtp.address ?? await localAddressToward(towards);
      const local = { address: localAddress, port: pair.rtpPort, sessionId: randomInt(1, 2 ** 31), sessionVersion: 1 };
      const body = offered !== null ? buildAnswer(local, offered) : buildOffer(local);

      if (this.opts.config.answerDelayMs > 0) {
        invite.provisional(180, 'Ringing');
        await sleep(this.opts.config.answerDelayMs);
      }
      if (invite.cancelled) {
        this.opts.metrics?.calls.inc({ outcome: 'cancelled' });
        release();
        return;
      }

      let dialog: Dialog;
      try {
        dialog = await invite.accept({ contentType: 'application/sdp', content: body });
      } catch (err) {
        log.info({ err: (err as Error).message }, 'call not established');
        release();
        return;
      }

      let media = offered;
      if (media === null) {
        // Delayed offer: the answer to our offer is in the ACK (RFC 3261 §13.2.1).
        const ackBody = dialog.ack?.body.toString('utf8') ?? '';
        const answer = ackBody === '' ? null : negotiateAnswer(ackBody);
        if (answer === null || !answer.ok) {
          log.info('ACK carried no usable answer; ending the call');
          await dialog.bye().catch(() => undefined);
          release();
          return;
        }
        media = answer.media;
      }
      this.startCall(dialog, media, pair, local, route, release, log, failedLoginSource(route.call, invite.source.address));
    } catch (err) {
      release();
      throw err;
    }
  }

  private startCall(
    dialog: Dialog, media: NegotiatedMedia, pair: RtpSocketPair,
    local: { address: string; port: number; sessionId: number; sessionVersion: number },
    route: Extract<RouteResult, { kind: 'routed' }>, release: () => void, log: Logger,
    loginSource: string,
  ): void {
    const rtp = new RtpSession({
      sockets: pair,
      remote: media.remote,
      codec: media.codec,
      telephoneEventPayloadType: media.telephoneEventPayloadType,
      clock: this.clock,
      logger: log,
    });
    const { domain } = route.call;
    const settings = ivrSettingsFor(this.opts.config, domain);
    let session: CallSession | null = null;
    const call = new EmbeddedCall({
      dialog, rtp, codec: media.codec.name, prompts: this.prompts, domain: domain.name, logger: log,
      loadAudio: (key) => this.opts.audio.get(key),
      onHangup: () => undefined,
    });
    session = new CallSession({
      call, domain: domain.name, entry: route.call.entry, settings,
      accessCodes: this.opts.accessCodes, messages: this.opts.messages, caller: route.call.caller,
      actor: route.call.actor, loginSource, logger: this.opts.logger,
      ...(this.opts.metrics !== undefined ? { metrics: this.opts.metrics } : {}),
    });
    const s = session;
    rtp.on('telephoneEvent', (digit, method) => s.digit(digit, method));
    dialog.on('bye', () => s.remoteHangup('bye'));
    dialog.on('terminated', (reason: string) => {
      if (reason !== 'localBye') s.remoteHangup(reason);
    });
    dialog.on('info', (req: SipRequest, respond: (status: number, reason: string) => void) => {
      const digit = parseDtmfInfo(req.get('content-type'), req.body.toString('utf8'));
      if (digit === 'unsupported') {
        respond(415, 'Unsupported Media Type');
        return;
      }
      respond(200, 'OK');
      if (digit !== null && isDigit(digit)) s.digit(digit, 'info');
    });
    let version = local.sessionVersion;
    dialog.on('reinvite', (req: SipRequest, respond: (status: number, reason: string, body?: { contentType: string; content: string }) => void) => {
      // RFC 3264 §8: a new offer in the dialog (hold, unhold, new media address).
      const text = req.body.toString('utf8');
      if (text === '') {
        version += 1;
        respond(200, 'OK', { contentType: 'application/sdp', content: buildOffer({ ...local, sessionVersion: version }) });
        return;
      }
      const result = negotiate(text);
      if (!result.ok || result.media.codec.name !== media.codec.name) {
        respond(488, 'Not Acceptable Here');
        return;
      }
      rtp.setRemote(result.media.remote);
      version += 1;
      respond(200, 'OK', { contentType: 'application/sdp', content: buildAnswer({ ...local, sessionVersion: version }, result.media) });
    });

    const done = s.ended.then((reason) => {
      this.opts.metrics?.calls.inc({ outcome: reason === 'localHangup' ? 'ended_by_server' : 'ended_by_caller' });
      this.rtpSentByEndedCalls += rtp.stats().packetsSent;
      rtp.close();
      release();
      this.calls.delete(dialog.callId);
    });
    this.calls.set(dialog.callId, { callId: dialog.callId, call, session: s, rtp, done });
    rtp.start();
    s.start();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
