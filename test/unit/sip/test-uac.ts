/**
 * A tiny SIP UAC over real UDP for end-to-end tests of the embedded endpoint. It writes
 * requests by hand and parses what comes back with the stack's parser.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parseMessage, SipRequest, SipResponse } from '../../../src/telephony/embedded/sip/index.js';

export type Received = SipRequest | SipResponse;

export interface RequestSpec {
  method: string;
  uri?: string;
  branch?: string;
  callId: string;
  fromTag: string;
  toTag?: string;
  /** The To URI (default sip:*97@demo.local). */
  toUri?: string;
  cseq: number;
  cseqMethod?: string;
  headers?: string[];
  body?: string;
  via?: string;
  maxForwards?: number;
}

export function randomId(): string {
  return randomBytes(6).toString('hex');
}

export class TestUac {
  private readonly queue: Received[] = [];
  private readonly all: Received[] = [];
  private waiters: Array<() => void> = [];
  private responders: Array<{ method: string; status: number; reason: string }> = [];

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
    private readonly serverPort: number,
  ) {
    socket.on('message', (buf) => {
      let message: Received;
      try {
        message = parseMessage(buf);
      } catch {
        return;
      }
      this.queue.push(message);
      this.all.push(message);
      if (message instanceof SipRequest) {
        const responder = this.responders.find((r) => r.method === message.method);
        if (responder) void this.respondTo(message, responder.status, responder.reason);
      }
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    });
  }

  static async open(serverPort: number): Promise<TestUac> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new TestUac(socket, socket.address().port, serverPort);
  }

  get contact(): string {
    return `<sip:uac@127.0.0.1:${this.port}>`;
  }

  build(spec: RequestSpec): string {
    const body = spec.body ?? '';
    const lines = [
      `${spec.method} ${spec.uri ?? 'sip:*97@127.0.0.1'} SIP/2.0`,
      spec.via ?? `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=${spec.branch ?? `z9hG4bK${randomId()}`}`,
      `Max-Forwards: ${spec.maxForwards ?? 70}`,
      `From: "Alice" <sip:201@demo.local>;tag=${spec.fromTag}`,
      `To: <${spec.toUri ?? 'sip:*97@demo.local'}>${spec.toTag ? `;tag=${spec.toTag}` : ''}`,
      `Call-ID: ${spec.callId}`,
      `CSeq: ${spec.cseq} ${spec.cseqMethod ?? spec.method}`,
      ...(spec.headers ?? []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    return lines.join('\r\n');
  }

  send(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(typeof data === 'string' ? Buffer.from(data) : data, this.serverPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  }

  request(spec: RequestSpec): Promise<void> {
    return this.send(this.build(spec));
  }

  /** Waits for (and takes) the next received message matching `match`. */
  async next(match: (m: Received) => boolean, timeoutMs = 5000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.queue.findIndex(match);
      if (index >= 0) return this.queue.splice(index, 1)[0] as Received;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error('timed out waiting for a SIP message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  response(status: number, callId: string, method?: string, timeoutMs?: number): Promise<SipResponse> {
    return this.next(
      (m) => m instanceof SipResponse && m.status === status && m.callId === callId && (method === undefined || m.cseq.method === method),
      timeoutMs,
    ) as Promise<SipResponse>;
  }

  incoming(method: string, callId: string, timeoutMs?: number): Promise<SipRequest> {
    return this.next((m) => m instanceof SipRequest && m.method === method && m.callId === callId, timeoutMs) as Promise<SipRequest>;
  }

  /** Everything received so far (also what next() already took). */
  received(filter: (m: Received) => boolean = () => true): Received[] {
    return this.all.filter(filter);
  }

  /**
   * From now on answers every request of `method` (e.g. NOTIFY) with `status` as it arrives,
   * retransmissions included; the requests are still queued for next(). Returns the undo.
   */
  autoRespond(method: string, status: number, reason: string): () => void {
    const responder = { method, status, reason };
    this.responders.push(responder);
    return () => {
      this.responders = this.responders.filter((r) => r !== responder);
    };
  }

  /** Answers a request we received, echoing its headers (§8.2.6). */
  respondTo(request: SipRequest, status: number, reason: string): Promise<void> {
    const lines = [
      `SIP/2.0 ${status} ${reason}`,
      ...request.getAll('via').map((v) => `Via: ${v}`),
      `From: ${request.get('from')}`,
      `To: ${request.get('to')}`,
      `Call-ID: ${request.callId}`,
      `CSeq: ${request.get('cseq')}`,
      'Content-Length: 0',
      '',
      '',
    ];
    const via = request.topVia;
    const port = typeof via.rport === 'number' ? via.rport : via.port ?? 5060;
    return new Promise((resolve, reject) =>
      this.socket.send(Buffer.from(lines.join('\r\n')), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
