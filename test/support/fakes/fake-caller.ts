/**
 * A caller for the FakeDrachtioServer: sends the INVITE, ACKs the 2xx, answers what the
 * application sends in the dialog (BYE, REFER) and can hang up, send INFO digits or re-INVITE.
 */
import type { FakeDrachtioServer, FakeResponse, Leg, NetworkPeer } from './fake-drachtio-server.js';
import { header, type SipText } from './sip-text.js';

/** A G.711 offer with RFC 4733 telephone-event, as a desk phone sends it. */
export function callerOffer(opts: { codecs?: Array<'PCMU' | 'PCMA'>; telephoneEvent?: boolean; port?: number; direction?: string } = {}): string {
  const codecs = opts.codecs ?? ['PCMU', 'PCMA'];
  const pts = codecs.map((c) => (c === 'PCMU' ? 0 : 8));
  const te = opts.telephoneEvent ?? true;
  return [
    'v=0', 'o=phone 1 1 IN IP4 127.0.0.1', 's=phone', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${opts.port ?? 30000} RTP/AVP ${[...pts, ...(te ? [101] : [])].join(' ')}`,
    ...codecs.map((c, i) => `a=rtpmap:${pts[i]} ${c}/8000`),
    ...(te ? ['a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16'] : []),
    'a=ptime:20', `a=${opts.direction ?? 'sendrecv'}`, '',
  ].join('\r\n');
}

export class FakeCaller implements NetworkPeer {
  readonly requests: SipText[] = [];
  /** How this phone answers requests from the application, by method. */
  readonly answers: Record<string, FakeResponse> = { BYE: { status: 200 }, REFER: { status: 202, reason: 'Accepted' } };
  leg: Leg | null = null;
  callId = '';
  #waiters: Array<{ method: string; resolve: (r: SipText) => void }> = [];

  constructor(private readonly server: FakeDrachtioServer, readonly address = '127.0.0.1', readonly port = 5070) {}

  onRequest(request: SipText): FakeResponse {
    this.requests.push(request);
    for (const w of [...this.#waiters]) {
      if (w.method === request.method) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(request);
      }
    }
    return this.answers[request.method ?? ''] ?? { status: 200 };
  }

  /** INVITE; on a 2xx the dialog is kept and ACKed. Resolves with the final response. */
  async invite(opts: { requestUri: string; from: string; body?: string; headers?: ReadonlyArray<readonly [string, string]>; contentType?: string }): Promise<SipText> {
    const sent = this.server.sendInvite(this, { ...opts, body: opts.body ?? callerOffer() });
    this.callId = sent.callId;
    const final = await sent.final;
    if ((final.status ?? 0) >= 200 && (final.status ?? 0) < 300) {
      this.leg = this.server.legOf(sent.callId) ?? null;
      if (this.leg !== null) this.server.sendAck(this.leg);
    }
    return final;
  }

  /** INVITE that this caller cancels after `afterMs`. */
  inviteAndCancel(opts: { requestUri: string; from: string; afterMs: number }): Promise<SipText> {
    const sent = this.server.sendInvite(this, { ...opts, body: callerOffer() });
    this.callId = sent.callId;
    setTimeout(() => sent.cancel(), opts.afterMs);
    return sent.final;
  }

  waitForRequest(method: string, timeoutMs = 10_000): Promise<SipText> {
    const seen = this.requests.find((r) => r.method === method);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${method} from the application within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ method, resolve: (r) => { clearTimeout(timer); resolve(r); } });
    });
  }

  #inDialog(): Leg {
    if (this.leg === null) throw new Error('no dialog');
    return this.leg;
  }

  async bye(): Promise<number> {
    return (await this.server.sendInDialog(this.#inDialog(), 'BYE')).status ?? 0;
  }

  async info(key: string, contentType = 'application/dtmf-relay'): Promise<number> {
    const body = contentType === 'application/dtmf-relay' ? `Signal=${key}\r\nDuration=160\r\n` : key;
    return (await this.server.sendInDialog(this.#inDialog(), 'INFO', { headers: [['Content-Type', contentType]], body })).status ?? 0;
  }

  async reinvite(body: string): Promise<SipText> {
    return this.server.sendInDialog(this.#inDialog(), 'INVITE', { headers: [['Content-Type', 'application/sdp']], body });
  }

  referTo(): string | undefined {
    const refer = this.requests.find((r) => r.method === 'REFER');
    return refer === undefined ? undefined : header(refer, 'refer-to');
  }
}
