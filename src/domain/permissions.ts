/**
 * Who may do what with a mailbox, decided in one place (pure). People act with their own
 * credentials and their role decides — nobody ever needs another person's password or old access
 * code to act on their mailbox.
 *
 * The rules are the two tables in README.md "Who may do what" (whose mailboxes each role manages;
 * what one may do with one's own mailbox, a shared mailbox one is a member of, and a mailbox one
 * manages). test/unit/domain/permissions.test.ts parses those tables out of README.md and checks
 * decide() against them for every principal × action × target, so the two cannot drift apart.
 *
 * Why these rules:
 * - Whoever may set a mailbox's code may also handle its messages: with the code they could
 *   dial in and do the same, so refusing it on the web would only pretend to protect anything.
 * - Members of a shared mailbox (a team's support line) read, save and delete its messages —
 *   that is what sharing it is for — but do not set its code, reset or recycle it: that is for
 *   those who manage it, as it changes what every other member depends on.
 * - Changing one's own code needs a re-authentication: the current code, or a sign-in within
 *   the last 5 minutes. With no code yet there is no current code to give, so only a fresh
 *   sign-in does (a stale, unattended session must not plant a first code that opens the
 *   mailbox on the phone).
 * - A number with no mailbox is nobody's, like a shared mailbox without members: only those who
 *   manage the whole domain may learn that it has none, or read the audit rows left under it
 *   (failed logins with a mistyped number). Everyone else gets the same answer as for a mailbox
 *   outside their scope, so the API does not reveal which numbers exist.
 */

export const ROLES = ['basic', 'call_center_agent', 'call_center_supervisor', 'advanced_user', 'office_manager', 'site_manager'] as const;
export type Role = (typeof ROLES)[number];

export type Principal =
  | { readonly kind: 'operator'; readonly name: string }
  | {
    readonly kind: 'user';
    readonly domain: string;
    readonly extension: string;
    readonly role: Role;
    readonly site: string | null;
    /** Signed in (password given) within the last FRESH_SIGN_IN_MS. */
    readonly fresh: boolean;
  };

/** The mailbox acted on: its domain, its owner's role and site (null for a shared one), its members. */
export interface MailboxTarget {
  readonly domain: string;
  readonly number: string;
  readonly owner: { readonly extension: string; readonly role: Role; readonly site: string | null } | null;
  /** A shared mailbox's members (extensions of the same domain); empty for a personal one. */
  readonly members: readonly string[];
  /** Whether an access code is set (without one there is no current code to give). */
  readonly hasCode: boolean;
}

export const ACTIONS = [
  'view', 'set_access_code', 'change_own_access_code', 'require_change', 'unlock', 'reset', 'recycle', 'read_audit',
  'list_messages', 'save_message', 'delete_message',
] as const;
export type Action = (typeof ACTIONS)[number];

export type DenyReason = 'other_domain' | 'not_in_scope' | 'role' | 'needs_current_code' | 'needs_fresh_sign_in' | 'own_mailbox';
export type Decision = { readonly allowed: true } | { readonly allowed: false; readonly reason: DenyReason };

/** How long after signing in a user may change their own code without giving the current one. */
export const FRESH_SIGN_IN_MS = 5 * 60_000;

const ALLOW: Decision = { allowed: true };
const deny = (reason: DenyReason): Decision => ({ allowed: false, reason });

/** What one may do with one's own mailbox besides changing its code (which has its own rule). */
const OWN_ACTIONS: readonly Action[] = ['view', 'read_audit', 'list_messages', 'save_message', 'delete_message'];
/** What a member may do with a shared mailbox. */
const MEMBER_ACTIONS: readonly Action[] = ['view', 'list_messages', 'save_message', 'delete_message'];
/** Acts that destroy things (messages, greeting, the owner's portal account). */
const DESTRUCTIVE: readonly Action[] = ['reset', 'recycle'];
const MAY_DESTROY: readonly Role[] = ['site_manager', 'office_manager'];

/** Whether `role` manages the mailbox of `owner` (a user of the same domain, not oneself). */
function manages(role: Role, site: string | null, owner: MailboxTarget['owner']): boolean {
  if (role === 'office_manager') return true;
  if (owner === null) return false; // shared mailboxes: office managers (and operators) only
  const sameSite = site !== null && owner.site === site;
  switch (role) {
    case 'site_manager':
      return sameSite && owner.role !== 'office_manager';
    case 'advanced_user':
      return sameSite && (owner.role === 'basic' || owner.role === 'call_center_agent');
    case 'call_center_supervisor':
      return sameSite && owner.role === 'call_center_agent';
    case 'basic':
    case 'call_center_agent':
      return false;
  }
}

/**
 * May `principal` do `action` on `target`? For `change_own_access_code`, `withCurrentCode` says
 * whether the request carries the current code (checked separately against the store).
 */
export function decide(principal: Principal, action: Action, target: MailboxTarget, opts: { withCurrentCode?: boolean } = {}): Decision {
  if (principal.kind === 'operator') {
    return action === 'change_own_access_code' ? deny('own_mailbox') : ALLOW;
  }
  if (principal.domain !== target.domain) return deny('other_domain');
  const own = target.owner !== null && target.owner.extension === principal.extension;

  if (action === 'change_own_access_code') {
    if (!own) return deny('own_mailbox');
    if (principal.fresh || (opts.withCurrentCode === true && target.hasCode)) return ALLOW;
    return deny(target.hasCode ? 'needs_current_code' : 'needs_fresh_sign_in');
  }
  if (own) {
    // One's own mailbox goes through change_own_access_code; managing oneself is not a thing.
    return OWN_ACTIONS.includes(action) ? ALLOW : deny('own_mailbox');
  }
  if (manages(principal.role, principal.site, target.owner)) {
    if (DESTRUCTIVE.includes(action) && !MAY_DESTROY.includes(principal.role)) return deny('role');
    return ALLOW;
  }
  const member = target.owner === null && target.members.includes(principal.extension);
  if (member && MEMBER_ACTIONS.includes(action)) return ALLOW;
  return deny('not_in_scope');
}

/**
 * A number of `domain` that has no mailbox, as a target: nobody's, no members — so only those
 * who manage the whole domain (office managers, operators) may view it or read its audit rows.
 */
export function noMailboxTarget(domain: string, number: string): MailboxTarget {
  return { domain, number, owner: null, members: [], hasCode: false };
}

/** Whether the principal may see a domain at all (list the mailboxes in their scope, read its audit). */
export function inDomain(principal: Principal, domain: string): boolean {
  return principal.kind === 'operator' || principal.domain === domain.toLowerCase();
}
