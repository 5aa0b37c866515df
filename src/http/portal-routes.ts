/**
 * The portal pages (/portal): sign in, "My voicemail" (one's own mailbox and the shared ones one
 * is a member of: messages; changing one's own access code), and for managers the "Manager view"
 * of a domain (set code, unlock, require change, reset and recycle with the message-count
 * confirmation). Plain HTML forms posted with the session cookie (HttpOnly, SameSite=Strict) and
 * the CSRF token as a hidden field; every action goes through the same portal service (and
 * permission table) as the API.
 *
 * The domain acted on is always in the URL (/portal/domains/:domain/...), never implied: an
 * operator manages many domains, and a form must act on the domain of the page it came from.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PortalError, type Actor, type MessageView, type PortalService } from '../portal/portal-service.js';
import {
  confirmPage, domainsPage, loginPage, managePage, myVoicemailPage, noticePage, type MyVoicemail, type Notice, type PageUser,
} from '../portal/pages.js';
import type { MailboxSummary } from '../store/accounts.js';
import { SESSION_COOKIE, authenticate, cookieOptions } from './api-routes.js';
import { refuseCrossOrigin } from './same-origin.js';

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
    if (err.code === 'needs_fresh_sign_in') return { kind: 'error', text: 'Sign in again to choose your first access code.' };
    if (err.code === 'confirmation_mismatch') return { kind: 'error', text: `Not done: ${String(err.details.messages)} messages would be deleted; confirm that number.` };
    if (err.status === 403) return { kind: 'error', text: 'You may not do that.' };
    if (err.status === 404) return { kind: 'error', text: err.code === 'no_such_message' ? 'No such message.' : 'No such mailbox.' };
    if (err.status === 503) return { kind: 'error', text: 'Sorry, that cannot be done right now. Please try again later.' };
    return { kind: 'error', text: err.message };
  }
  throw err;
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; media-src 'self'; form-action 'self'; frame-ancestors 'none'").type('text/html; charset=utf-8').send(body);
}

/** The page's user when a request is refused before (or instead of) knowing who signed in. */
const NOBODY: PageUser = { name: '', csrfToken: '', manageHref: null };

const statusOf = (err: unknown): number => (err instanceof PortalError ? err.status : 500);

const DOMAIN = { type: 'string', pattern: '^[A-Za-z0-9.-]{1,253}$' } as const;
const MAILBOX = { type: 'string', pattern: '^[0-9]{1,15}$' } as const;
const MESSAGE_ID = { type: 'string', pattern: '^[0-9]{1,18}$' } as const;
const domainParams = { type: 'object', properties: { domain: DOMAIN }, required: ['domain'] } as const;
const mailboxParams = { type: 'object', properties: { domain: DOMAIN, mailbox: MAILBOX }, required: ['domain', 'mailbox'] } as const;
const messageParams = { type: 'object', properties: { domain: DOMAIN, mailbox: MAILBOX, id: MESSAGE_ID }, required: ['domain', 'mailbox', 'id'] } as const;
/** Bounded before anything reaches the rate-limit keys or argon2. */
const loginBody = {
  type: 'object',
  properties: { domain: { type: 'string', maxLength: 253 }, user: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: 200 } },
} as const;

export function registerPortal(app: FastifyInstance, portal: PortalService, opts: { secureCookies: boolean }): void {
  const actorOf = (req: FastifyRequest): Promise<Actor> => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    return authenticate(portal, req, { csrf: typeof body.csrf === 'string' ? body.csrf : undefined });
  };
  const form = (req: FastifyRequest): Record<string, string> => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(body).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  };

  // A form posted from another site is refused before anything else (see same-origin.ts).
  refuseCrossOrigin(app, '/portal/', (req, reply) => {
    const text = 'This form was sent from another site; nothing was done.';
    return html(reply, 403, req.url === '/portal/login' ? loginPage({ error: text }) : noticePage(NOBODY, 'Refused', { kind: 'error', text }));
  });

  /**
   * The page's view of the signed-in person: name, CSRF token, where their Manager view is. For a
   * user that depends on the mailboxes of their domain they may see: a page that has already
   * loaded them (portal.mailboxes(actor, their domain)) passes them, so they are read once.
   */
  const pageUser = async (actor: Actor, visible?: readonly MailboxSummary[]): Promise<PageUser> => {
    let manageHref: string | null = '/portal/manage';
    if (actor.principal.kind === 'user') {
      const { domain } = actor.principal;
      const mailboxes = visible ?? await portal.mailboxes(actor, domain);
      manageHref = portal.managed(actor, domain, mailboxes).length > 0 ? `/portal/domains/${encodeURIComponent(domain)}/manage` : null;
    }
    return { name: actor.name, csrfToken: actor.csrfToken ?? '', manageHref };
  };

  /** Runs a page handler for a signed-in person; not signed in → the sign-in page. */
  const signedIn = async (req: FastifyRequest, reply: FastifyReply, fn: (actor: Actor) => Promise<FastifyReply>): Promise<FastifyReply> => {
    let actor: Actor;
    try {
      actor = await actorOf(req);
    } catch (err) {
      if (err instanceof PortalError && err.status === 401) return reply.redirect('/portal/login', 303);
      if (err instanceof PortalError) return html(reply, err.status, noticePage(NOBODY, 'Refused', explain(err)));
      throw err;
    }
    return fn(actor);
  };

  app.get('/portal/login', { schema: { hide: true } }, async (_req, reply) => html(reply, 200, loginPage()));

  app.post('/portal/login', { schema: { hide: true, body: loginBody }, attachValidation: true }, async (req, reply) => {
    const f = form(req);
    if (req.validationError !== undefined) {
      return html(reply, 400, loginPage({ error: 'Sign-in failed: the domain, extension or password is too long.' }));
    }
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

  // --- My voicemail --------------------------------------------------------------------------

  const myPage = async (actor: Actor, reply: FastifyReply, status: number, n?: Notice): Promise<FastifyReply> => {
    if (actor.principal.kind !== 'user') return html(reply, status, myVoicemailPage(await pageUser(actor), { domain: '', shared: [] }, n));
    const { domain, extension } = actor.principal;
    const visible = await portal.mailboxes(actor, domain);
    const user = await pageUser(actor, visible);
    const messagesOf = (mailbox: MailboxSummary): Promise<MessageView[]> => portal.listMessagesOf(actor, domain, mailbox).catch(() => []);
    const mine = visible.find((m) => m.owner?.extension === extension);
    const view: MyVoicemail = {
      domain,
      own: mine === undefined ? undefined : { mailbox: mine, needs: portal.ownCodeNeeds(actor, mine), messages: await messagesOf(mine) },
      shared: await Promise.all(visible.filter((m) => m.owner === null && m.members.includes(extension))
        .map(async (mailbox) => ({ mailbox, messages: await messagesOf(mailbox) }))),
    };
    return html(reply, status, myVoicemailPage(user, view, n));
  };

  app.get('/portal', { schema: { hide: true } }, async (req, reply) => signedIn(req, reply, (actor) => myPage(actor, reply, 200)));

  app.post('/portal/my/access-code', { schema: { hide: true } }, async (req, reply) => signedIn(req, reply, async (actor) => {
    const f = form(req);
    if (actor.principal.kind !== 'user') return myPage(actor, reply, 403, { kind: 'error', text: 'Operators have no mailbox.' });
    if ((f.newCode ?? '') !== (f.newCode2 ?? '')) return myPage(actor, reply, 400, { kind: 'error', text: 'The two new access codes did not match.' });
    try {
      await portal.setAccessCode(actor, actor.principal.domain, actor.principal.extension, {
        newCode: f.newCode ?? '', currentCode: f.currentCode === undefined || f.currentCode === '' ? undefined : f.currentCode,
      });
      return myPage(actor, reply, 200, { kind: 'ok', text: 'Your access code has been changed.' });
    } catch (err) {
      return myPage(actor, reply, statusOf(err), explain(err));
    }
  }));

  // Messages of a mailbox one may handle (one's own, a shared one one is a member of, or one
  // managed): listen (the audio element fetches it with the session cookie), save, delete.
  app.get('/portal/domains/:domain/mailboxes/:mailbox/messages/:id/audio', { schema: { hide: true, params: messageParams } }, async (req, reply) => {
    const { domain, mailbox, id } = req.params as { domain: string; mailbox: string; id: string };
    try {
      const wav = await portal.messageAudio(await actorOf(req), domain, mailbox, id);
      return reply.type('audio/wav').header('cache-control', 'no-store').send(wav);
    } catch (err) {
      return reply.code(statusOf(err)).header('cache-control', 'no-store').send();
    }
  });
  for (const action of ['save', 'delete'] as const) {
    app.post(`/portal/domains/:domain/mailboxes/:mailbox/messages/:id/${action}`, { schema: { hide: true, params: messageParams } }, async (req, reply) => signedIn(req, reply, async (actor) => {
      const { domain, mailbox, id } = req.params as { domain: string; mailbox: string; id: string };
      try {
        if (action === 'save') await portal.saveMessage(actor, domain, mailbox, id);
        else await portal.deleteMessage(actor, domain, mailbox, id);
        return myPage(actor, reply, 200, { kind: 'ok', text: action === 'save' ? 'Message saved.' : 'Message deleted.' });
      } catch (err) {
        return myPage(actor, reply, statusOf(err), explain(err));
      }
    }));
  }

  // --- Manager view ----------------------------------------------------------------------------

  const manage = async (actor: Actor, domain: string, reply: FastifyReply, status: number, n?: Notice): Promise<FastifyReply> => {
    let visible: MailboxSummary[];
    try {
      visible = await portal.mailboxes(actor, domain);
    } catch (err) {
      return html(reply, statusOf(err), noticePage(await pageUser(actor), 'Manager view', explain(err)));
    }
    // A user is admitted only to their own domain, so `visible` is the list their page needs too.
    const user = await pageUser(actor, actor.principal.kind === 'user' ? visible : undefined);
    const rows = portal.managed(actor, domain, visible);
    const locked = await portal.lockedOf(domain, rows.map((r) => r.mailbox));
    return html(reply, status, managePage(user, domain.toLowerCase(), rows, locked, n));
  };

  // A user manages their own domain; an operator first picks one.
  app.get('/portal/manage', { schema: { hide: true } }, async (req, reply) => signedIn(req, reply, async (actor) => {
    if (actor.principal.kind === 'user') return reply.redirect(`/portal/domains/${encodeURIComponent(actor.principal.domain)}/manage`, 303);
    return html(reply, 200, domainsPage(await pageUser(actor), await portal.domains(actor)));
  }));

  app.get('/portal/domains/:domain/manage', { schema: { hide: true, params: domainParams } }, async (req, reply) => signedIn(req, reply, (actor) => {
    const { domain } = req.params as { domain: string };
    return manage(actor, domain, reply, 200);
  }));

  type Outcome = Notice | { confirm: 'reset' | 'recycle'; messages: number };
  const managed = (path: string, act: (actor: Actor, domain: string, mailbox: string, f: Record<string, string>) => Promise<Outcome>): void => {
    app.post(`/portal/domains/:domain/mailboxes/:mailbox/${path}`, { schema: { hide: true, params: mailboxParams } }, async (req, reply) => signedIn(req, reply, async (actor) => {
      const { domain, mailbox } = req.params as { domain: string; mailbox: string };
      try {
        const result = await act(actor, domain, mailbox, form(req));
        if ('confirm' in result) return html(reply, 200, confirmPage(await pageUser(actor), domain.toLowerCase(), mailbox, result.confirm, result.messages));
        return manage(actor, domain, reply, 200, result);
      } catch (err) {
        return manage(actor, domain, reply, statusOf(err), explain(err));
      }
    }));
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
