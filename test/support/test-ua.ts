/**
 * A small SIP/RTP test user agent (UAC) for end-to-end tests: a second, independent peer next
 * to sipp. It deliberately shares no code with the server's SIP stack (src/telephony/embedded/sip/):
 * the few messages it needs are built and parsed here with plain string handling, so a bug in
 * the server's parser or builder cannot hide behind the same bug on this side. Only the RTP
 * packet format and G.711 tables come from the server's rtp/ module (they are checked by their
 * own unit tests against reference vectors).
 *
 * Scope: one call over UDP on loopback. INVITE with an SDP offer (PCMU or PCMA, optionally
 * telephone-event), ACK, in-dialog INFO and BYE, answering the server's BYE. Every RTP packet
 * received is kept with its arrival time so tests can inspect pacing, sequence numbers and audio.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  decodeG711, decodeRtpPacket, encodeG711, encodeRtpPacket, encodeTelephoneEventPayload,
} from '../../src/telephony/embedded/rtp/index.js';
import { freeEvenPortRange } from './ports.js';

export type TestUaCodec = 'PCMU' | 'PCMA';

export interface TestUaOptions {
  /** Where the server listens for SIP (UDP). */
  target: { address: string; port: number };
  /** Request-URI of the INVITE, e.g. `sip:*97@demo.local` (also the To URI). */
  requestUri: string;
  /** From URI, e.g. `sip:201@demo.local`. */
  from: string;
  /** The one audio codec offered (default PCMU). */
  codec?: TestUaCodec;
  /** Dynamic payload type offered for telephone-event (default 101); null offers none. */
  telephoneEventPayloadType?: number | null;
  /** Address to bind and to put in Via/Contact/SDP (default 127.0.0.1). */
  localAddress?: string;
  /**
   * Give up on a transaction after this long (default 10 s). Shorter than Timer B/F (64·T1 =
   * 32 s, RFC 3261 §17.1.1.2) so a silent server fails the test before vitest's own timeout.
   */
  transactionTimeoutMs?: number;
  /** More INVITE headers, e.g. Diversion or History-Info of a redirected call. */
  headers?: ReadonlyArray<readonly [name: string, value: string]>;
}

/** One RTP packet as received, payload copied out of the datagram. */
export interface ReceivedRtpPacket {
  /** performance.now() when the datagram arrived. */
  arrivalMs: number;
  seq: number;
  timestamp: number;
  ssrc: number;
  marker: boolean;
  payloadType: number;
  payload: Buffer;
  from: { address: string; port: number };
}

/** A parsed SIP message: just enough structure for a UAC. */
export interface TestSipMessage {
  /** Request method, or null for a response. */
  method: string | null;
  requestUri: string | null;
  /** Response status, or null for a request. */
  status: number | null;
  reason: string | null;
  /** Header lines in order, names lower-cased and compact forms expanded (RFC 3261 §7.3.3). */
  headers: Array<[name: string, value: string]>;
  body: string;
}

/** Thrown by TestUa.call when the INVITE gets a final response >= 300. */
export class TestUaCallRejectedError extends Error {
  /**
   * The rejecting response's headers, names lower-cased and compact forms expanded (first value
   * of each name): what a caller reads to decide what to do next, e.g. Retry-After on 503
   * (RFC 3261 §21.5.4, §20.33).
   */
  readonly headers: ReadonlyMap<string, string>;
  readonly status: number;
  readonly reason: string;

  /** `response`: the final response >= 300 to the INVITE. */
  constructor(response: TestSipMessage) {
    const status = response.status!;
    const reason = response.reason ?? '';
    super(`call rejected: ${status} ${reason}`);
    this.name = 'TestUaCallRejectedError';
    this.status = status;
    this.reason = reason;
    this.headers = new Map(response.headers.map(([name]) => [name, headerValue(response, name)!]));
  }
}

/**
 * How a call placed with TestUa.call came out: the answered call, or the rejection (status and
 * headers of its final response). Anything else (no answer at all, a socket error) is thrown.
 */
export async function callOutcome(calling: Promise<TestUa>): Promise<TestUa | TestUaCallRejectedError> {
  try {
    return await calling;
  } catch (err) {
    if (err instanceof TestUaCallRejectedError) return err;
    throw err;
  }
}

/** The rejection of a call that must be rejected; a call answered instead is hung up and fails the test. */
export async function callRejection(calling: Promise<TestUa>): Promise<TestUaCallRejectedError> {
  const outcome = await callOutcome(calling);
  if (outcome instanceof TestUaCallRejectedError) return outcome;
  await outcome.hangup().catch(() => 0);
  outcome.close();
  throw new Error('the call was answered, not rejected');
}

/** RFC 3261 §17.1.1.1: the RTT estimate T1 and the cap T2 for non-INVITE retransmissions. */
const T1_MS = 500;
const T2_MS = 4000;
/** RFC 3261 §8.1.1.7: the branch of every RFC 3261 client starts with the magic cookie. */
const MAGIC_COOKIE = 'z9hG4bK';
/** RFC 3551 §6: static payload types of G.711. */
const AUDIO_PAYLOAD_TYPE: Readonly<Record<TestUaCodec, number>> = { PCMU: 0, PCMA: 8 };
const RTP_CLOCK_RATE = 8000;
const FRAME_SAMPLES = 160;
/** RFC 4733 §3.2: DTMF event codes 0–15. */
const DTMF_KEYS = '0123456789*#ABCD';

/** RFC 3261 §7.3.3 compact header names. */
const COMPACT_HEADERS: Readonly<Record<string, string>> = {
  i: 'call-id', f: 'from', t: 'to', m: 'contact', v: 'via', l: 'content-length', c: 'content-type',
  k: 'supported', s: 'subject', e: 'content-encoding', o: 'event', r: 'refer-to', u: 'allow-events',
};

// ---------------------------------------------------------------------------------------------
// Message parsing and small header helpers (exported for the UA's unit tests).

/** Parses one SIP datagram; null for anything that is not a SIP request or response. */
export function parseSipMessage(text: string): TestSipMessage | null {
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  let body = split === -1 ? '' : text.slice(split + 4);
  const lines = head.split(/\r?\n/);
  const startLine = lines.shift();
  if (startLine === undefined) return null;

  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      // RFC 3261 §7.3.1 line folding: a continuation belongs to the previous header.
      const last = headers[headers.length - 1]!;
      last[1] = `${last[1]} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const raw = line.slice(0, colon).trim().toLowerCase();
    headers.push([COMPACT_HEADERS[raw] ?? raw, line.slice(colon + 1).trim()]);
  }
  const contentLength = headers.find(([n]) => n === 'content-length')?.[1];
  if (contentLength !== undefined && /^\d+$/.test(contentLength)) {
    body = Buffer.from(body, 'utf8').subarray(0, Number(contentLength)).toString('utf8');
  }

  const response = /^SIP\/2\.0\s+(\d{3})\s*(.*)$/i.exec(startLine);
  if (response) {
    return { method: null, requestUri: null, status: Number(response[1]), reason: response[2] ?? '', headers, body };
  }
  const request = /^([A-Za-z]+)\s+(\S+)\s+SIP\/2\.0$/i.exec(startLine.trim());
  if (request) {
    return { method: request[1]!.toUpperCase(), requestUri: request[2]!, status: null, reason: null, headers, body };
  }
  return null;
}

/** First value of a header (name in any case, compact or full). */
export function headerValue(message: TestSipMessage, name: string): string | undefined {
  const key = COMPACT_HEADERS[name.toLowerCase()] ?? name.toLowerCase();
  return message.headers.find(([n]) => n === key)?.[1];
}

/** Every value of a header, comma-separated values split (only safe for Via/Route-like headers). */
export function headerValues(message: TestSipMessage, name: string): string[] {
  const key = COMPACT_HEADERS[name.toLowerCase()] ?? name.toLowerCase();
  return message.headers.filter(([n]) => n === key).flatMap(([, v]) => splitCommaList(v));
}

/** Splits a header value on commas outside <...> and quotes (RFC 3261 §7.3.1). */
function splitCommaList(value: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '<') depth++;
    else if (!quoted && ch === '>') depth--;
    if (ch === ',' && !quoted && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.trim() !== '') parts.push(current.trim());
  return parts;
}

/** The tag parameter of a From/To value (header params only, not URI params inside <...>). */
export function tagOf(nameAddr: string): string | undefined {
  // Without <...>, parameters after the URI are header parameters (RFC 3261 §20.10).
  const close = nameAddr.lastIndexOf('>');
  const params = close === -1 ? nameAddr : nameAddr.slice(close + 1);
  return /;\s*tag\s*=\s*([^;,\s]+)/i.exec(params)?.[1];
}

/** The URI of a name-addr or addr-spec (Contact, Route, From, To). */
export function uriOf(nameAddr: string): string {
  const open = nameAddr.indexOf('<');
  if (open !== -1) {
    const close = nameAddr.indexOf('>', open);
    return nameAddr.slice(open + 1, close === -1 ? undefined : close).trim();
  }
  return nameAddr.split(';')[0]!.trim();
}

/** host and port of a SIP URI (default port 5060); null when the host is not an IPv4 literal. */
export function ipv4HostPortOf(uri: string): { address: string; port: number } | null {
  const match = /^sips?:(?:[^@]*@)?(\d{1,3}(?:\.\d{1,3}){3})(?::(\d+))?/i.exec(uri);
  if (!match) return null;
  return { address: match[1]!, port: match[2] !== undefined ? Number(match[2]) : 5060 };
}

function branchOf(via: string | undefined): string | undefined {
  return via === undefined ? undefined : /;\s*branch\s*=\s*([^;,\s]+)/i.exec(via)?.[1];
}

function cseqOf(message: TestSipMessage): { seq: number; method: string } | null {
  const match = /^(\d+)\s+([A-Za-z]+)$/.exec(headerValue(message, 'cseq') ?? '');
  return match ? { seq: Number(match[1]), method: match[2]!.toUpperCase() } : null;
}

/** What an SDP answer says about the audio stream (RFC 4566: c=, m=audio, a=rtpmap). */
export interface SdpAudio {
  address: string;
  port: number;
  payloadTypes: number[];
  /** payload type -> encoding name (upper case), from a=rtpmap. */
  rtpmap: Map<number, string>;
}

export function parseSdpAudio(sdp: string): SdpAudio | null {
  let sessionAddress: string | undefined;
  let mediaAddress: string | undefined;
  let inAudio = false;
  let seenAudio = false;
  let port = 0;
  let payloadTypes: number[] = [];
  const rtpmap = new Map<number, string>();
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      inAudio = !seenAudio && line.startsWith('m=audio ');
      if (inAudio) {
        seenAudio = true;
        const fields = line.slice(2).trim().split(/\s+/);
        port = Number(fields[1]);
        payloadTypes = fields.slice(3).map(Number).filter((n) => Number.isInteger(n));
      }
      continue;
    }
    const connection = /^c=IN IP[46] (\S+)/.exec(line);
    if (connection) {
      if (!seenAudio) sessionAddress = connection[1];
      else if (inAudio) mediaAddress = connection[1];
      continue;
    }
    const map = /^a=rtpmap:(\d+)\s+([^/\s]+)/.exec(line);
    if (map && inAudio) rtpmap.set(Number(map[1]), map[2]!.toUpperCase());
  }
  const address = mediaAddress ?? sessionAddress;
  if (!seenAudio || address === undefined || !Number.isInteger(port)) return null;
  return { address, port, payloadTypes, rtpmap };
}

// ---------------------------------------------------------------------------------------------
// Audio helpers

/** Voice activity: splits decoded PCM into 20 ms frames (160 samples); returns for each frame its RMS. */
export function frameEnergy(pcm: Int16Array): number[] {
  const energies: number[] = [];
  for (let start = 0; start + FRAME_SAMPLES <= pcm.length; start += FRAME_SAMPLES) {
    let sum = 0;
    for (let i = start; i < start + FRAME_SAMPLES; i++) {
      const sample = pcm[i]!;
      sum += sample * sample;
    }
    energies.push(Math.sqrt(sum / FRAME_SAMPLES));
  }
  return energies;
}

// ---------------------------------------------------------------------------------------------
// The user agent

interface ClientTransaction {
  readonly method: string;
  readonly onProvisional: (response: TestSipMessage) => void;
  readonly resolve: (response: TestSipMessage) => void;
  readonly reject: (error: Error) => void;
  retransmitTimer: NodeJS.Timeout | null;
  readonly timeoutTimer: NodeJS.Timeout;
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

function randomToken(bytes = 8): string {
  return randomBytes(bytes).toString('hex');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

async function bindUdp(address: string, port: number): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}

/** RTP on an even port (RFC 3550 §11); the odd neighbour is left for RTCP, which we do not send. */
async function bindRtpSocket(address: string): Promise<Socket> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    const { min } = await freeEvenPortRange(2);
    try {
      return await bindUdp(address, min);
    } catch (error) {
      lastError = error; // taken between the probe and the bind: try another
    }
  }
  throw lastError instanceof Error ? lastError : new Error('no RTP port');
}

export class TestUa {
  readonly callId: string;
  /** Every RTP packet received, in arrival order. */
  readonly received: ReceivedRtpPacket[] = [];
  /** Start lines of every SIP message sent (`->`) and received (`<-`), for failure messages. */
  readonly sipTrace: string[] = [];
  /** performance.now() when the 2xx to the INVITE arrived. */
  answeredAtMs = 0;
  /** The server's RTP address from the 2xx's SDP. */
  remoteRtp: { address: string; port: number } = { address: '', port: 0 };
  /** The telephone-event payload type from the answer, null when the server accepted none. */
  answeredTelephoneEventPayloadType: number | null = null;
  /** The server's BYE arrived (and was answered 200). */
  byeReceived = false;

  readonly codec: TestUaCodec;
  readonly audioPayloadType: number;
  readonly localRtpPort: number;
  readonly localSipPort: number;

  private readonly localAddress: string;
  private readonly localTag = randomToken(6);
  private localCseq = 1;
  private readonly transactions = new Map<string, ClientTransaction>();
  private readonly byeWaiters: Waiter[] = [];
  private closed = false;
  private socketsClosed = false;
  private sendsInFlight = 0;
  private hungUp = false;
  /** Dialog state (RFC 3261 §12.1.2), set from the 2xx. */
  private remoteTarget = '';
  private toHeader = '';
  private routeSet: string[] = [];
  private inviteCseq = 0;
  /** The ACK sent for the 2xx, resent when the server retransmits its 2xx (RFC 3261 §13.2.2.4). */
  private ackFor2xx: string | null = null;
  /** The ACK for a non-2xx final response, resent when that response is retransmitted (§17.1.1.3). */
  private ackForFailure: string | null = null;
  private inviteBranch = '';
  /** Our RTP stream (RFC 3550 §5.1: random initial values). */
  private readonly ssrc = randomBytes(4).readUInt32BE(0);
  private rtpSeq = randomBytes(2).readUInt16BE(0);
  private readonly rtpTimestampBase = randomBytes(4).readUInt32BE(0);
  private readonly rtpStartMs = performance.now();
  private lastEventTimestampOffset = -1;

  private constructor(
    private readonly options: Required<Omit<TestUaOptions, 'telephoneEventPayloadType'>> & { telephoneEventPayloadType: number | null },
    private readonly sipSocket: Socket,
    private readonly rtpSocket: Socket,
  ) {
    this.localAddress = options.localAddress;
    this.codec = options.codec;
    this.audioPayloadType = AUDIO_PAYLOAD_TYPE[options.codec];
    this.localSipPort = sipSocket.address().port;
    this.localRtpPort = rtpSocket.address().port;
    this.callId = `${randomToken(10)}@${this.localAddress}`;
    sipSocket.on('message', (datagram, rinfo) => this.onSipDatagram(datagram, rinfo));
    rtpSocket.on('message', (datagram, rinfo) => this.onRtpDatagram(datagram, rinfo));
    // A stray ICMP port-unreachable shows up as an error on some platforms: keep the sockets.
    sipSocket.on('error', () => undefined);
    rtpSocket.on('error', () => undefined);
  }

  /**
   * Places a call: INVITE with an SDP offer, retransmitted at T1 doubling until a response
   * (RFC 3261 §17.1.1.2, Timer A); 1xx are noted; a 2xx is ACKed to its Contact with the To-tag
   * and resolves; a final >= 300 is ACKed and rejects with TestUaCallRejectedError.
   */
  static async call(opts: TestUaOptions): Promise<TestUa> {
    const options = {
      target: opts.target,
      requestUri: opts.requestUri,
      from: opts.from,
      codec: opts.codec ?? 'PCMU',
      telephoneEventPayloadType: opts.telephoneEventPayloadType === undefined ? 101 : opts.telephoneEventPayloadType,
      localAddress: opts.localAddress ?? '127.0.0.1',
      transactionTimeoutMs: opts.transactionTimeoutMs ?? 10_000,
      headers: opts.headers ?? [],
    } as const;
    const sipSocket = await bindUdp(options.localAddress, 0);
    let rtpSocket: Socket;
    try {
      rtpSocket = await bindRtpSocket(options.localAddress);
    } catch (error) {
      sipSocket.close();
      throw error;
    }
    const ua = new TestUa(options, sipSocket, rtpSocket);
    try {
      await ua.invite();
      return ua;
    } catch (error) {
      ua.close();
      throw error;
    }
  }

  /** The SDP offer (RFC 3264 §5): one G.711 codec and, unless disabled, telephone-event. */
  offerSdp(): string {
    const te = this.options.telephoneEventPayloadType;
    const formats = [this.audioPayloadType, ...(te !== null ? [te] : [])].join(' ');
    const sessionId = Math.floor(this.rtpStartMs);
    return [
      'v=0',
      `o=test-ua ${sessionId} ${sessionId} IN IP4 ${this.localAddress}`,
      's=test-ua',
      `c=IN IP4 ${this.localAddress}`,
      't=0 0',
      `m=audio ${this.localRtpPort} RTP/AVP ${formats}`,
      `a=rtpmap:${this.audioPayloadType} ${this.codec}/8000`,
      ...(te !== null ? [`a=rtpmap:${te} telephone-event/8000`, `a=fmtp:${te} 0-16`] : []),
      'a=ptime:20',
      'a=sendrecv',
      '',
    ].join('\r\n');
  }

  private get fromHeader(): string {
    return `<${this.options.from}>;tag=${this.localTag}`;
  }

  private viaHeader(branch: string): string {
    return `SIP/2.0/UDP ${this.localAddress}:${this.localSipPort};branch=${branch};rport`;
  }

  private contactHeader(): string {
    const user = /^sips?:([^@;]+)@/i.exec(this.options.from)?.[1] ?? 'test-ua';
    return `<sip:${user}@${this.localAddress}:${this.localSipPort}>`;
  }

  private async invite(): Promise<void> {
    this.inviteCseq = this.localCseq++;
    this.inviteBranch = `${MAGIC_COOKIE}${randomToken()}`;
    const body = this.offerSdp();
    const request = [
      `INVITE ${this.options.requestUri} SIP/2.0`,
      `Via: ${this.viaHeader(this.inviteBranch)}`,
      'Max-Forwards: 70',
      `From: ${this.fromHeader}`,
      `To: <${this.options.requestUri}>`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${this.inviteCseq} INVITE`,
      `Contact: ${this.contactHeader()}`,
      'Allow: INVITE, ACK, BYE, CANCEL, INFO, OPTIONS',
      'User-Agent: vmaccess-test-ua',
      ...(this.options.headers ?? []).map(([name, value]) => `${name}: ${value}`),
      'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
    const response = await this.runTransaction('INVITE', this.inviteBranch, request, this.options.target);
    const status = response.status!;
    if (status >= 300) {
      // RFC 3261 §17.1.1.3: the ACK for a non-2xx is part of the INVITE transaction: same
      // branch, same Request-URI, the response's To (with its tag).
      this.ackForFailure = [
        `ACK ${this.options.requestUri} SIP/2.0`,
        `Via: ${this.viaHeader(this.inviteBranch)}`,
        'Max-Forwards: 70',
        `From: ${this.fromHeader}`,
        `To: ${headerValue(response, 'to') ?? `<${this.options.requestUri}>`}`,
        `Call-ID: ${this.callId}`,
        `CSeq: ${this.inviteCseq} ACK`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      this.sendSip(this.ackForFailure, this.options.target);
      throw new TestUaCallRejectedError(response);
    }
    this.answeredAtMs = performance.now();
    this.establishDialog(response);
    this.sendAckFor2xx();
    const sdp = parseSdpAudio(response.body);
    if (sdp === null) throw new Error(`2xx to INVITE without a usable SDP answer: ${JSON.stringify(response.body)}`);
    this.remoteRtp = { address: sdp.address, port: sdp.port };
    const te = [...sdp.rtpmap.entries()].find(([, name]) => name === 'TELEPHONE-EVENT');
    this.answeredTelephoneEventPayloadType = te !== undefined && sdp.payloadTypes.includes(te[0]) ? te[0] : null;
  }

  /** RFC 3261 §12.1.2: remote target from Contact, route set from Record-Route reversed, To with tag. */
  private establishDialog(response: TestSipMessage): void {
    const contact = headerValue(response, 'contact');
    this.remoteTarget = contact !== undefined ? uriOf(splitCommaList(contact)[0] ?? contact) : this.options.requestUri;
    this.toHeader = headerValue(response, 'to') ?? `<${this.options.requestUri}>`;
    this.routeSet = headerValues(response, 'record-route').reverse();
  }

  /** Where in-dialog requests go: the first route, else the remote target, else the server. */
  private dialogDestination(): { address: string; port: number } {
    const next = this.routeSet[0] !== undefined ? uriOf(this.routeSet[0]) : this.remoteTarget;
    const hostPort = ipv4HostPortOf(next);
    if (hostPort === null || hostPort.address === '0.0.0.0') return this.options.target;
    return hostPort;
  }

  private dialogRequestHead(method: string, branch: string, cseq: number): string[] {
    return [
      `${method} ${this.remoteTarget} SIP/2.0`,
      `Via: ${this.viaHeader(branch)}`,
      'Max-Forwards: 70',
      ...this.routeSet.map((route) => `Route: ${route}`),
      `From: ${this.fromHeader}`,
      `To: ${this.toHeader}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${cseq} ${method}`,
    ];
  }

  /** RFC 3261 §13.2.2.4: the ACK for a 2xx is its own transaction (new branch), CSeq of the INVITE. */
  private sendAckFor2xx(): void {
    if (this.ackFor2xx === null) {
      this.ackFor2xx = [
        ...this.dialogRequestHead('ACK', `${MAGIC_COOKIE}${randomToken()}`, this.inviteCseq),
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
    }
    this.sendSip(this.ackFor2xx, this.dialogDestination());
  }

  /**
   * Sends a request and resolves with its final response. UDP retransmissions at T1 doubling
   * (capped at T2 for non-INVITE, RFC 3261 §17.1.2.2), stopped by any response.
   */
  private runTransaction(
    method: string, branch: string, request: string, destination: { address: string; port: number },
  ): Promise<TestSipMessage> {
    if (this.closed) return Promise.reject(new Error('test UA is closed'));
    return new Promise<TestSipMessage>((resolve, reject) => {
      let interval = T1_MS;
      const retransmit = (): void => {
        this.sendSip(request, destination);
        transaction.retransmitTimer = setTimeout(retransmit, interval);
        interval = method === 'INVITE' ? interval * 2 : Math.min(interval * 2, T2_MS);
      };
      const finish = (): void => {
        if (transaction.retransmitTimer !== null) clearTimeout(transaction.retransmitTimer);
        clearTimeout(transaction.timeoutTimer);
        this.transactions.delete(branch);
      };
      const transaction: ClientTransaction = {
        method,
        retransmitTimer: null,
        timeoutTimer: setTimeout(() => {
          finish();
          reject(new Error(`${method} timed out after ${this.options.transactionTimeoutMs} ms without a final response; trace:\n${this.sipTrace.join('\n')}`));
        }, this.options.transactionTimeoutMs),
        onProvisional: () => {
          if (transaction.retransmitTimer !== null) clearTimeout(transaction.retransmitTimer);
          transaction.retransmitTimer = null;
        },
        resolve: (response) => {
          finish();
          resolve(response);
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      };
      this.transactions.set(branch, transaction);
      retransmit();
    });
  }

  private sendSip(text: string, destination: { address: string; port: number }): void {
    if (this.closed) return;
    this.sipTrace.push(`-> ${text.slice(0, text.indexOf('\r\n'))}`);
    this.sendDatagram(this.sipSocket, Buffer.from(text, 'utf8'), destination);
  }

  /**
   * dgram sends complete asynchronously (even to an IP literal), so a socket closed right after
   * send() would drop the datagram, e.g. the ACK for a rejected INVITE: close() waits for these.
   */
  private sendDatagram(socket: Socket, data: Buffer, destination: { address: string; port: number }): void {
    this.sendsInFlight++;
    socket.send(data, destination.port, destination.address, () => {
      this.sendsInFlight--;
      if (this.closed && this.sendsInFlight === 0) this.closeSockets();
    });
  }

  private onSipDatagram(datagram: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    const message = parseSipMessage(datagram.toString('utf8'));
    if (message === null) return; // keepalive CRLFs and garbage are ignored
    const firstLine = datagram.toString('utf8', 0, Math.min(datagram.length, 200)).split('\r\n')[0] ?? '';
    this.sipTrace.push(`<- ${firstLine}`);
    if (message.status !== null) this.onResponse(message);
    else this.onRequest(message, rinfo);
  }

  private onResponse(response: TestSipMessage): void {
    const status = response.status!;
    const branch = branchOf(headerValues(response, 'via')[0]);
    const transaction = branch !== undefined ? this.transactions.get(branch) : undefined;
    if (transaction !== undefined) {
      if (status < 200) transaction.onProvisional(response);
      else transaction.resolve(response);
      return;
    }
    // A retransmitted final response to our INVITE: the server did not see our ACK.
    const cseq = cseqOf(response);
    if (cseq?.method !== 'INVITE' || headerValue(response, 'call-id') !== this.callId) return;
    if (status >= 200 && status < 300 && this.ackFor2xx !== null) this.sendAckFor2xx();
    else if (status >= 300 && this.ackForFailure !== null) this.sendSip(this.ackForFailure, this.options.target);
  }

  private onRequest(request: TestSipMessage, rinfo: RemoteInfo): void {
    const method = request.method!;
    if (method === 'ACK') return; // nothing we send needs an ACK
    if (headerValue(request, 'call-id') !== this.callId) {
      // RFC 3261 §12.2.2: a request for a dialog we do not know.
      this.respond(request, rinfo, 481, 'Call/Transaction Does Not Exist');
      return;
    }
    switch (method) {
      case 'BYE':
        this.respond(request, rinfo, 200, 'OK');
        if (!this.byeReceived) {
          this.byeReceived = true;
          for (const waiter of this.byeWaiters.splice(0)) {
            clearTimeout(waiter.timer);
            waiter.resolve();
          }
        }
        return;
      case 'INFO':
      case 'OPTIONS':
      case 'NOTIFY':
      case 'UPDATE':
        this.respond(request, rinfo, 200, 'OK');
        return;
      default:
        this.respond(request, rinfo, 501, 'Not Implemented');
    }
  }

  /** RFC 3261 §8.2.6.2: copy Via, From, To (tagged), Call-ID, CSeq; reply to the source (§18.2.2 rport). */
  private respond(request: TestSipMessage, rinfo: RemoteInfo, status: number, reason: string): void {
    const to = headerValue(request, 'to') ?? '';
    const response = [
      `SIP/2.0 ${status} ${reason}`,
      ...request.headers.filter(([name]) => name === 'via').map(([, value]) => `Via: ${value}`),
      `From: ${headerValue(request, 'from') ?? ''}`,
      `To: ${tagOf(to) === undefined ? `${to};tag=${this.localTag}` : to}`,
      `Call-ID: ${headerValue(request, 'call-id') ?? ''}`,
      `CSeq: ${headerValue(request, 'cseq') ?? ''}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    this.sendSip(response, { address: rinfo.address, port: rinfo.port });
  }

  private onRtpDatagram(datagram: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    const packet = decodeRtpPacket(datagram);
    if (packet === null) return;
    this.received.push({
      arrivalMs: performance.now(),
      seq: packet.sequenceNumber,
      timestamp: packet.timestamp,
      ssrc: packet.ssrc,
      marker: packet.marker,
      payloadType: packet.payloadType,
      payload: Buffer.from(packet.payload),
      from: { address: rinfo.address, port: rinfo.port },
    });
  }

  /** Received audio packets (the negotiated G.711 payload type) that arrived after `ms`. */
  audioPacketsSince(ms: number): ReceivedRtpPacket[] {
    return this.received.filter((p) => p.arrivalMs > ms && p.payloadType === this.audioPayloadType);
  }

  /** Decoded PCM of the received audio packets that arrived after `ms`, in arrival order. */
  audioSince(ms: number): Int16Array {
    const packets = this.audioPacketsSince(ms);
    const pcm = new Int16Array(packets.reduce((n, p) => n + p.payload.length, 0));
    let offset = 0;
    for (const packet of packets) {
      pcm.set(decodeG711(this.codec, packet.payload), offset);
      offset += packet.payload.length;
    }
    return pcm;
  }

  private sendRtp(payloadType: number, marker: boolean, timestamp: number, payload: Uint8Array): void {
    if (this.closed) return;
    const packet = encodeRtpPacket({ marker, payloadType, sequenceNumber: this.rtpSeq, timestamp, ssrc: this.ssrc }, payload);
    this.rtpSeq = (this.rtpSeq + 1) & 0xffff;
    this.sendDatagram(this.rtpSocket, packet, this.remoteRtp);
  }

  /**
   * Presses keys as RFC 4733 telephone-events, sent from our RTP socket to the server's RTP
   * address from the answer. Per key (§2.5.1): a new event timestamp (the media clock at the
   * key's start), a start packet with the marker bit, updates every 20 ms with the growing
   * duration, then the end packet (E bit) sent three times (§2.5.1.4), all with that timestamp.
   */
  async pressKeys(keys: string, opts: { gapMs?: number; durationMs?: number } = {}): Promise<void> {
    const gapMs = opts.gapMs ?? 120;
    const durationMs = opts.durationMs ?? 100;
    const payloadType = this.answeredTelephoneEventPayloadType;
    if (payloadType === null) throw new Error('the answer accepted no telephone-event payload type');
    for (const key of keys.toUpperCase()) {
      const event = DTMF_KEYS.indexOf(key);
      if (event === -1) throw new Error(`not a DTMF key: ${JSON.stringify(key)}`);
      const startMs = performance.now();
      // A media-clock timestamp for the key's start, strictly after the previous key's.
      let offset = Math.round((startMs - this.rtpStartMs) * (RTP_CLOCK_RATE / 1000));
      if (offset <= this.lastEventTimestampOffset) offset = this.lastEventTimestampOffset + FRAME_SAMPLES;
      this.lastEventTimestampOffset = offset;
      const timestamp = (this.rtpTimestampBase + offset) >>> 0;
      const updates = Math.max(1, Math.round(durationMs / 20));
      for (let i = 0; i < updates; i++) {
        await sleep(startMs + i * 20 - performance.now());
        const duration = (i + 1) * FRAME_SAMPLES;
        this.sendRtp(payloadType, i === 0, timestamp, encodeTelephoneEventPayload({ event, end: false, volume: 10, duration }));
      }
      const finalDuration = updates * FRAME_SAMPLES;
      for (let i = 0; i < 3; i++) {
        await sleep(startMs + (updates + i) * 20 - performance.now());
        this.sendRtp(payloadType, false, timestamp, encodeTelephoneEventPayload({ event, end: true, volume: 10, duration: finalDuration }));
      }
      await sleep(gapMs);
    }
  }

  /**
   * Presses keys as in-band DTMF: the ITU-T Q.23 row + column tone pair synthesised here (each
   * tone at about −10 dBm0), G.711-encoded in the negotiated codec and sent as ordinary 20 ms
   * audio packets; silence frames between keys, so the media clock runs on as a phone's would.
   * Timestamps advance by 160 per packet (RFC 3551 §4.5.14).
   */
  async pressKeysInband(keys: string, opts: { toneMs?: number; gapMs?: number } = {}): Promise<void> {
    const toneFrames = Math.max(2, Math.round((opts.toneMs ?? 100) / 20));
    const gapFrames = Math.max(2, Math.round((opts.gapMs ?? 100) / 20));
    const rows = [697, 770, 852, 941];
    const columns = [1209, 1336, 1477, 1633];
    const layout = ['123A', '456B', '789C', '*0#D'];
    const amplitude = 0.3 * 32767 * 0.5; // two tones, each about −10 dBm0 (G.711 full scale ≈ +3 dBm0)
    const frames: Int16Array[] = [];
    for (const key of keys.toUpperCase()) {
      const row = layout.findIndex((r) => r.includes(key));
      if (row === -1) throw new Error(`not a DTMF key: ${JSON.stringify(key)}`);
      const low = rows[row]!;
      const high = columns[layout[row]!.indexOf(key)]!;
      for (let f = 0; f < toneFrames; f++) {
        const frame = new Int16Array(FRAME_SAMPLES);
        for (let i = 0; i < FRAME_SAMPLES; i++) {
          const t = (f * FRAME_SAMPLES + i) / RTP_CLOCK_RATE;
          frame[i] = Math.round(amplitude * (Math.sin(2 * Math.PI * low * t) + Math.sin(2 * Math.PI * high * t)));
        }
        frames.push(frame);
      }
      for (let f = 0; f < gapFrames; f++) frames.push(new Int16Array(FRAME_SAMPLES));
    }
    const startMs = performance.now();
    let offset = Math.max(this.lastEventTimestampOffset + FRAME_SAMPLES, Math.round((startMs - this.rtpStartMs) * (RTP_CLOCK_RATE / 1000)));
    for (const [index, frame] of frames.entries()) {
      await sleep(startMs + index * 20 - performance.now());
      this.sendRtp(this.audioPayloadType, index === 0, (this.rtpTimestampBase + offset) >>> 0, encodeG711(this.codec, frame));
      offset += FRAME_SAMPLES;
    }
    this.lastEventTimestampOffset = offset;
  }

  /**
   * Talks: sends 8 kHz PCM as paced 20 ms G.711 packets (the last frame padded with silence),
   * continuing the stream's timestamps as a phone would.
   */
  async sendAudio(pcm: Int16Array): Promise<void> {
    const startMs = performance.now();
    let offset = Math.max(this.lastEventTimestampOffset + FRAME_SAMPLES, Math.round((startMs - this.rtpStartMs) * (RTP_CLOCK_RATE / 1000)));
    for (let index = 0; index * FRAME_SAMPLES < pcm.length; index++) {
      const frame = new Int16Array(FRAME_SAMPLES);
      frame.set(pcm.subarray(index * FRAME_SAMPLES, (index + 1) * FRAME_SAMPLES));
      await sleep(startMs + index * 20 - performance.now());
      this.sendRtp(this.audioPayloadType, index === 0, (this.rtpTimestampBase + offset) >>> 0, encodeG711(this.codec, frame));
      offset += FRAME_SAMPLES;
    }
    this.lastEventTimestampOffset = offset;
  }

  /** Sends one key as SIP INFO `application/dtmf-relay`; returns the final response's status. */
  async sendInfo(key: string): Promise<number> {
    this.assertInDialog('INFO');
    const body = `Signal=${key}\r\nDuration=160\r\n`;
    const branch = `${MAGIC_COOKIE}${randomToken()}`;
    const request = [
      ...this.dialogRequestHead('INFO', branch, this.localCseq++),
      `Contact: ${this.contactHeader()}`,
      'Content-Type: application/dtmf-relay',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
    const response = await this.runTransaction('INFO', branch, request, this.dialogDestination());
    return response.status!;
  }

  /** Resolves when the server's BYE has arrived (answered 200); rejects after `timeoutMs`. */
  waitForBye(timeoutMs: number): Promise<void> {
    if (this.byeReceived) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const index = this.byeWaiters.indexOf(waiter);
          if (index !== -1) this.byeWaiters.splice(index, 1);
          reject(new Error(`no BYE from the server within ${timeoutMs} ms; trace:\n${this.sipTrace.join('\n')}`));
        }, timeoutMs),
      };
      this.byeWaiters.push(waiter);
    });
  }

  /** Sends BYE and waits for its final response; returns its status (0 when already ended). */
  async hangup(): Promise<number> {
    if (this.byeReceived || this.hungUp || this.closed) return 0;
    this.hungUp = true;
    const branch = `${MAGIC_COOKIE}${randomToken()}`;
    const request = [...this.dialogRequestHead('BYE', branch, this.localCseq++), 'Content-Length: 0', '', ''].join('\r\n');
    const response = await this.runTransaction('BYE', branch, request, this.dialogDestination());
    return response.status!;
  }

  private assertInDialog(method: string): void {
    if (this.remoteTarget === '') throw new Error(`${method} outside a dialog`);
    if (this.byeReceived || this.hungUp) throw new Error(`${method} after the call ended`);
  }

  /** Closes both sockets and abandons pending transactions and waiters (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const transaction of [...this.transactions.values()]) transaction.reject(new Error('test UA closed'));
    for (const waiter of this.byeWaiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('test UA closed'));
    }
    if (this.sendsInFlight === 0) this.closeSockets();
  }

  private closeSockets(): void {
    if (this.socketsClosed) return;
    this.socketsClosed = true;
    for (const socket of [this.sipSocket, this.rtpSocket]) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  }
}
