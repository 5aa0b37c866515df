/**
 * The HTTP side of the server, one fastify app: `GET /healthz` for load balancers and
 * orchestration, `GET /metrics` for Prometheus, the token-protected `/admin/*` endpoint the CLI
 * uses while this server owns the data directory, and — with a portal service — the HTTP API
 * (`/api/*`, OpenAPI 3 at `/openapi.json`) and the portal pages (`/portal`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import type { Logger } from '../log.js';
import { AdminRequestError, type AdminOperations } from '../admin/admin.js';
import type { Role } from '../domain/permissions.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PortalService } from '../portal/portal-service.js';
import { registerApi } from './api-routes.js';
import { registerPortal } from './portal-routes.js';

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
  /** The HTTP API and the portal pages; absent → 404. */
  readonly portal?: PortalService;
  /** Mark the session cookie Secure (the portal is served over HTTPS by a proxy in front). */
  readonly secureCookies?: boolean;
  /**
   * Addresses/CIDRs of reverse proxies whose X-Forwarded-For (and -Host, -Proto) are believed
   * (HTTP_TRUST_PROXY). Empty: none — req.ip is the peer, so sign-in limits count the peer.
   */
  readonly trustProxy?: readonly string[];
}

const HEALTH_TIMEOUT_MS = 2_000;

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

function json(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').type('application/json; charset=utf-8').send(body);
}

export class HttpEndpoint {
  private app: FastifyInstance | null = null;
  private adminToken: string | null = null;

  constructor(private readonly opts: HttpServerOptions) {}

  private async build(): Promise<FastifyInstance> {
    const app = Fastify({
      logger: false,
      bodyLimit: 64 * 1024,
      connectionTimeout: 30_000,
      keepAliveTimeout: 5_000,
      requestTimeout: 30_000,
      // Only configured proxies may say who the client is: otherwise anyone could send a fresh
      // X-Forwarded-For with every sign-in attempt and never hit the per-address limit.
      trustProxy: this.opts.trustProxy !== undefined && this.opts.trustProxy.length > 0 ? [...this.opts.trustProxy] : false,
      // Ajv: coerce query strings, reject unknown shapes with 400 (schemas in api-routes.ts).
      ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    });
    await app.register(cookie);
    await app.register(formbody, { bodyLimit: 16 * 1024 });
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: { title: 'vmaccess API', version: '0.1.0', description: 'Voicemail access codes: mailboxes, access codes, lockouts, audit, reset and recycle.' },
        components: {
          securitySchemes: {
            session: { type: 'apiKey', in: 'cookie', name: 'vmaccess_session', description: 'From POST /api/session; state-changing requests also need X-CSRF-Token.' },
            token: { type: 'http', scheme: 'bearer', description: 'An operator API token (vmaccess token create).' },
          },
        },
      },
    });

    app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
      if (err.validation !== undefined || err.statusCode === 400) return json(reply, 400, { error: 'bad_request', message: err.message });
      if (err.statusCode === 413) return json(reply, 413, { error: 'too_large', message: 'request body too large' });
      if (err.statusCode === 415) return json(reply, 415, { error: 'unsupported_media_type', message: err.message });
      this.opts.logger.error({ err }, 'http request failed');
      return json(reply, 500, { error: 'internal error' });
    });
    app.setNotFoundHandler((_req, reply) => json(reply, 404, { error: 'not found' }));

    app.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'],
      url: '/healthz',
      schema: { hide: true },
      handler: async (req, reply) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') return json(reply, 405, { error: 'use GET' });
        const results = await Promise.all(this.opts.health.map(async (h) => [h.name, await withTimeout(h.check(), HEALTH_TIMEOUT_MS)] as const));
        const ok = results.every(([, healthy]) => healthy);
        return json(reply, ok ? 200 : 503, {
          status: ok ? 'ok' : 'unavailable',
          checks: Object.fromEntries(results.map(([name, healthy]) => [name, healthy ? 'ok' : 'failing'])),
        });
      },
    });

    const metrics = this.opts.metrics;
    if (metrics !== undefined) {
      app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
        const text = await metrics.text();
        return reply.code(200).header('cache-control', 'no-store').header('content-type', metrics.contentType).send(text);
      });
    }

    this.registerAdmin(app);
    if (this.opts.portal !== undefined) {
      registerApi(app, this.opts.portal, { secureCookies: this.opts.secureCookies === true });
      registerPortal(app, this.opts.portal, { secureCookies: this.opts.secureCookies === true });
      app.get('/openapi.json', { schema: { hide: true } }, async (_req, reply) => reply.send(app.swagger()));
    }
    return app;
  }

  private registerAdmin(app: FastifyInstance): void {
    const { admin } = this.opts;
    app.addHook('onRequest', async (req, reply) => {
      if (!req.url.startsWith('/admin/')) return;
      const auth = req.headers.authorization ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (this.adminToken === null || !tokenMatches(token, this.adminToken)) {
        return json(reply, 401, { error: 'admin token missing or wrong' });
      }
    });
    const q = (req: { query: unknown }, name: string): string | undefined => {
      const v = (req.query as Record<string, unknown>)[name];
      return typeof v === 'string' ? v : undefined;
    };
    app.get('/admin/audit', { schema: { hide: true } }, async (req, reply) => {
      const domain = q(req, 'domain');
      if (domain === undefined || domain === '') return json(reply, 400, { error: 'domain is required' });
      return json(reply, 200, { events: await admin.audit({ domain, mailbox: q(req, 'mailbox'), all: q(req, 'all') === '1' }) });
    });
    app.post('/admin/migrate', { schema: { hide: true } }, async (_req, reply) => json(reply, 200, { applied: await admin.migrate() }));
    app.post('/admin/demo', { schema: { hide: true } }, async (_req, reply) => json(reply, 200, await admin.seedDemo()));
    // Account bootstrap (vmaccess user/operator/token): an operator's refusal is 400 with its reason.
    const account = (path: string, fn: (body: Record<string, unknown>) => Promise<unknown>): void => {
      app.post(path, { schema: { hide: true } }, async (req, reply) => {
        try {
          return json(reply, 200, (await fn((req.body ?? {}) as Record<string, unknown>)) ?? { ok: true });
        } catch (err) {
          if (err instanceof AdminRequestError) return json(reply, err.status || 400, { error: err.message });
          throw err;
        }
      });
    };
    const str = (v: unknown): string => (typeof v === 'string' ? v : '');
    const opt = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    // The CLI says who runs it (cli:<os user>) for the audit row (LocalAdmin bounds it); only holders of the admin token get here.
    const actor = (b: Record<string, unknown>): string => str(b.actor);
    account('/admin/users', (b) => admin.createUser({
      domain: str(b.domain), extension: str(b.extension), displayName: str(b.displayName), role: str(b.role) as Role, site: opt(b.site), password: opt(b.password), actor: actor(b),
    }));
    account('/admin/user-password', (b) => admin.setUserPassword({ domain: str(b.domain), extension: str(b.extension), password: str(b.password), actor: actor(b) }));
    account('/admin/operators', (b) => admin.setOperator({ name: str(b.name), password: opt(b.password), actor: actor(b) }));
    account('/admin/tokens', (b) => admin.createToken({ operator: str(b.operator), label: str(b.label), actor: actor(b) }));
    account('/admin/tokens/revoke', (b) => admin.revokeToken({ operator: str(b.operator), label: opt(b.label), token: opt(b.token), actor: actor(b) }));
    app.post('/admin/unlock', { schema: { hide: true } }, async (req, reply) => {
      const domain = q(req, 'domain') ?? '';
      const mailbox = q(req, 'mailbox') ?? '';
      if (domain === '' || mailbox === '') return json(reply, 400, { error: 'domain and mailbox are required' });
      const actor = q(req, 'actor') ?? '';
      try {
        return json(reply, 200, await admin.unlock({ domain, mailbox, actor }));
      } catch (err) {
        // Typically the shared counters (Redis) are unreachable: the operator should hear why.
        this.opts.logger.error({ err }, 'admin unlock failed');
        return json(reply, 503, { error: `unlock failed: ${(err as Error).message}` });
      }
    });
  }

  async listen(): Promise<{ address: string; port: number }> {
    const app = await this.build();
    await app.listen({ host: this.opts.address, port: this.opts.port });
    this.app = app;
    const a = app.server.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  /** Enables /admin/* for holders of this token (written to DATA_DIR, mode 0600). */
  enableAdmin(token: string): void {
    this.adminToken = token;
  }

  async close(): Promise<void> {
    const app = this.app;
    this.app = null;
    if (app === null) return;
    app.server.closeIdleConnections();
    await app.close();
  }
}
