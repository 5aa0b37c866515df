import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import {
  parseMessage,
  SipEndpoint,
  SipResponse,
  TcpFramer,
  type Dialog,
} from '../../../src/telephony/embedded/sip/index.js';
import { randomId } from './test-uac.js';

describe('TcpFramer (RFC 3261 §18.3 stream framing)', () => {
  const message = (body = ''): string =>
    `OPTIONS sip:a@b SIP/2.0\r\nContent-Type: text/plain\r\nl: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

  it('cuts messages at Content-Length, across chunk boundaries and several per chunk', () => {
    const framer = new TcpFramer(65_536);
    const stream = Buffer.from(message('hello') + message('') + message('world!'));
    const frames = [...framer.push(stream.subarray(0, 10)), ...framer.push(stream.subarray(10, 70)), ...framer.push(stream.subarray(70))];
    expect(frames.map((f) => (f.kind === 'message' ? f.data.toString() : f.kind))).toEqual([message('hello'), message(''), message('world!')]);
  });

  it('answers CRLFCRLF pings and skips stray CRLFs (RFC 5626)', () => {
    const framer = new TcpFramer(65_536);
    expect(framer.push(Buffer.from('\r\n')).map((f) => f.kind)).toEqual([]);
    expect(framer.push(Buffer.from('\r\n')).map((f) => f.kind)).toEqual(['ping']);
    expect(framer.push(Buffer.from(`\r\n${message()}`)).map((f) => f.kind)).toEqual(['message']);
  });

  it('reports oversize messages and unreadable Content-Length', () => {
    expect(new TcpFramer(100).push(Buffer.from(message('x'.repeat(200))))[0]).toMatchObject({ kind: 'oversize', part: 'body' });
    expect(new TcpFramer(100).push(Buffer.alloc(300, 0x41))[0]).toEqual({ kind: 'oversize' });
    const bad = 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n';
    expect(new TcpFramer(1000).push(Buffer.from(bad))[0]).toMatchObject({ kind: 'unframeable' });
  });
});

/** A SIP client over one TCP connection. */
class TcpClient {
  private readonly framer = new TcpFramer(1 << 20);
  readonly messages: Array<ReturnType<typeof parseMessage>> = [];
  readonly raw: Buffer[] = [];
  closed = false;
  private wake: (() => void) | undefined;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.raw.push(chunk);
      for (const frame of this.framer.push(chunk)) if (frame.kind === 'message') this.messages.push(parseMessage(frame.data, 'tcp'));
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(new TcpClient(socket)));
      socket.once('error', reject);
    });
  }

  get port(): number {
    return this.socket.localPort ?? 0;
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  async until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  async response(status: number, method: string): Promise<SipResponse> {
    const find = (): SipResponse | undefined =>
      this.messages.find((m): m is SipResponse => m instanceof SipResponse && m.status === status && m.cseq.method === method);
    await this.until(() => find() !== undefined);
    return find() as SipResponse;
  }
}

function request(client: TcpClient, method: string, callId: string, extra: string[] = [], body = '', cseq = 1): string {
  return [
    `${method} sip:*97@127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/TCP 127.0.0.1:${client.port};branch=z9hG4bK${randomId()}`,
    'Max-Forwards: 70',
    'From: <sip:201@demo.local>;tag=tcpfrom',
    'To: <sip:*97@demo.local>',
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} ${method}`,
    ...extra,
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

describe('SipEndpoint over TCP', () => {
  let endpoint: SipEndpoint;

  beforeAll(async () => {
    endpoint = new SipEndpoint({
      address: '127.0.0.1',
      port: 0,
      advertisedHost: '127.0.0.1',
      logger: silentLogger,
      tcp: true,
      timers: { T1: 40, T2: 320, T4: 400 },
    });
    await endpoint.start();
  });

  afterAll(async () => {
    await endpoint?.close();
  });

  it('serves an INVITE on the connection it came on; the 200 is not retransmitted; ACK and BYE complete the call', async () => {
    const client = await TcpClient.open(endpoint.local.port);
    let accepted: Promise<Dialog> | undefined;
    endpoint.onInvite = (invite) => {
      accepted = invite.accept(null);
    };
    const callId = `tcp${randomId()}`;
    client.write(request(client, 'INVITE', callId, [`Contact: <sip:uac@127.0.0.1:${client.port};transport=tcp>`]));
    await client.response(100, 'INVITE');
    const ok = await client.response(200, 'INVITE');
    expect(ok.get('contact')).toContain('transport=tcp');
    await new Promise((r) => setTimeout(r, 400));
    expect(client.messages.filter((m) => m instanceof SipResponse && m.status === 200)).toHaveLength(1);
    const toTag = ok.to.tag ?? '';
    client.write(request(client, 'ACK', callId).replace('To: <sip:*97@demo.local>', `To: <sip:*97@demo.local>;tag=${toTag}`));
    const dialog = await accepted!;
    const ended = new Promise((resolve) => dialog.once('terminated', resolve));
    client.write(request(client, 'BYE', callId, [], '', 2).replace('To: <sip:*97@demo.local>', `To: <sip:*97@demo.local>;tag=${toTag}`));
    await client.response(200, 'BYE');
    expect(await ended).toBe('remoteBye');
    client.socket.destroy();
  });

  it('answers a CRLFCRLF ping with CRLF; a message without Content-Length gets 400', async () => {
    const client = await TcpClient.open(endpoint.local.port);
    client.write('\r\n\r\n');
    await client.until(() => Buffer.concat(client.raw).toString() === '\r\n');
    const callId = `nocl${randomId()}`;
    client.write(request(client, 'OPTIONS', callId).replace(/Content-Length: 0\r\n/, ''));
    const bad = await client.response(400, 'OPTIONS');
    expect(bad.reason).toBe('missing Content-Length');
    client.socket.destroy();
  });

  it('a body over 64 KiB gets 413 and the connection is closed', async () => {
    const client = await TcpClient.open(endpoint.local.port);
    const callId = `big${randomId()}`;
    client.write(request(client, 'OPTIONS', callId, ['Content-Type: text/plain'], 'x'.repeat(70_000)));
    await client.response(413, 'OPTIONS');
    await client.until(() => client.closed);
    expect(client.closed).toBe(true);
  });

  it('a header section over 64 KiB gets 400 and the connection is closed', async () => {
    const client = await TcpClient.open(endpoint.local.port);
    const callId = `bighead${randomId()}`;
    client.write(request(client, 'OPTIONS', callId, [`X-Padding: ${'y'.repeat(70_000)}`]));
    await client.response(400, 'OPTIONS');
    await client.until(() => client.closed);
    expect(client.closed).toBe(true);
  });

  it('leaves no transactions or dialogs behind', async () => {
    const deadline = Date.now() + 10_000;
    const idle = (): boolean => {
      const s = endpoint.stats();
      return s.serverTransactions === 0 && s.clientTransactions === 0 && s.dialogs === 0;
    };
    while (!idle() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(endpoint.stats()).toEqual({ serverTransactions: 0, clientTransactions: 0, dialogs: 0 });
  });
});
