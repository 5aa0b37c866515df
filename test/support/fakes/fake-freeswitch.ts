/**
 * FakeFreeSwitch — a stand-in for FreeSWITCH with the drachtio-freeswitch-mrf configuration,
 * which cannot run on this machine. It speaks the real ESL text protocol on loopback sockets to
 * the real drachtio-modesl / drachtio-fsmrf in the engine:
 *
 * - inbound ESL (the engine connects): `auth/request`, `auth <password>` → `+OK accepted` or
 *   `-ERR invalid` and a disconnect notice, `event json …`, `api sofia status` listing the
 *   `drachtio_mrf` profile, `exit`;
 * - SIP: as a NetworkPeer of the FakeDrachtioServer it answers fsmrf's INVITE to the profile's
 *   address with a G.711 SDP answer, then, like the image's dialplan (`socket
 *   ${sip_h_X-esl-outbound} async full`), opens the outbound ESL connection for that channel to
 *   the address in X-esl-outbound and answers `connect` with the channel data fsmrf reads
 *   (Unique-ID, variable_sip_user_agent, variable_rtp_local_sdp_str, …);
 * - per channel: `sendmsg` executes (`set`, `playback` — timed from the real WAV file's length,
 *   "FILE NOT FOUND" when the path does not exist —, `start_dtmf`, `hangup`), `api uuid_break`
 *   (ends the running playback; like FreeSWITCH it still reports "FILE PLAYED"),
 *   `api uuid_dump`, DTMF events and CHANNEL_CALLSTATE HANGUP when a test says so.
 *
 * What is fake is FreeSWITCH's media (no RTP flows) and its SIP stack; what is real is the ESL
 * framing and every fsmrf/modesl code path the engine uses.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import wavefile from 'wavefile';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { FakeDrachtioServer, FakeResponse, Leg, NetworkPeer } from './fake-drachtio-server.js';
import { header, type SipText } from './sip-text.js';

export interface FakeFreeSwitchOptions {
  readonly password: string;
  /** Address and port of the SIP profile (what `sofia status` reports). */
  readonly sipAddress?: string;
  readonly sipPort?: number;
  readonly profile?: string;
  /** Prompts play this many times faster than real time (tests stay quick). */
  readonly playbackSpeed?: number;
  readonly eslPort?: number;
}

interface Frame {
  readonly command: string;
  readonly headers: Map<string, string>;
}

/** ESL frames from the client: a command line, optional `Name: value` lines, a blank line. */
class EslReader {
  #buffer = '';
  constructor(socket: Socket, onFrame: (frame: Frame) => void) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      for (let end = this.#buffer.indexOf('\n\n'); end !== -1; end = this.#buffer.indexOf('\n\n')) {
        const text = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const [command = '', ...lines] = text.split('\n');
        const headers = new Map<string, string>();
        for (const line of lines) {
          const colon = line.indexOf(': ');
          if (colon > 0) headers.set(line.slice(0, colon), line.slice(colon + 2));
        }
        if (command.trim() !== '') onFrame({ command: command.trim(), headers });
      }
    });
  }
}

function reply(socket: Socket, text: string, extra: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const lines = ['Content-Type: command/reply', `Reply-Text: ${text}`, ...Object.entries(extra).map(([k, v]) => `${k}: ${encodeURIComponent(v)}`)];
  socket.write(`${lines.join('\n')}\n\n`);
}

function apiResponse(socket: Socket, body: string): void {
  if (socket.destroyed) return;
  socket.write(`Content-Type: api/response\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`);
}

function event(socket: Socket, fields: Record<string, string>): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(fields);
  socket.write(`Content-Length: ${Buffer.byteLength(body)}\nContent-Type: text/event-json\n\n${body}`);
}

/** Seconds of audio in a PCM WAV file (data chunk bytes / byte rate). */
function wavSeconds(path: string): number {
  const bytes = readFileSync(path);
  const byteRate = bytes.readUInt32LE(28);
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString('ascii', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    if (id === 'data') return size / byteRate;
    offset += 8 + size + (size % 2);
  }
  return 0;
}

export interface Playback {
  readonly files: string[];
  startedAt: number;
  broken: boolean;
  finished: boolean;
}

/** One FreeSWITCH channel (an fsmrf Endpoint on the engine's side). */
export class FakeChannel {
  readonly uuid = randomUUID();
  readonly executed: string[] = [];
  readonly apis: string[] = [];
  readonly playbacks: Playback[] = [];
  inbandDetection = false;
  hungUp = false;
  socket: Socket | null = null;
  leg: Leg | null = null;
  #vars = new Map<string, string>();
  #current: { playback: Playback; complete: (broken: boolean) => void } | null = null;
  /** `record` applications run: the path, and what they wrote. */
  readonly recordings: Array<{ path: string; args: string[]; done: boolean }> = [];
  #recording: { finish: () => void } | null = null;
  /** What the caller "says" into the next recording (8 kHz PCM); default 2 s of a 440 Hz tone. */
  speech: Int16Array | null = null;
  /** Bytes written instead of a WAV of `speech`: a broken or foreign-format recording. */
  recordingBytes: Buffer | null = null;
  #subscribed = false;
  #resolveReady!: () => void;
  /** Resolves once fsmrf's Endpoint has subscribed to this channel's events. */
  readonly ready = new Promise<void>((resolve) => { this.#resolveReady = resolve; });

  constructor(
    readonly fs: FakeFreeSwitch,
    readonly pendingUuid: string,
    readonly localSdp: string,
    readonly remoteSdp: string,
    readonly callId: string,
  ) {}

  get playing(): Playback | null {
    return this.#current?.playback ?? null;
  }

  channelData(): Record<string, string> {
    return {
      'Event-Name': 'CHANNEL_DATA',
      'Unique-ID': this.uuid,
      'Channel-Unique-ID': this.uuid,
      'Channel-Call-State': 'ACTIVE',
      'variable_sip_user_agent': `drachtio-fsmrf:${this.pendingUuid}`,
      'variable_sip_call_id': this.callId,
      'variable_rtp_local_sdp_str': this.localSdp,
      'variable_switch_r_sdp': this.remoteSdp,
      'variable_local_media_ip': '127.0.0.1',
      'variable_local_media_port': '20000',
      'variable_remote_media_ip': '127.0.0.1',
      'variable_remote_media_port': '30000',
      'variable_dtmf_type': 'rfc2833',
    };
  }

  /** The outbound ESL connection of this channel, as `socket … async full` opens it. */
  async open(host: string, port: number): Promise<void> {
    const socket = connect({ host, port });
    this.socket = socket;
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    new EslReader(socket, (frame) => this.#onFrame(socket, frame));
  }

  #onFrame(socket: Socket, frame: Frame): void {
    const [verb = '', ...args] = frame.command.split(' ');
    switch (verb) {
      case 'connect':
        reply(socket, '+OK', this.channelData());
        return;
      case 'event':
        this.#subscribed = true;
        reply(socket, `+OK event listener enabled ${args[0] ?? 'plain'}`);
        return;
      case 'filter':
        reply(socket, `+OK filter added. [${args[0] ?? ''}]=[${args[1] ?? ''}]`);
        // fsmrf's Endpoint subscribes, then filters on its Unique-ID: from here on it hears events.
        this.#resolveReady();
        return;
      case 'myevents':
      case 'linger':
      case 'noevents':
        reply(socket, '+OK');
        return;
      case 'exit':
        reply(socket, '+OK bye');
        socket.end();
        return;
      case 'api':
        this.#onApi(socket, args);
        return;
      case 'sendmsg':
        reply(socket, '+OK');
        this.#onExecute(socket, frame.headers);
        return;
      default:
        reply(socket, `-ERR ${verb} command not found`);
    }
  }

  #onApi(socket: Socket, args: string[]): void {
    const [command = '', ...rest] = args;
    this.apis.push([command, ...rest].join(' '));
    switch (command) {
      case 'uuid_break':
        if (rest[0] !== this.uuid) { apiResponse(socket, '-ERR No such channel!\n'); return; }
        this.#current?.complete(true);
        this.#recording?.finish();
        apiResponse(socket, '+OK\n');
        return;
      case 'uuid_set_media_stats':
        apiResponse(socket, '+OK\n');
        return;
      case 'uuid_dump': {
        const data = this.channelData();
        apiResponse(socket, Object.entries(data).map(([k, v]) => `${k}: ${encodeURIComponent(v)}`).join('\n'));
        return;
      }
      default:
        apiResponse(socket, `-ERR ${command} Command not found!\n`);
    }
  }

  #complete(socket: Socket, headers: Map<string, string>, response: string, extra: Record<string, string> = {}): void {
    event(socket, {
      'Event-Name': 'CHANNEL_EXECUTE_COMPLETE',
      'Unique-ID': this.uuid,
      'Application': headers.get('execute-app-name') ?? '',
      'Application-Data': headers.get('execute-app-arg') ?? '',
      'Application-Response': response,
      'Application-UUID': headers.get('Event-UUID') ?? '',
      ...extra,
    });
  }

  #onExecute(socket: Socket, headers: Map<string, string>): void {
    const app = headers.get('execute-app-name') ?? '';
    const arg = headers.get('execute-app-arg') ?? '';
    this.executed.push(arg === '' ? app : `${app} ${arg}`);
    switch (app) {
      case 'set': {
        const eq = arg.indexOf('=');
        if (eq > 0) this.#vars.set(arg.slice(0, eq), arg.slice(eq + 1));
        this.#complete(socket, headers, '_none_');
        return;
      }
      case 'start_dtmf':
        this.inbandDetection = true;
        this.#complete(socket, headers, '_none_');
        return;
      case 'playback':
        this.#playback(socket, headers, arg);
        return;
      case 'record':
        this.#record(socket, headers, arg);
        return;
      case 'hangup':
        this.#complete(socket, headers, '_none_');
        void this.hangup('NORMAL_CLEARING');
        return;
      default:
        this.#complete(socket, headers, '_none_');
    }
  }

  #playback(socket: Socket, headers: Map<string, string>, arg: string): void {
    const delimiter = this.#vars.get('playback_delimiter');
    const files = delimiter !== undefined && delimiter !== '' ? arg.split(delimiter) : [arg];
    const playback: Playback = { files, startedAt: 0, broken: false, finished: false };
    this.playbacks.push(playback);
    const run = (): void => {
      if (files.some((f) => !existsSync(f))) {
        playback.finished = true;
        this.#complete(socket, headers, 'FILE NOT FOUND');
        this.#next();
        return;
      }
      playback.startedAt = Date.now();
      const seconds = files.reduce((sum, f) => sum + wavSeconds(f), 0);
      let done = false;
      const complete = (broken: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        playback.broken = broken;
        playback.finished = true;
        this.#current = null;
        // switch_ivr_play_file: a break still answers "FILE PLAYED" (mod_dptools playback_function).
        this.#complete(socket, headers, 'FILE PLAYED', { variable_playback_ms: String(Math.round((Date.now() - playback.startedAt) * this.fs.playbackSpeed)) });
        this.#next();
      };
      const timer = setTimeout(() => complete(false), (seconds * 1000) / this.fs.playbackSpeed);
      this.#current = { playback, complete };
    };
    // One application at a time per channel: a playback sent while another runs waits for it.
    if (this.#current !== null) this.#queue.push(run);
    else run();
  }

  /**
   * mod_dptools `record <path> [<time_limit_secs>] [<silence_thresh>] [<silence_hits>]`: runs
   * until uuid_break (the caller pressed #), stopRecording() (silence or the limit, as FreeSWITCH
   * would decide) or the hang-up, then writes the caller's speech to <path> as an 8 kHz WAV.
   */
  #record(socket: Socket, headers: Map<string, string>, arg: string): void {
    const [path = '', ...args] = arg.split(' ');
    const entry = { path, args, done: false };
    this.recordings.push(entry);
    const finish = (): void => {
      if (entry.done) return;
      entry.done = true;
      this.#recording = null;
      const pcm = this.speech ?? Int16Array.from({ length: 16_000 }, (_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 440 * i) / 8000)));
      const wav = new wavefile.WaveFile();
      wav.fromScratch(1, 8000, '16', pcm);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, this.recordingBytes ?? Buffer.from(wav.toBuffer()));
      this.#complete(socket, headers, '_none_', { variable_record_ms: String(Math.round(pcm.length / 8)) });
    };
    this.#recording = { finish };
  }

  /** Ends the running `record` as silence or the time limit would. */
  stopRecording(): void {
    this.#recording?.finish();
  }

  #queue: Array<() => void> = [];

  #next(): void {
    const run = this.#queue.shift();
    if (run !== undefined && !this.hungUp) run();
  }

  /** A key press as FreeSWITCH reports it (`DTMF-Source`: RTP, INBAND_AUDIO, ENDPOINT). */
  pressDigit(digit: string, source: 'RTP' | 'INBAND_AUDIO' = 'RTP'): void {
    if (this.socket === null || !this.#subscribed) throw new Error('the channel has no subscribed ESL connection yet');
    if (source === 'INBAND_AUDIO' && !this.inbandDetection) return; // nobody ran start_dtmf: FreeSWITCH hears nothing
    event(this.socket, {
      'Event-Name': 'DTMF', 'Unique-ID': this.uuid, 'DTMF-Digit': digit, 'DTMF-Duration': '1600', 'DTMF-Source': source,
    });
  }

  async pressDigits(keys: string, opts: { gapMs?: number; source?: 'RTP' | 'INBAND_AUDIO' } = {}): Promise<void> {
    for (const key of keys) {
      this.pressDigit(key, opts.source);
      await new Promise((r) => setTimeout(r, opts.gapMs ?? 30));
    }
  }

  /** The channel ends (the app's `hangup`, or FreeSWITCH itself): CALLSTATE HANGUP, BYE on the SIP leg, socket closed. */
  async hangup(cause = 'NORMAL_CLEARING'): Promise<void> {
    if (this.hungUp) return;
    this.hungUp = true;
    this.#current?.complete(true);
    // A hang-up ends a recording too; what was said is in the file (mod_dptools record).
    this.#recording?.finish();
    const socket = this.socket;
    if (socket !== null) {
      event(socket, { 'Event-Name': 'CHANNEL_HANGUP', 'Unique-ID': this.uuid, 'Hangup-Cause': cause });
      event(socket, { 'Event-Name': 'CHANNEL_CALLSTATE', 'Unique-ID': this.uuid, 'Channel-Call-State': 'HANGUP', 'Hangup-Cause': cause });
    }
    if (this.leg !== null && !this.leg.ended) await this.fs.drachtio.sendInDialog(this.leg, 'BYE').catch(() => undefined);
    setTimeout(() => socket?.end(), 20);
  }
}

export class FakeFreeSwitch implements NetworkPeer {
  readonly address: string;
  readonly port: number;
  readonly profile: string;
  readonly playbackSpeed: number;
  readonly channels: FakeChannel[] = [];
  /** Inbound ESL connections the engine opened (each `auth`ed one counts). */
  eslLogins = 0;
  #server: Server;
  #eslPort = 0;
  readonly #sockets = new Set<Socket>();
  readonly #channelWaiters: Array<(c: FakeChannel) => void> = [];
  /** Answer for the next INVITEs instead of 200 (e.g. 503 to test refusals). */
  inviteAnswer: FakeResponse | null = null;
  /** How long FreeSWITCH takes to answer an INVITE (a loaded media server). */
  inviteDelayMs = 0;

  private constructor(readonly drachtio: FakeDrachtioServer, private readonly opts: FakeFreeSwitchOptions, server: Server) {
    this.address = opts.sipAddress ?? '127.0.0.1';
    this.port = opts.sipPort ?? 5080;
    this.profile = opts.profile ?? 'drachtio_mrf';
    this.playbackSpeed = opts.playbackSpeed ?? 1;
    this.#server = server;
    drachtio.registerPeer(`${this.address}:${this.port}`, this);
  }

  static async start(drachtio: FakeDrachtioServer, opts: FakeFreeSwitchOptions): Promise<FakeFreeSwitch> {
    const fs = new FakeFreeSwitch(drachtio, opts, createServer());
    await fs.startEsl(opts.eslPort ?? 0);
    return fs;
  }

  get eslPort(): number {
    return this.#eslPort;
  }

  /** (Re)opens the inbound ESL listener, on the same port after stopEsl(). */
  async startEsl(port = this.#eslPort): Promise<void> {
    this.#server = createServer((socket) => this.#onInbound(socket));
    this.#server.listen(port, '127.0.0.1');
    await once(this.#server, 'listening');
    this.#eslPort = (this.#server.address() as AddressInfo).port;
  }

  /** FreeSWITCH goes away: the listener closes and every inbound ESL connection drops. */
  async stopEsl(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async close(): Promise<void> {
    for (const c of this.channels) c.socket?.destroy();
    await this.stopEsl().catch(() => undefined);
  }

  nextChannel(timeoutMs = 10_000): Promise<FakeChannel> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('FreeSWITCH got no channel')), timeoutMs);
      this.#channelWaiters.push((c) => { clearTimeout(timer); resolve(c); });
    });
  }

  sofiaStatus(): string {
    return [
      '                     Name\t   Type\t                                      Data\tState',
      '=================================================================================================',
      `           ${this.profile}\tprofile\t         sip:mod_sofia@${this.address}:${this.port}\tRUNNING (0)`,
      '=================================================================================================',
      '1 profile 0 aliases', '',
    ].join('\n');
  }

  #onInbound(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('Content-Type: auth/request\n\n');
    let authed = false;
    new EslReader(socket, (frame) => {
      const [verb = '', ...args] = frame.command.split(' ');
      if (!authed) {
        if (verb === 'auth' && args.join(' ') === this.opts.password) {
          authed = true;
          this.eslLogins += 1;
          reply(socket, '+OK accepted');
        } else {
          reply(socket, '-ERR invalid');
          const notice = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';
          socket.end(`Content-Type: text/disconnect-notice\nContent-Length: ${Buffer.byteLength(notice)}\n\n${notice}`);
        }
        return;
      }
      switch (verb) {
        case 'event':
          reply(socket, `+OK event listener enabled ${args[0] ?? 'plain'}`);
          return;
        case 'api':
          if (args[0] === 'sofia' && args[1] === 'status') apiResponse(socket, this.sofiaStatus());
          else apiResponse(socket, `-ERR ${args[0] ?? ''} Command not found!\n`);
          return;
        case 'exit':
          reply(socket, '+OK bye');
          socket.end();
          return;
        default:
          reply(socket, `-ERR ${verb} command not found`);
      }
    });
  }

  /** fsmrf's INVITE to the profile (new channel), or a request in a channel's SIP dialog. */
  onRequest(request: SipText, leg: Leg | null): FakeResponse | Promise<FakeResponse> {
    if (leg === null && this.inviteDelayMs > 0) {
      const delay = this.inviteDelayMs;
      return new Promise((resolve) => setTimeout(() => resolve(this.#answerRequest(request, leg)), delay));
    }
    return this.#answerRequest(request, leg);
  }

  #answerRequest(request: SipText, leg: Leg | null): FakeResponse {
    if (leg !== null) {
      if (request.method === 'INVITE') {
        const channel = this.channels.find((c) => c.leg === leg);
        return { status: 200, headers: [['Content-Type', 'application/sdp']], body: channel?.localSdp ?? '' };
      }
      if (request.method === 'BYE') {
        const channel = this.channels.find((c) => c.leg === leg);
        if (channel !== undefined) {
          channel.hungUp = true;
          setTimeout(() => channel.socket?.end(), 20);
        }
      }
      return { status: 200 };
    }
    if (this.inviteAnswer !== null) return this.inviteAnswer;
    const userAgent = header(request, 'user-agent') ?? '';
    const outbound = header(request, 'x-esl-outbound') ?? '';
    const pendingUuid = /^drachtio-fsmrf:(.+)$/.exec(userAgent)?.[1];
    const target = /^([^:]+):(\d+)$/.exec(outbound);
    if (pendingUuid === undefined || target === null) return { status: 404, reason: 'Not Found' };
    const sdp = this.#answer(request.body);
    if (sdp === null) return { status: 488, reason: 'Not Acceptable Here' };
    const channel = new FakeChannel(this, pendingUuid, sdp, request.body, header(request, 'call-id') ?? '');
    this.channels.push(channel);
    // The dialplan's `socket` runs once the call is answered: connect back a moment later.
    setTimeout(() => {
      void channel.open(target[1]!, Number(target[2])).then(() => channel.ready).then(() => {
        for (const w of this.#channelWaiters.splice(0)) w(channel);
      });
    }, 5);
    return { status: 200, headers: [['Content-Type', 'application/sdp']], body: sdp };
  }

  onLeg(leg: Leg): void {
    const channel = this.channels.find((c) => c.callId === leg.callId);
    if (channel !== undefined) channel.leg = leg;
  }

  /** A G.711 answer in the offer's order, with telephone-event if offered (as FreeSWITCH answers). */
  #answer(offer: string): string | null {
    const m = /^m=audio \d+ RTP\/AVP ([\d ]+)$/m.exec(offer);
    if (m === null) return null;
    const pts = m[1]!.trim().split(/\s+/);
    const audio = pts.find((p) => p === '0' || p === '8');
    if (audio === undefined) return null;
    const te = /^a=rtpmap:(\d+) telephone-event\/8000/m.exec(offer)?.[1];
    return [
      'v=0', 'o=FreeSWITCH 1700000000 1700000001 IN IP4 127.0.0.1', 's=FreeSWITCH', 'c=IN IP4 127.0.0.1', 't=0 0',
      `m=audio 20000 RTP/AVP ${audio}${te !== undefined ? ` ${te}` : ''}`,
      `a=rtpmap:${audio} ${audio === '0' ? 'PCMU' : 'PCMA'}/8000`,
      ...(te !== undefined ? [`a=rtpmap:${te} telephone-event/8000`, `a=fmtp:${te} 0-16`] : []),
      'a=ptime:20', 'a=sendrecv', '',
    ].join('\r\n');
  }
}
