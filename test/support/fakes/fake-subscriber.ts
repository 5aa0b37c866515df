/**
 * A phone watching a mailbox (RFC 6665 subscriber of `message-summary`) for the
 * FakeDrachtioServer: sends the SUBSCRIBE, refreshes and unsubscribes in its dialog, and answers
 * the NOTIFYs the application sends — in the dialog, or out of any dialog (unsolicited MWI, when
 * it is registered as the peer of its contact's host:port).
 */
import type { FakeDrachtioServer, FakeResponse, Leg, NetworkPeer } from './fake-drachtio-server.js';
import { header, type SipText } from './sip-text.js';
import { waitFor } from '../wait.js';

export class FakeSubscriber implements NetworkPeer {
  /** Every NOTIFY received, in order. */
  readonly notifies: SipText[] = [];
  /** How this phone answers a NOTIFY. */
  notifyAnswer: FakeResponse = { status: 200 };
  leg: Leg | null = null;
  event = 'message-summary';

  constructor(private readonly server: FakeDrachtioServer, readonly address = '127.0.0.1', readonly port = 5300) {}

  get contact(): string {
    return `sip:phone@${this.address}:${this.port}`;
  }

  onRequest(request: SipText): FakeResponse {
    if (request.method === 'NOTIFY') {
      this.notifies.push(request);
      return this.notifyAnswer;
    }
    return { status: 405, reason: 'Method Not Allowed' };
  }

  /**
   * SUBSCRIBE to `requestUri`. `event` / `expires` / `contact`: null leaves the header out,
   * undefined uses the default (message-summary, no Expires, this phone's contact).
   */
  async subscribe(requestUri: string, opts: {
    event?: string | null; expires?: string | null; accept?: string; contact?: string | null;
    headers?: ReadonlyArray<readonly [string, string]>;
  } = {}): Promise<SipText> {
    if (opts.event !== undefined && opts.event !== null) this.event = opts.event;
    const headers: Array<readonly [string, string]> = [
      ...(opts.event === null ? [] : [['Event', opts.event ?? 'message-summary'] as const]),
      ...(opts.expires === undefined || opts.expires === null ? [] : [['Expires', opts.expires] as const]),
      ...(opts.accept !== undefined ? [['Accept', opts.accept] as const] : []),
      ...(opts.headers ?? []),
    ];
    const sent = this.server.sendRequest(this, 'SUBSCRIBE', {
      requestUri, from: `<sip:phone@${this.address}>`, headers,
      contact: opts.contact === undefined ? `<${this.contact}>` : opts.contact,
    });
    const final = await sent.final;
    if ((final.status ?? 0) >= 200 && (final.status ?? 0) < 300) this.leg = this.server.legOf(sent.callId) ?? null;
    return final;
  }

  /** A SUBSCRIBE in the dialog: a refresh, or with '0' an unsubscribe (RFC 6665 §4.1.2.2, §4.1.2.3). */
  refresh(expires: string | null): Promise<SipText> {
    if (this.leg === null) throw new Error('no subscription dialog');
    return this.server.sendInDialog(this.leg, 'SUBSCRIBE', {
      headers: [['Event', this.event], ...(expires !== null ? [['Expires', expires] as const] : [])],
    });
  }

  unsubscribe(): Promise<SipText> {
    return this.refresh('0');
  }

  /** Resolves with the `n`-th NOTIFY (1-based) once it has arrived. */
  async notify(n: number, timeoutMs = 5000): Promise<SipText> {
    await waitFor(() => this.notifies.length >= n, timeoutMs, `NOTIFY #${n} at ${this.contact}`);
    return this.notifies[n - 1]!;
  }

  latest(): SipText | undefined {
    return this.notifies.at(-1);
  }
}

/** The parts of a NOTIFY the tests look at. */
export function notifySummary(n: SipText): { state: string | undefined; event: string | undefined; type: string | undefined; body: string } {
  return { state: header(n, 'subscription-state'), event: header(n, 'event'), type: header(n, 'content-type'), body: n.body };
}
