/**
 * The engine's one FreeSWITCH: an inbound ESL connection (FREESWITCH_HOST/PORT/SECRET) with an
 * fsmrf MediaServer on it, kept up with capped exponential backoff.
 *
 * Each attempt: TCP connect and `auth` (drachtio-modesl), then our own `sofia status` check for the
 * SIP profile fsmrf sends its INVITEs to (default `drachtio_mrf`) — fsmrf would throw from inside
 * a socket callback when the profile is missing — then the MediaServer, which is ready once
 * FreeSWITCH has answered its own `sofia status` (within fsmrf's 1 s). An attempt that fails in any
 * way is closed completely (`closing` stops modesl's own reconnect loop) and the next one is
 * scheduled; every failure and every change of state is one log line. A connection that drops
 * later is handled the same way: the MediaServer is discarded and a new one is built, while calls
 * already in progress keep their own per-call ESL connections.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../../log.js';
import { localAddressToward } from '../embedded/local-address.js';
import type { EslConnection, MediaServer as MediaServerInstance, MrfInstance } from './drachtio-types.js';
import { esl, MediaServer } from './modules.js';

export interface MediaServerConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly secret: string;
  /** The FreeSWITCH SIP profile fsmrf sends INVITEs to (`sofia status` must list it). */
  readonly profile: string;
  /** Where we accept FreeSWITCH's per-call outbound ESL connections (`socket` in its dialplan). */
  readonly listenAddress: string;
  readonly listenPort: number;
  /** The address FreeSWITCH should connect back to; null → ours on the route towards FreeSWITCH. */
  readonly advertisedAddress: string | null;
  readonly mrf: MrfInstance;
  readonly logger: Logger;
  /** How long one attempt may take from TCP connect to a ready MediaServer. */
  readonly attemptTimeoutMs?: number;
  readonly minRetryMs?: number;
  readonly maxRetryMs?: number;
}

export type MediaServerState = 'connecting' | 'ready' | 'down' | 'closed';

export class MediaServerConnection {
  #state: MediaServerState = 'connecting';
  #mediaServer: MediaServerInstance | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #retryMs: number;
  #attempts = 0;
  /** The attempt in progress, so close() can stop it. */
  #abort: ((reason: string) => void) | null = null;
  readonly #log: Logger;
  readonly #opts: MediaServerConnectionOptions;

  constructor(opts: MediaServerConnectionOptions) {
    this.#opts = opts;
    this.#retryMs = opts.minRetryMs ?? 500;
    this.#log = opts.logger.child({ component: 'media-server', freeswitch: `${opts.host}:${opts.port}` });
  }

  get state(): MediaServerState {
    return this.#state;
  }

  /** The MediaServer while it is ready, else null (new calls then get 503). */
  get mediaServer(): MediaServerInstance | null {
    return this.#state === 'ready' ? this.#mediaServer : null;
  }

  start(): void {
    void this.#connect();
  }

  async close(): Promise<void> {
    this.#state = 'closed';
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#abort?.('closing');
    this.#discard();
  }

  /** A method, not a field read, so TypeScript does not narrow it across an await. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  async #connect(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#attempts += 1;
    try {
      const ms = await this.#attempt();
      if (this.#isClosed()) {
        ms.closing = true;
        ms.disconnect();
        return;
      }
      this.#mediaServer = ms;
      this.#state = 'ready';
      this.#retryMs = this.#opts.minRetryMs ?? 500;
      this.#log.info({ attempt: this.#attempts, eslListen: `${ms.listenAddress ?? '?'}:${ms.listenPort ?? '?'}` }, 'media server ready');
      this.#attempts = 0;
    } catch (err) {
      if (this.#isClosed()) return;
      this.#state = 'down';
      const delay = this.#retryMs;
      this.#retryMs = Math.min(this.#retryMs * 2, this.#opts.maxRetryMs ?? 30_000);
      this.#log.warn({ reason: (err as Error).message, attempt: this.#attempts, retryInMs: delay },
        'media server unavailable; new calls get 503 until it is back');
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        void this.#connect();
      }, delay);
    }
  }

  /** The ESL connection of a ready MediaServer ended: FreeSWITCH restarted or the network broke. */
  #lost(): void {
    if (this.#state !== 'ready') return;
    this.#state = 'down';
    this.#log.error('lost the ESL connection to FreeSWITCH; reconnecting (calls in progress keep their media)');
    this.#discard();
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#connect();
    }, this.#opts.minRetryMs ?? 500);
  }

  #discard(): void {
    const ms = this.#mediaServer;
    this.#mediaServer = null;
    if (ms === null) return;
    ms.closing = true;
    try {
      ms.disconnect();
    } catch {
      // already gone
    }
  }

  async #advertisedAddress(): Promise<string | undefined> {
    const { advertisedAddress, listenAddress, host } = this.#opts;
    if (advertisedAddress !== null) return advertisedAddress;
    if (listenAddress !== '0.0.0.0' && listenAddress !== '::') return listenAddress;
    const target = isIP(host) !== 0 ? host : (await lookup(host).catch(() => ({ address: '127.0.0.1' }))).address;
    return localAddressToward(target);
  }

  #attempt(): Promise<MediaServerInstance> {
    const { host, port, secret, profile, listenAddress, listenPort, mrf } = this.#opts;
    const timeoutMs = this.#opts.attemptTimeoutMs ?? 5_000;
    return new Promise<MediaServerInstance>((resolve, reject) => {
      let settled = false;
      let ms: MediaServerInstance | null = null;
      const fail = (reason: string): void => {
        if (settled) return;
        settled = true;
        this.#abort = null;
        clearTimeout(timer);
        conn.closing = true;
        if (ms !== null) {
          ms.closing = true;
          try { ms.disconnect(); } catch { /* gone */ }
        }
        try { conn.disconnect(); } catch { /* gone */ }
        reject(new Error(reason));
      };
      const timer = setTimeout(() => fail(`no ready answer within ${timeoutMs} ms`), timeoutMs);
      this.#abort = fail;

      const conn: EslConnection = new esl.Connection(host, port, secret, () => {
        // FreeSWITCH must have the SIP profile fsmrf will send its INVITEs to.
        conn.api('sofia status', (response) => {
          if (settled) return;
          const status = response.getBody();
          const profileLine = new RegExp(`^\\s*${profile}\\s.*sip:mod_sofia@(?:[0-9]{1,3}\\.){3}[0-9]{1,3}:\\d+`, 'm');
          if (!profileLine.test(status)) {
            fail(`FreeSWITCH has no SIP profile '${profile}' in 'sofia status'`);
            return;
          }
          void this.#advertisedAddress().then((advertised) => {
            if (settled) return;
            ms = new MediaServer(conn, mrf, listenAddress, listenPort, advertised, undefined, profile);
            ms.once('ready', () => {
              if (settled) return;
              settled = true;
              this.#abort = null;
              clearTimeout(timer);
              resolve(ms!);
            });
            ms.once('error', (err: Error) => fail(err.message));
          });
        });
      });
      // Registered before the MediaServer's own listeners, so ours run first (EventEmitter2 order):
      // `closing` is set before fsmrf's handler would print to the console and modesl would retry.
      conn.on('esl::end', () => {
        conn.closing = true;
        if (ms !== null) ms.closing = true;
        if (!settled) fail('the ESL connection closed');
        else this.#lost();
      });
      conn.on('error', (err: Error) => fail(err.message));
      conn.on('esl::event::auth::fail', () => fail('FreeSWITCH refused the ESL password (FREESWITCH_SECRET)'));
      conn.on('esl::event::raw::text/rude-rejection', () => fail('FreeSWITCH refused the ESL connection (its event socket ACL)'));
    });
  }
}
