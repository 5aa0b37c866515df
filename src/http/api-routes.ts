/**
 * The HTTP API (JSON, schema-validated, described in /openapi.json). Who may call what is decided
 * by the portal service (domain/permissions.ts); this file only maps HTTP to it:
 *
 * - a session cookie from POST /api/session (HttpOnly, SameSite=Strict) — state-changing requests
 *   must also send its CSRF token in X-CSRF-Token (the cookie alone never authorises a change);
 * - or an operator API token as `Authorization: Bearer …` (channel admin, no cookie, no CSRF).
 *
 * Errors are `{ "error": code, "message": … }`; a refused access code is 400 with
 * `"error": "policy"` and the rule in `"reason"` (the same rules and names as the phone). A
 * state-changing request whose Origin/Referer names another site is 403 `cross_origin`
 * (same-origin.ts), sign-in included.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ACCESS_CODE_REJECTIONS } from '../domain/access-code-policy.js';
import { AUDIT_EVENT_NAMES, type AuditEventName } from '../store/audit.js';
import { AUDIT_LIMIT_DEFAULT, AUDIT_LIMIT_MAX, PortalError, SESSION_TTL_MS, type Actor, type PortalService } from '../portal/portal-service.js';
import { refuseCrossOrigin } from './same-origin.js';
import type { MailboxSummary } from '../store/accounts.js';

export const SESSION_COOKIE = 'vmaccess_session';

export function cookieOptions(secure: boolean): { httpOnly: true; sameSite: 'strict'; path: '/'; secure: boolean; maxAge: number } {
  return { httpOnly: true, sameSite: 'strict', path: '/', secure, maxAge: Math.floor(SESSION_TTL_MS / 1000) };
}

const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' }, reason: { type: 'string' }, messages: { type: 'integer' } },
  required: ['error'],
} as const;

const mailboxSchema = {
  type: 'object',
  properties: {
    number: { type: 'string' },
    shared: { type: 'boolean' },
    displayName: { type: ['string', 'null'] },
    owner: {
      type: ['object', 'null'],
      properties: { extension: { type: 'string' }, displayName: { type: 'string' }, role: { type: 'string' }, site: { type: ['string', 'null'] } },
    },
    members: { type: 'array', items: { type: 'string' } },
    hasCode: { type: 'boolean' },
    mustChange: { type: 'boolean' },
    locked: { type: ['boolean', 'null'], description: 'locked after failed logins; null when the counters cannot be read' },
    messages: { type: 'object', properties: { new: { type: 'integer' }, saved: { type: 'integer' } } },
  },
} as const;

const domainParams = { type: 'object', properties: { domain: { type: 'string', maxLength: 253 } }, required: ['domain'] } as const;
const mailboxParams = {
  type: 'object',
  properties: { domain: { type: 'string', maxLength: 253 }, mailbox: { type: 'string', pattern: '^[0-9]{1,15}$' } },
  required: ['domain', 'mailbox'],
} as const;
const security: Array<Record<string, string[]>> = [{ session: [] }, { token: [] }];

function view(m: MailboxSummary, locked: boolean | null): Record<string, unknown> {
  return { number: m.number, shared: m.shared, displayName: m.displayName, owner: m.owner, members: m.members, hasCode: m.hasCode, mustChange: m.mustChange, locked, messages: m.messages };
}

export function sendPortalError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof PortalError) {
    return reply.code(err.status).header('cache-control', 'no-store').send({ error: err.code, message: err.message, ...err.details });
  }
  throw err;
}

/** The caller: an API token, or a session cookie (with the CSRF check for changes). */
export async function authenticate(portal: PortalService, req: FastifyRequest, opts: { csrf: string | undefined }): Promise<Actor> {
  const auth = req.headers.authorization;
  if (auth !== undefined && auth.startsWith('Bearer ')) {
    const actor = await portal.actorOfToken(auth.slice(7));
    if (actor === null) throw new PortalError(401, 'unauthenticated', 'the API token is not valid');
    return actor;
  }
  const sessionId = req.cookies[SESSION_COOKIE];
  const actor = sessionId === undefined ? null : await portal.actorOfSession(sessionId);
  if (actor === null) throw new PortalError(401, 'unauthenticated', 'sign in first');
  if (req.method !== 'GET' && req.method !== 'HEAD' && !portal.csrfMatches(actor, opts.csrf)) {
    throw new PortalError(403, 'csrf', 'the CSRF token is missing or wrong');
  }
  return actor;
}

export function registerApi(app: FastifyInstance, portal: PortalService, opts: { secureCookies: boolean }): void {
  const actorOf = (req: FastifyRequest): Promise<Actor> => {
    const header = req.headers['x-csrf-token'];
    return authenticate(portal, req, { csrf: typeof header === 'string' ? header : undefined });
  };

  // A change sent from another site is refused before anything else (see same-origin.ts).
  refuseCrossOrigin(app, '/api/', (_req, reply) =>
    reply.code(403).header('cache-control', 'no-store').send({ error: 'cross_origin', message: 'this request came from another site' }));

  app.post('/api/session', {
    schema: {
      summary: 'Sign in with a user\'s web password (domain + user) or an operator\'s (operator)',
      body: {
        type: 'object',
        properties: {
          domain: { type: 'string', maxLength: 253 }, user: { type: 'string', maxLength: 64 },
          operator: { type: 'string', maxLength: 64 }, password: { type: 'string', minLength: 1, maxLength: 200 },
        },
        required: ['password'],
        additionalProperties: false,
      },
      response: {
        200: { type: 'object', properties: { actor: { type: 'string' }, csrfToken: { type: 'string' } } },
        400: errorSchema, 401: errorSchema, 403: errorSchema, 503: errorSchema,
      },
    },
  }, async (req, reply) => {
    const body = req.body as { domain?: string; user?: string; operator?: string; password: string };
    try {
      let signedIn;
      if (body.operator !== undefined) signedIn = await portal.signInOperator(body.operator, body.password, req.ip);
      else if (body.domain !== undefined && body.user !== undefined) signedIn = await portal.signInUser(body.domain, body.user, body.password, req.ip);
      else return reply.code(400).send({ error: 'bad_request', message: 'give domain and user, or operator' });
      reply.setCookie(SESSION_COOKIE, signedIn.sessionId, cookieOptions(opts.secureCookies));
      return reply.code(200).header('cache-control', 'no-store').send({ actor: signedIn.actor.name, csrfToken: signedIn.csrfToken });
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });

  app.delete('/api/session', { schema: { summary: 'Sign out', security, response: { 204: { type: 'null' }, 401: errorSchema, 403: errorSchema } } }, async (req, reply) => {
    try {
      await actorOf(req);
      const sessionId = req.cookies[SESSION_COOKIE];
      if (sessionId !== undefined) await portal.signOut(sessionId);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send();
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });

  app.get('/api/me', { schema: { summary: 'Who am I', security, response: { 200: { type: 'object', additionalProperties: true }, 401: errorSchema } } }, async (req, reply) => {
    try {
      const actor = await actorOf(req);
      return reply.send({ actor: actor.name, channel: actor.channel, principal: actor.principal });
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });

  app.get('/api/domains/:domain/mailboxes', {
    schema: { summary: 'Mailboxes of a domain the caller may see (own, shared ones they are a member of, those in their scope)', security, params: domainParams, response: { 200: { type: 'object', properties: { mailboxes: { type: 'array', items: mailboxSchema } } }, 401: errorSchema, 403: errorSchema, 503: errorSchema } },
  }, async (req, reply) => {
    try {
      const { domain } = req.params as { domain: string };
      const mailboxes = await portal.mailboxes(await actorOf(req), domain);
      const locked = await portal.lockedOf(domain, mailboxes);
      return reply.send({ mailboxes: mailboxes.map((m) => view(m, locked.get(m.number) ?? null)) });
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });

  app.put('/api/domains/:domain/mailboxes/:mailbox/access-code', {
    schema: {
      summary: 'Set a mailbox\'s access code (administrators: the new code only; one\'s own: with the current code or a fresh sign-in)',
      description: `A refused code is 400 {"error":"policy","reason":…}; reasons: ${ACCESS_CODE_REJECTIONS.join(', ')}.`,
      security, params: mailboxParams,
      body: {
        type: 'object',
        properties: {
          newCode: { type: 'string', minLength: 1, maxLength: 32 },
          currentCode: { type: 'string', minLength: 1, maxLength: 32 },
          mustChange: { type: 'boolean' },
        },
        required: ['newCode'],
        additionalProperties: false,
      },
      response: { 204: { type: 'null' }, 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 503: errorSchema },
    },
  }, async (req, reply) => {
    try {
      const { domain, mailbox } = req.params as { domain: string; mailbox: string };
      const body = req.body as { newCode: string; currentCode?: string; mustChange?: boolean };
      await portal.setAccessCode(await actorOf(req), domain, mailbox, body);
      return reply.code(204).send();
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });

  for (const [path, summary, fn] of [
    ['require-change', 'The owner must choose a new access code at the next login', (a: Actor, d: string, m: string) => portal.requireChange(a, d, m)],
    ['unlock', 'Clear a failed-login lock', (a: Actor, d: string, m: string) => portal.unlock(a, d, m)],
  ] as const) {
    app.post(`/api/domains/:domain/mailboxes/:mailbox/${path}`, {
      schema: { summary, security, params: mailboxParams, response: { 200: { type: 'object', additionalProperties: true }, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 503: errorSchema } },
    }, async (req, reply) => {
      try {
        const { domain, mailbox } = req.params as { domain: string; mailbox: string };
        const result = await fn(await actorOf(req), domain, mailbox);
        return reply.send(result ?? { ok: true });
      } catch (err) {
        return sendPortalError(reply, err);
      }
    });
  }

  for (const kind of ['reset', 'recycle'] as const) {
    app.post(`/api/domains/:domain/mailboxes/:mailbox/${kind}/preview`, {
      schema: {
        summary: `How many messages a ${kind} would delete (echo it back to ${kind})`, security, params: mailboxParams,
        response: { 200: { type: 'object', properties: { messages: { type: 'integer' } } }, 401: errorSchema, 403: errorSchema, 404: errorSchema, 503: errorSchema },
      },
    }, async (req, reply) => {
      try {
        const { domain, mailbox } = req.params as { domain: string; mailbox: string };
        return reply.send(await portal.preview(await actorOf(req), domain, mailbox, kind));
      } catch (err) {
        return sendPortalError(reply, err);
      }
    });
    app.post(`/api/domains/:domain/mailboxes/:mailbox/${kind}`, {
      schema: {
        summary: kind === 'reset'
          ? 'Reset a user\'s mailbox: access code cleared (first-time setup), greeting and name cleared, messages deleted'
          : 'Recycle a user\'s mailbox for someone new: as reset, and the portal password removed',
        security, params: mailboxParams,
        body: { type: 'object', properties: { confirmMessages: { type: 'integer', minimum: 0 } }, required: ['confirmMessages'], additionalProperties: false },
        response: { 200: { type: 'object', properties: { messagesDeleted: { type: 'integer' } } }, 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema, 503: errorSchema },
      },
    }, async (req, reply) => {
      try {
        const { domain, mailbox } = req.params as { domain: string; mailbox: string };
        const { confirmMessages } = req.body as { confirmMessages: number };
        return reply.send(await portal.resetOrRecycle(await actorOf(req), domain, mailbox, kind, confirmMessages));
      } catch (err) {
        return sendPortalError(reply, err);
      }
    });
  }

  const messageParams = {
    type: 'object',
    properties: { ...mailboxParams.properties, id: { type: 'string', pattern: '^[0-9]{1,18}$' } },
    required: ['domain', 'mailbox', 'id'],
  } as const;
  const messageSchema = {
    type: 'object',
    properties: {
      id: { type: 'string' }, caller: { type: 'string' }, callerName: { type: ['string', 'null'] },
      receivedAt: { type: 'string', format: 'date-time' }, durationMs: { type: 'integer' }, state: { type: 'string', enum: ['new', 'saved'] },
      folder: { type: 'string', description: "where the message is filed ('inbox' for everything a caller leaves); new/saved is its state" },
    },
  } as const;

  app.get('/api/domains/:domain/mailboxes/:mailbox/messages', {
    schema: {
      summary: 'A mailbox\'s messages, newest first (caller, time, duration, new/saved)', security, params: mailboxParams,
      response: { 200: { type: 'array', items: messageSchema }, 401: errorSchema, 403: errorSchema, 404: errorSchema, 503: errorSchema },
    },
  }, async (req, reply) => {
    try {
      const { domain, mailbox } = req.params as { domain: string; mailbox: string };
      return reply.header('cache-control', 'no-store').send(await portal.listMessages(await actorOf(req), domain, mailbox));
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });

  app.get('/api/domains/:domain/mailboxes/:mailbox/messages/:id/audio', {
    schema: {
      summary: 'A message\'s audio: audio/wav, 8 kHz mono 16-bit PCM', security, params: messageParams,
      response: { 401: errorSchema, 403: errorSchema, 404: errorSchema, 503: errorSchema },
    },
  }, async (req, reply) => {
    try {
      const { domain, mailbox, id } = req.params as { domain: string; mailbox: string; id: string };
      const wav = await portal.messageAudio(await actorOf(req), domain, mailbox, id);
      return reply.type('audio/wav').header('cache-control', 'no-store').header('content-disposition', `inline; filename="message-${id}.wav"`).send(wav);
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });

  app.post('/api/domains/:domain/mailboxes/:mailbox/messages/:id/save', {
    schema: { summary: 'Mark a message saved (heard)', security, params: messageParams, response: { 204: { type: 'null' }, 401: errorSchema, 403: errorSchema, 404: errorSchema, 503: errorSchema } },
  }, async (req, reply) => {
    try {
      const { domain, mailbox, id } = req.params as { domain: string; mailbox: string; id: string };
      await portal.saveMessage(await actorOf(req), domain, mailbox, id);
      return reply.code(204).send();
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });

  app.delete('/api/domains/:domain/mailboxes/:mailbox/messages/:id', {
    schema: { summary: 'Delete a message for good (audited as message_deleted)', security, params: messageParams, response: { 204: { type: 'null' }, 401: errorSchema, 403: errorSchema, 404: errorSchema, 503: errorSchema } },
  }, async (req, reply) => {
    try {
      const { domain, mailbox, id } = req.params as { domain: string; mailbox: string; id: string };
      await portal.deleteMessage(await actorOf(req), domain, mailbox, id);
      return reply.code(204).send();
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });

  app.get('/api/domains/:domain/audit', {
    schema: {
      summary: 'Audit events of the mailboxes the caller may see, oldest first',
      description: `since/until: ISO-8601 with a zone (e.g. 2025-01-31T09:30:00Z), inclusive; at most \`limit\` events (default ${AUDIT_LIMIT_DEFAULT}); truncated: true when there are more (ask again with since = the last event's time).`,
      security, params: domainParams,
      querystring: {
        type: 'object',
        properties: {
          mailbox: { type: 'string', pattern: '^[0-9]{1,15}$' },
          event: { type: 'string', enum: [...AUDIT_EVENT_NAMES] },
          since: { type: 'string', maxLength: 40 },
          until: { type: 'string', maxLength: 40 },
          limit: { type: 'integer', minimum: 1, maximum: AUDIT_LIMIT_MAX },
        },
        additionalProperties: false,
      },
      response: {
        200: { type: 'object', properties: { events: { type: 'array', items: { type: 'object', additionalProperties: true } }, truncated: { type: 'boolean' } } },
        400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 503: errorSchema,
      },
    },
  }, async (req, reply) => {
    try {
      const { domain } = req.params as { domain: string };
      const query = req.query as { mailbox?: string; event?: AuditEventName; since?: string; until?: string; limit?: number };
      return reply.header('cache-control', 'no-store').send(await portal.audit(await actorOf(req), domain, query));
    } catch (err) {
      return sendPortalError(reply, err);
    }
  });
}
