/**
 * The permission table, exhaustively: every principal (each role × site × fresh sign-in, and the
 * operator) × every action × every kind of target (own, each role's users on the same site, on
 * another site, without a site, a shared mailbox, another domain) × with/without the current
 * code, against a specification written independently of decide() — the README's table as data.
 */
import { describe, expect, it } from 'vitest';
import { ACTIONS, ROLES, decide, type Action, type MailboxTarget, type Principal, type Role } from '../../../src/domain/permissions.js';

/** README: whose mailboxes each role manages (besides its own), on its own site. */
const MANAGES: Record<Role, readonly Role[] | 'domain'> = {
  basic: [],
  call_center_agent: [],
  call_center_supervisor: ['call_center_agent'],
  advanced_user: ['basic', 'call_center_agent'],
  site_manager: ['basic', 'call_center_agent', 'call_center_supervisor', 'advanced_user', 'site_manager'],
  office_manager: 'domain',
};
const DESTRUCTIVE: readonly Action[] = ['reset', 'recycle'];
const MAY_DESTROY: readonly Role[] = ['site_manager', 'office_manager'];
const OWN_READ: readonly Action[] = ['view', 'read_audit', 'list_messages'];

type Target = MailboxTarget & { readonly label: string };

function targets(): Target[] {
  const list: Target[] = [];
  for (const role of ROLES) {
    for (const site of ['north', 'south', null] as const) {
      list.push({ label: `${role}@${site ?? 'nosite'}`, domain: 'demo.local', number: '300', owner: { extension: '300', role, site } });
    }
  }
  list.push({ label: 'shared', domain: 'demo.local', number: '290', owner: null });
  list.push({ label: 'other-domain', domain: 'other.local', number: '201', owner: { extension: '201', role: 'basic', site: 'north' } });
  list.push({ label: 'other-domain-shared', domain: 'other.local', number: '290', owner: null });
  return list;
}

function principals(): Principal[] {
  const list: Principal[] = [{ kind: 'operator', name: 'root' }];
  for (const role of ROLES) {
    for (const site of ['north', null] as const) {
      for (const fresh of [true, false]) list.push({ kind: 'user', domain: 'demo.local', extension: '201', role, site, fresh });
    }
  }
  return list;
}

/** The specification, independent of the implementation. */
function expected(p: Principal, action: Action, t: Target, withCurrentCode: boolean): boolean {
  if (p.kind === 'operator') return action !== 'change_own_access_code';
  if (t.domain !== p.domain) return false;
  const own = t.owner?.extension === p.extension;
  if (action === 'change_own_access_code') return own && (withCurrentCode || p.fresh);
  if (own) return OWN_READ.includes(action);
  const scope = MANAGES[p.role];
  const inScope = scope === 'domain'
    || (t.owner !== null && p.site !== null && t.owner.site === p.site && scope.includes(t.owner.role));
  if (!inScope) return false;
  if (DESTRUCTIVE.includes(action)) return MAY_DESTROY.includes(p.role);
  return true;
}

describe('permissions (exhaustive)', () => {
  it('decide() matches the README table for every principal, action, target and current-code case', () => {
    let cases = 0;
    for (const p of principals()) {
      const ownTarget: Target = p.kind === 'user'
        ? { label: 'own', domain: p.domain, number: p.extension, owner: { extension: p.extension, role: p.role, site: p.site } }
        : { label: 'own', domain: 'demo.local', number: '201', owner: { extension: '201', role: 'basic', site: null } };
      for (const t of [...targets(), ownTarget]) {
        for (const action of ACTIONS) {
          for (const withCurrentCode of [false, true]) {
            const got = decide(p, action, t, { withCurrentCode }).allowed;
            const want = expected(p, action, t, withCurrentCode);
            const who = p.kind === 'operator' ? 'operator' : `${p.role}@${p.site ?? 'nosite'}${p.fresh ? ' fresh' : ''}`;
            expect(got, `${who} ${action} ${t.label}${withCurrentCode ? ' +code' : ''}`).toBe(want);
            cases++;
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(2000);
  });

  it('says why it refuses', () => {
    const basic: Principal = { kind: 'user', domain: 'demo.local', extension: '202', role: 'basic', site: 'north', fresh: false };
    const office: Principal = { kind: 'user', domain: 'demo.local', extension: '201', role: 'office_manager', site: 'north', fresh: false };
    const advanced: Principal = { kind: 'user', domain: 'demo.local', extension: '204', role: 'advanced_user', site: 'north', fresh: false };
    const bob: MailboxTarget = { domain: 'demo.local', number: '202', owner: { extension: '202', role: 'basic', site: 'north' } };
    expect(decide(basic, 'set_access_code', { domain: 'demo.local', number: '203', owner: { extension: '203', role: 'basic', site: 'north' } })).toEqual({ allowed: false, reason: 'not_in_scope' });
    expect(decide(office, 'set_access_code', { ...bob, domain: 'other.local' })).toEqual({ allowed: false, reason: 'other_domain' });
    expect(decide(basic, 'change_own_access_code', bob)).toEqual({ allowed: false, reason: 'needs_current_code' });
    expect(decide(basic, 'change_own_access_code', bob, { withCurrentCode: true })).toEqual({ allowed: true });
    expect(decide(basic, 'set_access_code', bob)).toEqual({ allowed: false, reason: 'own_mailbox' });
    expect(decide(advanced, 'recycle', bob)).toEqual({ allowed: false, reason: 'role' });
    expect(decide(advanced, 'set_access_code', bob)).toEqual({ allowed: true });
    expect(decide(office, 'recycle', bob)).toEqual({ allowed: true });
    expect(decide({ kind: 'operator', name: 'root' }, 'change_own_access_code', bob)).toEqual({ allowed: false, reason: 'own_mailbox' });
  });
});
