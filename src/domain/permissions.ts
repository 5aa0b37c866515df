/**
 * Who may do what with a mailbox, decided in one place (pure, exhaustively unit-tested). People
 * act with their own credentials and their role decides — nobody ever needs another person's
 * password or old access code to act on their mailbox.
 *
 * | role                    | scope of other people's mailboxes                                           |
 * | ----------------------- | --------------------------------------------------------------------------- |
 * | basic                   | none                                                                         |
 * | call_center_agent       | none                                                                         |
 * | call_center_supervisor  | call_center_agent users of the same site                                     |
 * | advanced_user           | basic and call_center_agent users of the same site                           |
 * | site_manager            | every user of the same site except office managers; may reset and recycle   |
 * | office_manager          | every mailbox of the domain, shared ones included; may reset and recycle     |
 * | operator (superuser)    | every mailbox of every domain                                                |
 *
 * Within scope: set a new access code (without the old one), require a change at next login,
 * unlock, list messages, read the audit trail. Reset and recycle (which delete things) only for
 * site and office managers and operators. One's own mailbox: change the code with the current
 * code or a fresh sign-in (the last 5 minutes), read its audit and messages. Nobody but an
 * operator crosses domains; shared mailboxes (no owner) are for office managers and operators.
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

/** The mailbox acted on: its domain, and its owner's role and site (null for a shared one). */
export interface MailboxTarget {
  readonly domain: string;
  readonly number: string;
  readonly owner: { readonly extension: string; readonly role: Role; readonly site: string | null } | null;
}

export const ACTIONS = [
  'view', 'set_access_code', 'change_own_access_code', 'require_change', 'unlock', 'reset', 'recycle', 'read_audit', 'list_messages',
] as const;
export type Action = (typeof ACTIONS)[number];

export type Decision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: 'other_domain' | 'not_in_scope' | 'role' | 'needs_current_code' | 'own_mailbox' };

/** How long after signing in a user may change their own code without giving the current one. */
export const FRESH_SIGN_IN_MS = 5 * 60_000;

const ALLOW: Decision = { allowed: true };
const deny = (reason: Exclude<Decision, { allowed: true }>['reason']): Decision => ({ allowed: false, reason });

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
    return opts.withCurrentCode === true || principal.fresh ? ALLOW : deny('needs_current_code');
  }
  if (own) {
    // One's own mailbox goes through change_own_access_code; managing oneself is not a thing.
    return action === 'view' || action === 'read_audit' || action === 'list_messages' ? ALLOW : deny('own_mailbox');
  }
  if (!manages(principal.role, principal.site, target.owner)) return deny('not_in_scope');
  if (action === 'reset' || action === 'recycle') {
    return principal.role === 'office_manager' || principal.role === 'site_manager' ? ALLOW : deny('role');
  }
  return ALLOW;
}

/** Whether the principal may see a domain at all (list mailboxes, read its audit). */
export function inDomain(principal: Principal, domain: string): boolean {
  return principal.kind === 'operator' || principal.domain === domain;
}
