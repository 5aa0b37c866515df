/**
 * A load-generating SIP/RTP user agent for the benchmark: thousands of calls from one process,
 * cheaply. One UDP socket carries every call's SIP, one carries every call's RTP (the server
 * sends each call's RTP from its own port, which tells the calls apart), and one 10 ms scheduler
 * sends every call's RFC 4733 key packets — no timer per packet, no socket per call.
 *
 * What it measures, at the receiving end:
 * - call setup time (INVITE sent → 200 OK received);
 * - RTP inter-packet gap per call (arrival to arrival, while `measuring`);
 * - key-to-prompt-stop latency: from the first RFC 4733 packet of the first key sent during the
 *   "enter your access code" prompt to the first packet of digital silence (all 0xFF in PCMU,
 *   which that prompt never contains) — the server stops the prompt and sends silence.
 *
 * Shares no code with the server's SIP stack; messages are built and read with plain strings.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { Histogram } from './histogram.js';

export interface CallPlan {
  /** From user (the caller's extension). */
  readonly from: string;
  /** Request-URI user, e.g. `*97`. */
  readonly service: string;
  /** Keys pressed once the first prompt plays, e.g. `4826#`. */
  readonly keys: string;
  /** How long into the first prompt the first key is pressed. */
  readonly firstKeyAfterMs: number;
}

export type CallState = 'inviting' | 'up' | 'ended' | 'failed';

const T1 = 500;
const DTMF_EVENTS = '0123456789*#';
const PCMU_SILENCE = 0xff;

export class LoadCall {
  state: CallState = 'inviting';
  failure: string | null = null;
  readonly callId = `${randomBytes(8).toString('hex')}@bench`;
  readonly fromTag = randomBytes(4).toString('hex');
  toTag = '';
  remoteTarget = '';
  cseq = 1;
  inviteSentAt = 0;
  answeredAt = 0;
  serverRtp: { address: string; port: number } | null = null;
  firstAudioAt = 0;
  lastArrival = 0;
  packets = 0;
  keyPressedAt = 0;
  awaitingStop = false;
  byeReceived = false;
  ackText = '';
  readonly ssrc = randomBytes(4).readUInt32BE(0);
  seq = randomBytes(2).readUInt16BE(0);
  readonly tsBase = randomBytes(4).readUInt32BE(0);
  eventOffset = 0;
  retransmit: NodeJS.Timeout | null = null;
  keysSent = false;
  /** Keys this call sent (each one RFC 4733 event). */
  keyCount = 0;
  #resolveAnswered!: (ok: boolean) => void;
  readonly answered = new Promise<boolean>((resolve) => { this.#resolveAnswered = resolve; });
  #resolveEnded!: () => void;
  readonly ended = new Promise<void>((resolve) => { this.#resolveEnded = resolve; });

  constructor(readonly plan: CallPlan) {}

  settleAnswered(ok: boolean): void {
    this.#resolveAnswered(ok);
  }

  end(state: 'ended' | 'failed', failure?: string): void {
    if (this.state === 'ended' || this.state === 'failed') return;
    this.state = state;
    if (failure !== undefined) this.failure = failure;
    if (this.retransmit !== null) clearTimeout(this.retransmit);
    this.retransmit = null;
    this.#resolveAnswered(false);
    this.#resolveEnded();
  }
}

interface ScheduledPacket {
  readonly due: number;
  readonly call: LoadCall;
  readonly packet: Buffer;
  readonly firstOfKey: boolean;
}

function header(text: string, name: string): string | undefined {
  const re = new RegExp(`^${name}[ \\t]*:[ \\t]*(.*)$`, 'im');
  return re.exec(text)?.[1]?.trim();
}

export class LoadUa {
  readonly setup = new Histogram(10_000);
  readonly gaps = new Histogram(2_000);
  readonly stopLatency = new Histogram(2_000);
  measuring = false;
  readonly calls = new Map<string, LoadCall>();
  readonly #byRtpPort = new Map<number, LoadCall>();
  readonly #sip: Socket;
  readonly #rtp: Socket;
  #queue: ScheduledPacket[] = [];
  #scheduler: NodeJS.Timeout | null = null;
  rtpPort = 0;
  sipPort = 0;
  unmatchedRtp = 0;

  private constructor(private readonly target: { address: string; port: number }, private readonly domain: string, sip: Socket, rtp: Socket) {
    this.#sip = sip;
    this.#rtp = rtp;
    sip.on('message', (m, r) => this.#onSip(m.toString('latin1'), r));
    rtp.on('message', (m, r) => this.#onRtp(m, r));
    sip.on('error', () => undefined);
    rtp.on('error', () => undefined);
  }

  static async start(target: { address: string; port: number }, domain = 'demo.local'): Promise<LoadUa> {
    const bind = async (): Promise<Socket> => {
      const s = createSocket({ type: 'udp4', recvBufferSize: 16 * 1024 * 1024, sendBufferSize: 4 * 1024 * 1024 });
      await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
      return s;
    };
    const ua = new LoadUa(target, domain, await bind(), await bind());
    ua.sipPort = ua.#sip.address().port;
    ua.rtpPort = ua.#rtp.address().port;
    ua.#scheduler = setInterval(() => ua.#drain(), 10);
    return ua;
  }

  close(): void {
    if (this.#scheduler !== null) clearInterval(this.#scheduler);
    for (const call of this.calls.values()) call.end('ended');
    this.#sip.close();
    this.#rtp.close();
  }

  // --- SIP ------------------------------------------------------------------------------------

  #send(text: string): void {
    this.#sip.send(Buffer.from(text, 'latin1'), this.target.port, this.target.address);
  }

  #sdp(): string {
    return ['v=0', 'o=bench 1 1 IN IP4 127.0.0.1', 's=bench', 'c=IN IP4 127.0.0.1', 't=0 0',
      `m=audio ${this.rtpPort} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16',
      'a=ptime:20', 'a=sendrecv', ''].join('\r\n');
  }

  #head(call: LoadCall, method: string, uri: string, cseq: number, branch: string, toTag: string): string[] {
    return [
      `${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.sipPort};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:${call.plan.from}@${this.domain}>;tag=${call.fromTag}`,
      `To: <sip:${call.plan.service}@${this.domain}>${toTag === '' ? '' : `;tag=${toTag}`}`,
      `Call-ID: ${call.callId}`,
      `CSeq: ${cseq} ${method}`,
      `Contact: <sip:${call.plan.from}@127.0.0.1:${this.sipPort}>`,
    ];
  }

  /** Places a call; resolves (call.answered) when the 200 OK arrives. */
  call(plan: CallPlan): LoadCall {
    const call = new LoadCall(plan);
    this.calls.set(call.callId, call);
    const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
    const body = this.#sdp();
    const text = [...this.#head(call, 'INVITE', `sip:${plan.service}@${this.domain}`, 1, branch, ''),
      'Content-Type: application/sdp', `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
    call.inviteSentAt = performance.now();
    let interval = T1;
    const fire = (): void => {
      this.#send(text);
      if (interval > 16 * T1) {
        call.end('failed', 'no answer to INVITE');
        return;
      }
      call.retransmit = setTimeout(fire, interval);
      interval *= 2;
    };
    fire();
    return call;
  }

  /** Hangs up from our side (BYE); resolves when the server answered it. */
  hangup(call: LoadCall): Promise<void> {
    if (call.state !== 'up') return Promise.resolve();
    call.cseq += 1;
    const text = [...this.#head(call, 'BYE', call.remoteTarget, call.cseq, `z9hG4bK${randomBytes(6).toString('hex')}`, call.toTag),
      'Content-Length: 0', '', ''].join('\r\n');
    this.#send(text);
    let tries = 0;
    const again = (): void => {
      if (call.state !== 'up' || tries++ > 6) { call.end('ended'); return; }
      this.#send(text);
      call.retransmit = setTimeout(again, T1 * 2 ** tries);
    };
    call.retransmit = setTimeout(again, T1);
    return call.ended;
  }

  #onSip(text: string, from: RemoteInfo): void {
    const callId = header(text, '(?:Call-ID|i)');
    const call = callId === undefined ? undefined : this.calls.get(callId);
    if (text.startsWith('SIP/2.0 ')) {
      if (call === undefined) return;
      const status = Number(text.slice(8, 11));
      const method = /CSeq:\s*\d+\s+(\w+)/i.exec(text)?.[1];
      if (method === 'INVITE') this.#onInviteResponse(call, status, text);
      else if (method === 'BYE' && status >= 200) call.end('ended');
      return;
    }
    // A request from the server: BYE (goodbye) or anything else in the dialog → 200.
    const method = text.slice(0, text.indexOf(' '));
    const via = header(text, '(?:Via|v)') ?? '';
    const reply = ['SIP/2.0 200 OK', `Via: ${via}`, `From: ${header(text, '(?:From|f)') ?? ''}`, `To: ${header(text, '(?:To|t)') ?? ''}`,
      `Call-ID: ${callId ?? ''}`, `CSeq: ${header(text, 'CSeq') ?? ''}`, 'Content-Length: 0', '', ''].join('\r\n');
    this.#sip.send(Buffer.from(reply, 'latin1'), from.port, from.address);
    if (method === 'BYE' && call !== undefined) {
      call.byeReceived = true;
      call.end('ended');
    }
  }

  #onInviteResponse(call: LoadCall, status: number, text: string): void {
    if (status < 200) {
      // A provisional answer stops INVITE retransmissions (Timer A), not the wait for the final.
      if (call.retransmit !== null && call.state === 'inviting') { clearTimeout(call.retransmit); call.retransmit = null; }
      return;
    }
    if (status >= 300) {
      // ACK for a failure goes to the same branch; loss of it only costs retransmissions.
      call.end('failed', `INVITE answered ${status}`);
      return;
    }
    if (call.state !== 'inviting') {
      // A retransmitted 200: our ACK was lost (RFC 3261 §13.2.2.4), send it again.
      if (call.ackText !== '') this.#send(call.ackText);
      return;
    }
    if (call.retransmit !== null) clearTimeout(call.retransmit);
    call.retransmit = null;
    call.state = 'up';
    call.answeredAt = performance.now();
    this.setup.add(call.answeredAt - call.inviteSentAt);
    call.toTag = /;\s*tag=([^;>\s]+)/i.exec(header(text, '(?:To|t)') ?? '')?.[1] ?? '';
    call.remoteTarget = /<([^>]+)>/.exec(header(text, '(?:Contact|m)') ?? '')?.[1] ?? `sip:${this.target.address}:${this.target.port}`;
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    const port = Number(/^m=audio (\d+)/m.exec(body)?.[1] ?? 0);
    const address = /^c=IN IP4 (\S+)/m.exec(body)?.[1] ?? this.target.address;
    call.serverRtp = { address, port };
    this.#byRtpPort.set(port, call);
    call.ackText = [...this.#head(call, 'ACK', call.remoteTarget, 1, `z9hG4bK${randomBytes(6).toString('hex')}`, call.toTag),
      'Content-Length: 0', '', ''].join('\r\n');
    this.#send(call.ackText);
    call.settleAnswered(true);
  }

  // --- RTP ------------------------------------------------------------------------------------

  #onRtp(packet: Buffer, from: RemoteInfo): void {
    const call = this.#byRtpPort.get(from.port);
    if (call === undefined || call.state !== 'up' || packet.length < 12) {
      this.unmatchedRtp += 1;
      return;
    }
    const now = performance.now();
    call.packets += 1;
    if (this.measuring && call.lastArrival !== 0) this.gaps.add(now - call.lastArrival);
    call.lastArrival = now;
    const payloadType = packet[1]! & 0x7f;
    if (payloadType !== 0) return;
    if (call.firstAudioAt === 0) {
      call.firstAudioAt = now;
      if (!call.keysSent && call.plan.keys !== '') {
        call.keysSent = true;
        setTimeout(() => this.pressKeys(call, call.plan.keys, true), call.plan.firstKeyAfterMs);
      }
    }
    if (call.awaitingStop) {
      let silent = true;
      for (let i = 12; i < packet.length; i++) {
        if (packet[i] !== PCMU_SILENCE) { silent = false; break; }
      }
      if (silent) {
        call.awaitingStop = false;
        this.stopLatency.add(now - call.keyPressedAt);
      }
    }
  }

  /**
   * Presses keys as RFC 4733 events (§2.5: start, updates every 20 ms, end ×3), 200 ms apart.
   * `measureStop`: time the first key to the prompt's stop (only during "enter your access
   * code", which has no digital silence of its own).
   */
  pressKeys(call: LoadCall, keys: string, measureStop = false): void {
    if (call.state !== 'up' || call.serverRtp === null) return;
    let at = performance.now();
    call.keyCount += keys.length;
    for (const [k, key] of [...keys].entries()) {
      const event = DTMF_EVENTS.indexOf(key);
      if (event < 0) throw new Error(`not a key: ${key}`);
      call.eventOffset += 1600; // a new event timestamp per key, 200 ms of media clock later
      const timestamp = (call.tsBase + call.eventOffset) >>> 0;
      for (let i = 0; i < 8; i++) {
        const end = i >= 5;
        const duration = Math.min(i + 1, 5) * 160;
        const packet = Buffer.alloc(16);
        packet[0] = 0x80;
        packet[1] = (i === 0 ? 0x80 : 0) | 101;
        packet.writeUInt16BE(call.seq, 2);
        call.seq = (call.seq + 1) & 0xffff;
        packet.writeUInt32BE(timestamp, 4);
        packet.writeUInt32BE(call.ssrc, 8);
        packet[12] = event;
        packet[13] = (end ? 0x80 : 0) | 10;
        packet.writeUInt16BE(duration, 14);
        this.#queue.push({ due: at + i * 20, call, packet, firstOfKey: measureStop && k === 0 && i === 0 });
      }
      at += 200;
    }
  }

  #drain(): void {
    if (this.#queue.length === 0) return;
    const now = performance.now();
    const later: ScheduledPacket[] = [];
    for (const item of this.#queue) {
      if (item.due > now) { later.push(item); continue; }
      const { call } = item;
      if (call.state !== 'up' || call.serverRtp === null) continue;
      if (item.firstOfKey) {
        call.keyPressedAt = performance.now();
        call.awaitingStop = true;
      }
      this.#rtp.send(item.packet, call.serverRtp.port, call.serverRtp.address);
    }
    this.#queue = later;
  }
}
