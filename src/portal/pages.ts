/**
 * The portal's pages: server-rendered HTML, plain forms (no build step, no JavaScript needed),
 * every control labelled. Every value is escaped; every form that changes something carries the
 * session's CSRF token.
 */
import type { MailboxSummary } from '../store/accounts.js';
import type { ManagerAction, MessageView, OwnCodeNeeds } from './portal-service.js';

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1a1a1a; }
  header { display: flex; justify-content: space-between; align-items: baseline; border-bottom: 1px solid #ccc; margin-bottom: 1rem; }
  label { display: block; margin: .5rem 0 .2rem; font-weight: 600; }
  input[type=password], input[type=text] { padding: .4rem; font-size: 1rem; width: 14rem; }
  button { margin-top: .6rem; padding: .4rem .9rem; font-size: 1rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { border-bottom: 1px solid #ddd; padding: .5rem; text-align: left; vertical-align: top; }
  .notice { padding: .6rem; border-radius: .3rem; margin: 1rem 0; }
  .ok { background: #e6f4ea; } .error { background: #fde7e9; }
  form.inline { display: inline-block; margin-right: .6rem; }
  details { margin: .3rem 0; }
`;

export interface PageUser {
  readonly name: string;
  readonly csrfToken: string;
  /** Where the Manager view is (a user's domain; an operator's list of domains); null: nothing to manage. */
  readonly manageHref: string | null;
}

export interface Notice {
  readonly kind: 'ok' | 'error';
  readonly text: string;
}

/** A path segment, escaped for a URL and then for HTML. */
function seg(value: string): string {
  return escapeHtml(encodeURIComponent(value));
}

/** Where the acts on one mailbox of one domain are posted: the domain is always in the URL. */
export function mailboxPath(domain: string, mailbox: string): string {
  return `/portal/domains/${encodeURIComponent(domain)}/mailboxes/${encodeURIComponent(mailbox)}`;
}

function layout(title: string, body: string, user?: PageUser): string {
  const nav = user === undefined ? '' : `<nav aria-label="Portal">
      <a href="/portal">My voicemail</a>${user.manageHref !== null ? ` · <a href="${escapeHtml(user.manageHref)}">Manager view</a>` : ''}
      · <form class="inline" method="post" action="/portal/logout"><input type="hidden" name="csrf" value="${escapeHtml(user.csrfToken)}"><button type="submit">Sign out</button></form>
    </nav>`;
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — vmaccess</title><style>${STYLE}</style></head>
<body>
<header><h1>${escapeHtml(title)}</h1>${user === undefined ? '' : `<p>Signed in as <strong>${escapeHtml(user.name)}</strong></p>`}</header>
${nav}
<main>
${body}
</main>
</body>
</html>`;
}

function notice(n: Notice | undefined): string {
  if (n === undefined) return '';
  return `<p class="notice ${n.kind}" role="${n.kind === 'error' ? 'alert' : 'status'}">${escapeHtml(n.text)}</p>`;
}

export function loginPage(opts: { error?: string; domain?: string; user?: string } = {}): string {
  return layout('Sign in', `
${opts.error !== undefined ? notice({ kind: 'error', text: opts.error }) : ''}
<form method="post" action="/portal/login">
  <label for="domain">Domain</label>
  <input id="domain" name="domain" type="text" autocomplete="organization" required value="${escapeHtml(opts.domain ?? '')}">
  <label for="user">Extension</label>
  <input id="user" name="user" type="text" autocomplete="username" inputmode="numeric" required value="${escapeHtml(opts.user ?? '')}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <div><button type="submit">Sign in</button></div>
</form>`);
}

function messagesSection(user: PageUser, domain: string, mailbox: string, messages: readonly MessageView[], heading: string): string {
  if (messages.length === 0) return `<h3>${heading}</h3><p>No messages.</p>`;
  const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(user.csrfToken)}">`;
  const base = escapeHtml(mailboxPath(domain, mailbox));
  const rows = messages.map((m) => {
    const id = escapeHtml(m.id);
    const at = `${base}/messages/${seg(m.id)}`;
    const from = m.caller === '' ? 'unknown caller' : m.caller;
    return `<tr>
      <td>${m.state === 'new' ? '<strong>new</strong>' : 'saved'}</td>
      <td><time datetime="${escapeHtml(m.receivedAt)}">${escapeHtml(m.receivedAt.replace('T', ' ').slice(0, 16))} UTC</time></td>
      <td>${escapeHtml(from)}${m.callerName === null ? '' : ` (${escapeHtml(m.callerName)})`}</td>
      <td>${Math.round(m.durationMs / 1000)} s</td>
      <td><audio controls preload="none" src="${at}/audio" aria-label="Message ${id}"></audio></td>
      <td>${m.state === 'new' ? `<form class="inline" method="post" action="${at}/save">${csrf}<button type="submit">Save</button></form> ` : ''}<form class="inline" method="post" action="${at}/delete">${csrf}<button type="submit">Delete</button></form></td>
    </tr>`;
  }).join('\n');
  return `<h3>${heading}</h3>
  <table><thead><tr><th>State</th><th>Received</th><th>From</th><th>Length</th><th>Listen</th><th></th></tr></thead>
  <tbody>${rows}</tbody></table>`;
}

/** What the own-code form asks for: what decide() says the change needs (PortalService.ownCodeNeeds). */
function ownCodeForm(user: PageUser, needs: OwnCodeNeeds): string {
  if (needs === 'fresh_sign_in') {
    return `<h3>Choose an access code</h3>
  <p role="note">You signed in more than 5 minutes ago. To choose your first access code, sign out and sign in again, then choose it within 5 minutes.</p>
  <form method="post" action="/portal/logout"><input type="hidden" name="csrf" value="${escapeHtml(user.csrfToken)}"><button type="submit">Sign in again</button></form>`;
  }
  return `<h3>Change access code</h3>
  <form method="post" action="/portal/my/access-code">
    <input type="hidden" name="csrf" value="${escapeHtml(user.csrfToken)}">
    ${needs === 'nothing' ? '<p>You signed in a moment ago, so the current code is not needed.</p>' : `
    <label for="currentCode">Current access code</label>
    <input id="currentCode" name="currentCode" type="password" inputmode="numeric" autocomplete="off" required>`}
    <label for="newCode">New access code (4 to 10 digits)</label>
    <input id="newCode" name="newCode" type="password" inputmode="numeric" autocomplete="off" required>
    <label for="newCode2">New access code again</label>
    <input id="newCode2" name="newCode2" type="password" inputmode="numeric" autocomplete="off" required>
    <div><button type="submit">Change access code</button></div>
  </form>`;
}

export interface MyVoicemail {
  readonly domain: string;
  readonly own?: { readonly mailbox: MailboxSummary; readonly needs: OwnCodeNeeds; readonly messages: readonly MessageView[] } | undefined;
  /** Shared mailboxes one is a member of: their messages. */
  readonly shared: ReadonlyArray<{ readonly mailbox: MailboxSummary; readonly messages: readonly MessageView[] }>;
}

export function myVoicemailPage(user: PageUser, view: MyVoicemail, n?: Notice): string {
  const shared = view.shared.map(({ mailbox, messages }) => `
<section aria-labelledby="shared-${escapeHtml(mailbox.number)}">
  <h2 id="shared-${escapeHtml(mailbox.number)}">Shared mailbox ${escapeHtml(mailbox.number)}${mailbox.displayName === null ? '' : ` (${escapeHtml(mailbox.displayName)})`}</h2>
  <p>${mailbox.messages.new} new and ${mailbox.messages.saved} saved messages; you are one of its members.</p>
  ${messagesSection(user, view.domain, mailbox.number, messages, `Messages of ${escapeHtml(mailbox.number)}`)}
</section>`).join('\n');
  if (view.own === undefined) {
    return layout('My voicemail', `${notice(n)}<p>You have no mailbox.</p>${shared}`, user);
  }
  const { mailbox, needs, messages } = view.own;
  return layout('My voicemail', `
${notice(n)}
<section aria-labelledby="mine">
  <h2 id="mine">Mailbox ${escapeHtml(mailbox.number)}</h2>
  <p>${mailbox.messages.new} new and ${mailbox.messages.saved} saved messages. ${mailbox.hasCode ? 'An access code is set.' : 'No access code yet: choose one below, or call voicemail from your phone.'}</p>
  ${messagesSection(user, view.domain, mailbox.number, messages, 'Messages')}
  ${ownCodeForm(user, needs)}
</section>${shared}`, user);
}

/** An operator's first step into the Manager view: which domain. */
export function domainsPage(user: PageUser, domains: readonly string[]): string {
  const items = domains.map((d) => `<li><a href="/portal/domains/${seg(d)}/manage">${escapeHtml(d)}</a></li>`).join('\n');
  return layout('Manager view', `<nav aria-label="Domains"><h2>Domains</h2><ul>${items}</ul></nav>`, user);
}

/** A page that only says what went wrong (e.g. a domain one may not see). */
export function noticePage(user: PageUser, title: string, n: Notice): string {
  return layout(title, notice(n), user);
}

export interface ManagedRow {
  readonly mailbox: MailboxSummary;
  /** The acts this manager may take on it (decide()); only those are offered. */
  readonly may: ReadonlySet<ManagerAction>;
}

export function managePage(user: PageUser, domain: string, rows: readonly ManagedRow[], locked: ReadonlyMap<string, boolean | null>, n?: Notice): string {
  const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(user.csrfToken)}">`;
  const body = rows.map(({ mailbox: m, may }) => {
    const id = escapeHtml(m.number);
    const who = m.owner !== null ? escapeHtml(`${m.owner.displayName} (${m.owner.role.replace(/_/g, ' ')})`) : `Shared: ${escapeHtml(m.displayName ?? '')}${m.members.length > 0 ? ` — members ${escapeHtml(m.members.join(', '))}` : ''}`;
    const action = (path: string): string => escapeHtml(`${mailboxPath(domain, m.number)}/${path}`);
    const button = (act: ManagerAction, path: string, label: string, aria: string): string => (may.has(act)
      ? `<form class="inline" method="post" action="${action(path)}">${csrf}<button type="submit" aria-label="${aria}">${label}</button></form>` : '');
    return `<tr>
  <th scope="row">${id}</th>
  <td>${who}</td>
  <td>${m.hasCode ? (m.mustChange ? 'set, must change' : 'set') : 'none'}${locked.get(m.number) === true ? '<br><strong>locked</strong>' : ''}</td>
  <td>${m.messages.new} new, ${m.messages.saved} saved</td>
  <td>
    ${may.has('set_access_code') ? `<details><summary>Set access code</summary>
      <form method="post" action="${action('access-code')}">${csrf}
        <label for="code-${id}">New access code for ${id}</label>
        <input id="code-${id}" name="newCode" type="password" inputmode="numeric" autocomplete="off" required>
        <div><label><input type="checkbox" name="mustChange" value="1"> Must change at next login</label></div>
        <button type="submit">Set code for ${id}</button>
      </form>
    </details>` : ''}
    ${button('unlock', 'unlock', 'Unlock', `Unlock ${id}`)}
    ${button('require_change', 'require-change', 'Require change', `Require ${id} to change the access code`)}
    ${m.owner !== null ? `${button('reset', 'reset', 'Reset…', `Reset ${id}`)}
    ${button('recycle', 'recycle', 'Recycle…', `Recycle ${id}`)}` : ''}
  </td>
</tr>`;
  }).join('\n');
  return layout(`Manager view — ${domain}`, `
${notice(n)}
<table>
  <caption>Mailboxes you manage in ${escapeHtml(domain)}</caption>
  <thead><tr><th scope="col">Mailbox</th><th scope="col">Owner</th><th scope="col">Access code</th><th scope="col">Messages</th><th scope="col">Actions</th></tr></thead>
  <tbody>
${body}
  </tbody>
</table>`, user);
}

/** Step 2 of reset/recycle: the count of messages that will be lost, echoed back to confirm. */
export function confirmPage(user: PageUser, domain: string, mailbox: string, kind: 'reset' | 'recycle', messages: number): string {
  const what = kind === 'reset'
    ? 'clears the access code (first-time setup on the phone), the greeting and the name, and deletes the messages'
    : 'hands the extension to someone new: clears the access code, the greeting and the name, removes the portal password, and deletes the messages';
  return layout(`${kind === 'reset' ? 'Reset' : 'Recycle'} mailbox ${mailbox} of ${domain}`, `
<p class="notice error" role="alert">This ${what}. <strong>${messages} ${messages === 1 ? 'message' : 'messages'}</strong> will be deleted for good.</p>
<form method="post" action="${escapeHtml(`${mailboxPath(domain, mailbox)}/${kind}`)}">
  <input type="hidden" name="csrf" value="${escapeHtml(user.csrfToken)}">
  <label for="confirm">Type the number of messages that will be deleted (${messages}) to confirm</label>
  <input id="confirm" name="confirmMessages" type="text" inputmode="numeric" autocomplete="off" required>
  <div><button type="submit">${kind === 'reset' ? 'Reset' : 'Recycle'} ${escapeHtml(mailbox)}</button> <a href="/portal/domains/${seg(domain)}/manage">Cancel</a></div>
</form>`, user);
}
