/**
 * The portal pages (/portal): sign in, "My voicemail" (change one's own access code), and for
 * managers the "Manager view" (set code, unlock, require change, reset and recycle with the
 * message-count confirmation). Plain HTML forms posted with the session cookie
 * (HttpOnly, SameSite=Strict) and the CSRF token as a hidden field; every action goes through
 * the same portal service (and permission table) as the API.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PortalError, type Actor, type PortalService } from '../portal/portal-service.js';
import { confirmPage, loginPage, managePage, myVoicemailPage, type Notice, type PageUser } from '../portal/pages.js';
import { SESSION_COOKIE, authenticate, cookieOptions } from './api-routes.js';

const REASONS: Record<string, string> = {
  notDigits: 'Access codes may contain only the digits 0 to 9.',
  tooShort: 'That access code is too short.',
  tooLong: 'That access code is too long.',
  allSameDigit: 'Access codes must not repeat one digit only.',
  sequential: 'Access codes must not be a run of consecutive digits.',
  mailboxNumber: 'Access codes must not be the same as the mailbox number.',
  sameAsCurrent: 'The new access code must differ from the current one.',
  recentlyUsed: 'That access code was used recently; choose a different one.',
};

function explain(err: unknown): Notice {
  if (err instanceof PortalError) {
    if (err.code === 'policy') return { kind: 'error', text: REASONS[String(err.details.reason)] ?? 'That access code is refused.' };
    if (err.code === 'current_code_incorrect') return { kind: 'error', text: 'The current access code is not correct.' };
    if (err.code === 'confirmation_mismatch') return { kind: 'error', text: `Not done: ${String(err.details.messages)} messages would be deleted; confirm that number.` };
    if (err.status === 403) return { kind: 'error', text: 'You may not do that.' };
    if (err.status === 404) return { kind: 'error', text: 'No such mailbox.' };
    if (err.status === 503) return { kind: 'error', text: 'Sorry, that cannot be done right now. Please try again later.' };
    return { kind: 'error', text: err.message };
  }
  throw err;
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'").type('text/html; charset=utf-8').send(body);
}

export function registerPortal(app: FastifyInstance, portal: PortalService, opts: { secureCookies: boolean }): void {
  const actorOf = (req: FastifyRequest): Promise<Actor> => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    return authenticate(portal, req, { csrf: typeof body.csrf === 'string' ? body.csrf : undefined });
  };
  /** The signed-in page user, or a redirect to the sign-in page. */
  const page = async (req: FastifyRequest, reply: FastifyReply): Promise<{ actor: Actor; user: PageUser; domain: string } | null> => {
    let actor: Actor;
    try {
      actor = await actorOf(req);
    } catch (err) {
      if (err instanceof PortalError && err.status === 401) {
        await reply.redirect('/portal/login', 303);
        return null;
      }
      throw err;
    }
    const domain = actor.principal.kind === 'user' ? actor.principal.domain : String((req.query as Record<string, unknown>).domain ?? 'demo.local');
    const managed = (await portal.mailboxes(actor, domain)).filter((m) => actor.principal.kind === 'operator' || m.owner?.extension !== (actor.principal.kind === 'user' ? actor.principal.extension : ''));
    return { actor, domain, user: { name: actor.name, csrfToken: actor.csrfToken ?? '', canManage: managed.length > 0 } };
  };
  const form = (req: FastifyRequest): Record<string, string> => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(body).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  };

  app.get('/portal/login', { schema: { hide: true } }, async (_req, reply) => html(reply, 200, loginPage()));

  app.post('/portal/login', { schema: { hide: true } }, async (req, reply) => {
    const f = form(req);
    try {
      const signedIn = await portal.signInUser(f.domain ?? '', f.user ?? '', f.password ?? '', req.ip);
      reply.setCookie(SESSION_COOKIE, signedIn.sessionId, cookieOptions(opts.secureCookies));
      return reply.redirect('/portal', 303);
    } catch (err) {
      if (err instanceof PortalError && (err.status === 401 || err.status === 503)) {
        const text = err.status === 401 ? 'Sign-in failed. Check the domain, extension and password.' : 'Sign-in is not possible right now. Please try again later.';
        return html(reply, err.status, loginPage({ error: text, domain: f.domain, user: f.user }));
      }
      throw err;
    }
  });

  app.post('/portal/logout', { schema: { hide: true } }, async (req, reply) => {
    try {
      await actorOf(req);
      const sessionId = req.cookies[SESSION_COOKIE];
      if (sessionId !== undefined) await portal.signOut(sessionId);
    } catch (err) {
      if (!(err instanceof PortalError)) throw err;
    }
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/portal/login', 303);
  });

  const myPage = async (req: FastifyRequest, reply: FastifyReply, status: number, n?: Notice): Promise<FastifyReply> => {
    const p = await page(req, reply);
    if (p === null) return reply;
    const own = p.actor.principal.kind === 'user'
      ? (await portal.mailboxes(p.actor, p.domain)).find((m) => p.actor.principal.kind === 'user' && m.owner?.extension === p.actor.principal.extension)
      : undefined;
    const fresh = p.actor.principal.kind === 'user' && p.actor.principal.fresh;
    const messages = own === undefined ? [] : await portal.listMessages(p.actor, p.domain, own.number).catch(() => []);
    return html(reply, status, myVoicemailPage(p.user, own, fresh, n, messages));
  };

  // One's own messages: listen (the audio element fetches it with the session cookie), save, delete.
  const messageParams = { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } }, required: ['id'] } as const;
  app.get('/portal/my/messages/:id/audio', { schema: { hide: true, params: messageParams } }, async (req, reply) => {
    try {
      const actor = await actorOf(req);
      if (actor.principal.kind !== 'user') return reply.code(404).send();
      const { id } = req.params as { id: string };
      const wav = await portal.messageAudio(actor, actor.principal.domain, actor.principal.extension, id);
      return reply.type('audio/wav').header('cache-control', 'no-store').send(wav);
    } catch (err) {
      return reply.code(err instanceof PortalError ? err.status : 500).send();
    }
  });
  for (const action of ['save', 'delete'] as const) {
    app.post(`/portal/my/messages/:id/${action}`, { schema: { hide: true, params: messageParams } }, async (req, reply) => {
      try {
        const actor = await actorOf(req);
        if (actor.principal.kind !== 'user') return myPage(req, reply, 403, { kind: 'error', text: 'Operators have no mailbox.' });
        const { id } = req.params as { id: string };
        const { domain, extension } = actor.principal;
        if (action === 'save') await portal.saveMessage(actor, domain, extension, id);
        else await portal.deleteMessage(actor, domain, extension, id);
        return myPage(req, reply, 200, { kind: 'ok', text: action === 'save' ? 'Message saved.' : 'Message deleted.' });
      } catch (err) {
        if (err instanceof PortalError && err.status === 401) return reply.redirect('/portal/login', 303);
        return myPage(req, reply, err instanceof PortalError ? err.status : 500, explain(err));
      }
    });
  }

  app.get('/portal', { schema: { hide: true } }, async (req, reply) => myPage(req, reply, 200));

  app.post('/portal/my/access-code', { schema: { hide: true } }, async (req, reply) => {
    const f = form(req);
    let actor: Actor;
    try {
      actor = await actorOf(req);
    } catch (err) {
      if (err instanceof PortalError && err.status === 401) return reply.redirect('/portal/login', 303);
      return myPage(req, reply, err instanceof PortalError ? err.status : 500, explain(err));
    }
    if (actor.principal.kind !== 'user') return myPage(req, reply, 403, { kind: 'error', text: 'Operators have no mailbox.' });
    if ((f.newCode ?? '') !== (f.newCode2 ?? '')) return myPage(req, reply, 400, { kind: 'error', text: 'The two new access codes did not match.' });
    try {
      await portal.setAccessCode(actor, actor.principal.domain, actor.principal.extension, {
        newCode: f.newCode ?? '', currentCode: f.currentCode === undefined || f.currentCode === '' ? undefined : f.currentCode,
      });
      return myPage(req, reply, 200, { kind: 'ok', text: 'Your access code has been changed.' });
    } catch (err) {
      return myPage(req, reply, err instanceof PortalError ? err.status : 500, explain(err));
    }
  });

  const manage = async (req: FastifyRequest, reply: FastifyReply, status: number, n?: Notice): Promise<FastifyReply> => {
    const p = await page(req, reply);
    if (p === null) return reply;
    const mine = p.actor.principal.kind === 'user' ? p.actor.principal.extension : null;
    const mailboxes = (await portal.mailboxes(p.actor, p.domain)).filter((m) => m.owner?.extension !== mine || m.owner === null);
    return html(reply, status, managePage(p.user, p.domain, mailboxes, await portal.lockedOf(p.domain, mailboxes), n));
  };

  app.get('/portal/manage', { schema: { hide: true } }, async (req, reply) => manage(req, reply, 200));

  const managed = (path: string, act: (actor: Actor, domain: string, mailbox: string, f: Record<string, string>) => Promise<Notice | { confirm: 'reset' | 'recycle'; messages: number }>): void => {
    app.post(`/portal/manage/:mailbox/${path}`, { schema: { hide: true, params: { type: 'object', properties: { mailbox: { type: 'string', pattern: '^[0-9]{1,15}$' } }, required: ['mailbox'] } } }, async (req, reply) => {
      const { mailbox } = req.params as { mailbox: string };
      let actor: Actor;
      try {
        actor = await actorOf(req);
      } catch (err) {
        if (err instanceof PortalError && err.status === 401) return reply.redirect('/portal/login', 303);
        return manage(req, reply, err instanceof PortalError ? err.status : 500, explain(err));
      }
      const domain = actor.principal.kind === 'user' ? actor.principal.domain : String((req.query as Record<string, unknown>).domain ?? 'demo.local');
      try {
        const result = await act(actor, domain, mailbox, form(req));
        if ('confirm' in result) {
          return html(reply, 200, confirmPage({ name: actor.name, csrfToken: actor.csrfToken ?? '', canManage: true }, mailbox, result.confirm, result.messages));
        }
        return manage(req, reply, 200, result);
      } catch (err) {
        return manage(req, reply, err instanceof PortalError ? err.status : 500, explain(err));
      }
    });
  };

  managed('access-code', async (actor, domain, mailbox, f) => {
    await portal.setAccessCode(actor, domain, mailbox, { newCode: f.newCode ?? '', mustChange: f.mustChange === '1' });
    return { kind: 'ok', text: `The access code of mailbox ${mailbox} has been set.` };
  });
  managed('unlock', async (actor, domain, mailbox) => {
    const { wasLocked } = await portal.unlock(actor, domain, mailbox);
    return { kind: 'ok', text: wasLocked ? `Mailbox ${mailbox} is unlocked.` : `Mailbox ${mailbox} was not locked; its failed logins are cleared.` };
  });
  managed('require-change', async (actor, domain, mailbox) => {
    await portal.requireChange(actor, domain, mailbox);
    return { kind: 'ok', text: `Mailbox ${mailbox} must choose a new access code at the next login.` };
  });
  for (const kind of ['reset', 'recycle'] as const) {
    managed(kind, async (actor, domain, mailbox, f) => {
      if (f.confirmMessages === undefined) {
        const { messages } = await portal.preview(actor, domain, mailbox, kind);
        return { confirm: kind, messages };
      }
      if (!/^\d{1,9}$/.test(f.confirmMessages)) return { kind: 'error', text: 'Type the number of messages to confirm.' };
      const { messagesDeleted } = await portal.resetOrRecycle(actor, domain, mailbox, kind, Number(f.confirmMessages));
      return { kind: 'ok', text: `Mailbox ${mailbox} has been ${kind === 'reset' ? 'reset' : 'recycled'}; ${messagesDeleted} messages deleted.` };
    });
  }
}
