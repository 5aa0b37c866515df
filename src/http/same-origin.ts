/**
 * Refusing cross-site form posts and fetches by their Origin (or, without one, Referer) header.
 *
 * Every state-changing request with a session already needs the session's CSRF token, but
 * signing in has no session yet: a foreign page could post the sign-in form with the attacker's
 * own password and so sign the victim in as the attacker ("login CSRF"), whose portal then
 * records what the victim does. Browsers send Origin with every cross-site POST, so a present
 * header naming another site is refused. Scripts and curl send neither header and are not
 * affected (they have no victim's browser to ride on).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * False when the request says it comes from a page of another origin (or from an opaque one,
 * `Origin: null`); true when it names this host (and port) or says nothing. This host is the
 * Host header — or X-Forwarded-Host from a proxy trusted with HTTP_TRUST_PROXY.
 */
export function sameOrigin(req: FastifyRequest): boolean {
  const claimed = header(req, 'origin') ?? header(req, 'referer');
  if (claimed === undefined) return true;
  let from: URL;
  let self: URL;
  try {
    from = new URL(claimed);
    if (DEFAULT_PORT[from.protocol] === undefined) return false;
    self = new URL(`${from.protocol}//${req.host}`);
  } catch {
    return false; // "null" (a sandboxed or privacy-stripped origin) and anything unreadable
  }
  const port = (u: URL): string => u.port || DEFAULT_PORT[u.protocol]!;
  return from.hostname.toLowerCase() === self.hostname.toLowerCase() && port(from) === port(self);
}

/** The methods that change something (GET/HEAD/OPTIONS never do here). */
export function changesState(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}

/**
 * Refuses state-changing requests under `prefix` that come from another site, with the answer
 * `refuse` gives. An onRequest hook: before the body is parsed, so before any password or CSRF
 * token is looked at (argon2 is the expensive part).
 */
export function refuseCrossOrigin(app: FastifyInstance, prefix: string, refuse: (req: FastifyRequest, reply: FastifyReply) => FastifyReply): void {
  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith(prefix) || !changesState(req.method) || sameOrigin(req)) return;
    return refuse(req, reply);
  });
}
