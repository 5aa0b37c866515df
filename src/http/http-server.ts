/**
 * The HTTP side of the server: `GET /healthz` for load balancers and orchestration, `GET /metrics`
 * for Prometheus, and the
 * token-protected `/admin/*` endpoint the CLI uses while this server owns the data directory.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { AdminOperations } from '../admin/admin.js';
import type { Metrics } from '../metrics/metrics.js';

/** One thing /healthz reports on; `check` resolves true when it is healthy. */
export interface HealthCheck {
  readonly name: string;
  check(): Promise<boolean>;
}

export interface HttpServerOptions {
  readonly address: string;
  readonly port: number;
  readonly health: readonly HealthCheck[];
  readonly admin: AdminOperations;
  readonly logger: Logger;
  /** GET /metrics (Prometheus text format); absent → 404. */
  readonly metrics?: Metrics;
}

const HEALTH_TIMEOUT_MS = 2_000;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function withTimeout(p: Promise<boolean>, ms: number): Promise<boolean> {
  return Promise.race([
    p.catch(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref()),
  ]);
}

/** Constant-time comparison of bearer tokens (hashing first makes the lengths equal). */
function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export class HttpEndpoint {
  private server: Server | null = null;
  private adminToken: string | null = null;

  constructor(private readonly opts: HttpServerOptions) {}

  async listen(): Promise<{ address: string; port: number }> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.opts.logger.error({ err }, 'http request failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 5_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  /** Enables /admin/* for holders of this token (written to DATA_DIR, mode 0600). */
  enableAdmin(token: string): void {
    this.adminToken = token;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'use GET' });
      const results = await Promise.all(this.opts.health.map(async (h) => [h.name, await withTimeout(h.check(), HEALTH_TIMEOUT_MS)] as const));
      const ok = results.every(([, healthy]) => healthy);
      return send(res, ok ? 200 : 503, {
        status: ok ? 'ok' : 'unavailable',
        checks: Object.fromEntries(results.map(([name, healthy]) => [name, healthy ? 'ok' : 'failing'])),
      });
    }
    if (url.pathname === '/metrics' && this.opts.metrics !== undefined) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'use GET' });
      const text = await this.opts.metrics.text();
      res.writeHead(200, { 'content-type': this.opts.metrics.contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    if (url.pathname.startsWith('/admin/')) return this.handleAdmin(req, res, url);
    return send(res, 404, { error: 'not found' });
  }

  private async handleAdmin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (this.adminToken === null || !tokenMatches(token, this.adminToken)) {
      return send(res, 401, { error: 'admin token missing or wrong' });
    }
    const { admin } = this.opts;
    if (url.pathname === '/admin/audit' && req.method === 'GET') {
      const domain = url.searchParams.get('domain');
      if (domain === null || domain === '') return send(res, 400, { error: 'domain is required' });
      const mailbox = url.searchParams.get('mailbox') ?? undefined;
      return send(res, 200, { events: await admin.audit({ domain, mailbox }) });
    }
    if (url.pathname === '/admin/migrate' && req.method === 'POST') {
      return send(res, 200, { applied: await admin.migrate() });
    }
    if (url.pathname === '/admin/demo' && req.method === 'POST') {
      return send(res, 200, await admin.seedDemo());
    }
    if (url.pathname === '/admin/unlock' && req.method === 'POST') {
      const domain = url.searchParams.get('domain') ?? '';
      const mailbox = url.searchParams.get('mailbox') ?? '';
      if (domain === '' || mailbox === '') return send(res, 400, { error: 'domain and mailbox are required' });
      const actor = (url.searchParams.get('actor') ?? '').slice(0, 200) || 'cli';
      try {
        return send(res, 200, await admin.unlock({ domain, mailbox, actor }));
      } catch (err) {
        // Typically the shared counters (Redis) are unreachable: the operator should hear why.
        this.opts.logger.error({ err }, 'admin unlock failed');
        return send(res, 503, { error: `unlock failed: ${(err as Error).message}` });
      }
    }
    return send(res, 404, { error: 'not found' });
  }
}
