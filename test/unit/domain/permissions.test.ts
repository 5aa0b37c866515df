/**
 * The permission table, exhaustively, against README.md itself: the two tables under "### Who
 * may do what" (whose mailboxes each role manages; what one may do with one's own mailbox, a
 * shared mailbox one is a member of, a mailbox one manages) are parsed out of the README and
 * turned into a specification, written independently of decide(). Every principal (each role ×
 * site × fresh sign-in, and the operator) × every action × every kind of target (own, each role's
 * users on the same site, another site and no site, shared with and without membership, with and
 * without a code, another domain) × with/without the current code must agree — so editing either
 * the README or the code alone makes this fail.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../../src/paths.js';
import { ACTIONS, ROLES, decide, noMailboxTarget, type Action, type MailboxTarget, type Principal, type Role } from '../../../src/domain/permissions.js';

// --- reading the README -----------------------------------------------------------------------

type Who = Role | 'operator';
/** Whose mailboxes a role manages: a list of owner roles on the same site, the domain, or everything. */
type Scope = { readonly sameSite: readonly Role[] } | 'domain' | 'all';
/** A cell of the action table: no, yes, yes for some roles only, or the own-code rule. */
type Cell = false | true | { readonly only: readonly Who[] } | 'current_code_or_fresh';
type Column = 'own' | 'member' | 'managed';

function section(readme: string): string {
  const start = readme.indexOf('### Who may do what');
  if (start < 0) throw new Error('README.md has no "### Who may do what" section');
  const end = readme.indexOf('\n#', start + 5);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The markdown tables of a text, as rows of trimmed cells (header and separator dropped). */
function tables(text: string): Array<{ header: string[]; rows: string[][] }> {
  const found: Array<{ header: string[]; rows: string[][] }> = [];
  let current: string[][] | null = null;
  for (const line of [...text.split('\n'), '']) {
    if (line.startsWith('|')) {
      (current ??= []).push(line.replace(/^\||\|$/g, '').split('|').map((c) => c.trim()));
    } else if (current !== null) {
      const [header, separator, ...rows] = current;
      if (header === undefined || separator === undefined || !separator.every((c) => /^-+$/.test(c))) throw new Error(`not a markdown table: ${current.join(' / ')}`);
      found.push({ header, rows });
      current = null;
    }
  }
  return found;
}

const backticked = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

function roleOf(name: string): Role {
  if (!(ROLES as readonly string[]).includes(name)) throw new Error(`README names an unknown role ${name}`);
  return name as Role;
}

function parseScope(cell: string): Scope {
  if (cell === '—') return { sameSite: [] };
  if (cell === 'every mailbox of every domain') return 'all';
  if (cell === 'every mailbox of the domain, shared ones included') return 'domain';
  const except = /^every user of the same site except (.+)$/.exec(cell);
  if (except !== null) {
    const excluded = backticked(except[1]!).map(roleOf);
    return { sameSite: ROLES.filter((r) => !excluded.includes(r)) };
  }
  if (/^.+ users of the same site$/.test(cell)) return { sameSite: backticked(cell).map(roleOf) };
  throw new Error(`cannot read the scope "${cell}"`);
}

function parseCell(cell: string): Cell {
  if (cell === '—') return false;
  if (cell === 'yes') return true;
  if (cell.startsWith('with the current code or a fresh sign-in')) return 'current_code_or_fresh';
  const only = cell.split(',').map((x) => x.trim()).map((x) => (x === 'operator' ? 'operator' : roleOf(x.replace(/`/g, ''))));
  if (only.length === 0) throw new Error(`cannot read the cell "${cell}"`);
  return { only };
}

interface Spec {
  readonly scopes: ReadonlyMap<Who, Scope>;
  readonly cells: ReadonlyMap<Action, Readonly<Record<Column, Cell>>>;
}

function readSpec(): Spec {
  const text = section(readFileSync(join(packageRoot, 'README.md'), 'utf8'));
  const [scopeTable, actionTable, ...extra] = tables(text);
  if (scopeTable === undefined || actionTable === undefined || extra.length > 0) throw new Error('expected exactly two tables under "Who may do what"');
  expect(scopeTable.header).toEqual(['role', 'manages']);
  expect(actionTable.header).toEqual(['action', 'own mailbox', 'a shared mailbox one is a member of', 'a mailbox one manages']);

  const scopes = new Map<Who, Scope>();
  for (const [roleCell, scope] of scopeTable.rows) {
    const names = backticked(roleCell!);
    const who: Who = names.length === 0 && roleCell!.startsWith('operator') ? 'operator' : roleOf(names[0] ?? roleCell!);
    expect(scopes.has(who), `${who} twice`).toBe(false);
    scopes.set(who, parseScope(scope!));
  }
  const cells = new Map<Action, Record<Column, Cell>>();
  for (const [actionCell, own, member, managed] of actionTable.rows) {
    for (const name of backticked(actionCell!)) {
      if (!(ACTIONS as readonly string[]).includes(name)) throw new Error(`README names an unknown action ${name}`);
      expect(cells.has(name as Action), `${name} twice`).toBe(false);
      cells.set(name as Action, { own: parseCell(own!), member: parseCell(member!), managed: parseCell(managed!) });
    }
  }
  return { scopes, cells };
}

// --- the specification, from the README only ----------------------------------------------------

function grants(cell: Cell, who: Who, p: Principal, t: MailboxTarget, withCurrentCode: boolean): boolean {
  if (typeof cell === 'boolean') return cell;
  if (cell === 'current_code_or_fresh') return p.kind === 'user' && (p.fresh || (withCurrentCode && t.hasCode));
  return cell.only.includes(who);
}

function expected(spec: Spec, p: Principal, action: Action, t: MailboxTarget, withCurrentCode: boolean): boolean {
  const who: Who = p.kind === 'operator' ? 'operator' : p.role;
  const scope = spec.scopes.get(who)!;
  const cells = spec.cells.get(action)!;
  if (scope !== 'all' && p.kind === 'user' && t.domain !== p.domain) return false;
  const own = p.kind === 'user' && t.owner?.extension === p.extension;
  if (own) return grants(cells.own, who, p, t, withCurrentCode);
  const member = p.kind === 'user' && t.owner === null && t.members.includes(p.extension);
  const managed = scope === 'all' || scope === 'domain'
    || (p.kind === 'user' && t.owner !== null && p.site !== null && t.owner.site === p.site && scope.sameSite.includes(t.owner.role));
  return (member && grants(cells.member, who, p, t, withCurrentCode)) || (managed && grants(cells.managed, who, p, t, withCurrentCode));
}

// --- the cases -----------------------------------------------------------------------------------

type Labelled = MailboxTarget & { readonly label: string };

function targets(): Labelled[] {
  const list: Labelled[] = [];
  for (const role of ROLES) {
    for (const site of ['north', 'south', null] as const) {
      for (const hasCode of [true, false]) {
        list.push({ label: `${role}@${site ?? 'nosite'}${hasCode ? '' : ' nocode'}`, domain: 'demo.local', number: '300', owner: { extension: '300', role, site }, members: [], hasCode });
      }
    }
  }
  list.push({ label: 'shared, a member', domain: 'demo.local', number: '290', owner: null, members: ['201', '202'], hasCode: true });
  list.push({ label: 'shared, not a member', domain: 'demo.local', number: '291', owner: null, members: ['202'], hasCode: true });
  list.push({ ...noMailboxTarget('demo.local', '999'), label: 'no mailbox' });
  list.push({ label: 'other-domain', domain: 'other.local', number: '201', owner: { extension: '201', role: 'basic', site: 'north' }, members: [], hasCode: true });
  list.push({ label: 'other-domain-shared, a member', domain: 'other.local', number: '290', owner: null, members: ['201'], hasCode: true });
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

describe('permissions: decide() against README.md "Who may do what"', () => {
  const spec = readSpec();

  it('the README names every role, the operator and every action exactly once', () => {
    expect([...spec.scopes.keys()].sort()).toEqual([...ROLES, 'operator'].sort());
    expect([...spec.cells.keys()].sort()).toEqual([...ACTIONS].sort());
  });

  it('decide() matches the README for every principal, action, target and current-code case', () => {
    let cases = 0;
    for (const p of principals()) {
      const own: Labelled[] = p.kind === 'user'
        ? [true, false].map((hasCode) => ({ label: `own${hasCode ? '' : ' nocode'}`, domain: p.domain, number: p.extension, owner: { extension: p.extension, role: p.role, site: p.site }, members: [], hasCode }))
        : [];
      for (const t of [...targets(), ...own]) {
        for (const action of ACTIONS) {
          for (const withCurrentCode of [false, true]) {
            const got = decide(p, action, t, { withCurrentCode }).allowed;
            const want = expected(spec, p, action, t, withCurrentCode);
            const who = p.kind === 'operator' ? 'operator' : `${p.role}@${p.site ?? 'nosite'}${p.fresh ? ' fresh' : ''}`;
            expect(got, `${who} ${action} ${t.label}${withCurrentCode ? ' +code' : ''}`).toBe(want);
            cases++;
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(10_000);
  });

  it('the specification read from the README is not vacuous: it allows and refuses', () => {
    const office: Principal = { kind: 'user', domain: 'demo.local', extension: '201', role: 'office_manager', site: 'north', fresh: false };
    const bob: MailboxTarget = { domain: 'demo.local', number: '202', owner: { extension: '202', role: 'basic', site: 'north' }, members: [], hasCode: true };
    expect(expected(spec, office, 'recycle', bob, false)).toBe(true);
    expect(expected(spec, { ...office, role: 'basic' }, 'recycle', bob, false)).toBe(false);
  });
});

describe('permissions: why a refusal', () => {
  const basic: Principal = { kind: 'user', domain: 'demo.local', extension: '202', role: 'basic', site: 'north', fresh: false };
  const office: Principal = { kind: 'user', domain: 'demo.local', extension: '201', role: 'office_manager', site: 'north', fresh: false };
  const advanced: Principal = { kind: 'user', domain: 'demo.local', extension: '204', role: 'advanced_user', site: 'north', fresh: false };
  const bob: MailboxTarget = { domain: 'demo.local', number: '202', owner: { extension: '202', role: 'basic', site: 'north' }, members: [], hasCode: true };
  const support: MailboxTarget = { domain: 'demo.local', number: '290', owner: null, members: ['201', '202'], hasCode: true };

  it('names the rule', () => {
    expect(decide(basic, 'set_access_code', { ...bob, number: '203', owner: { extension: '203', role: 'basic', site: 'north' } })).toEqual({ allowed: false, reason: 'not_in_scope' });
    expect(decide(office, 'set_access_code', { ...bob, domain: 'other.local' })).toEqual({ allowed: false, reason: 'other_domain' });
    expect(decide(basic, 'change_own_access_code', bob)).toEqual({ allowed: false, reason: 'needs_current_code' });
    expect(decide(basic, 'change_own_access_code', bob, { withCurrentCode: true })).toEqual({ allowed: true });
    expect(decide(basic, 'set_access_code', bob)).toEqual({ allowed: false, reason: 'own_mailbox' });
    expect(decide(advanced, 'recycle', bob)).toEqual({ allowed: false, reason: 'role' });
    expect(decide(advanced, 'set_access_code', bob)).toEqual({ allowed: true });
    expect(decide(office, 'recycle', bob)).toEqual({ allowed: true });
    expect(decide({ kind: 'operator', name: 'root' }, 'change_own_access_code', bob)).toEqual({ allowed: false, reason: 'own_mailbox' });
  });

  it('no code yet: a stale sign-in is told to sign in again, a current code cannot stand in', () => {
    const noCode = { ...bob, hasCode: false };
    expect(decide(basic, 'change_own_access_code', noCode)).toEqual({ allowed: false, reason: 'needs_fresh_sign_in' });
    expect(decide(basic, 'change_own_access_code', noCode, { withCurrentCode: true })).toEqual({ allowed: false, reason: 'needs_fresh_sign_in' });
    expect(decide({ ...basic, fresh: true }, 'change_own_access_code', noCode)).toEqual({ allowed: true });
  });

  it('members of a shared mailbox handle its messages, nothing else', () => {
    for (const action of ['view', 'list_messages', 'save_message', 'delete_message'] as const) expect(decide(basic, action, support), action).toEqual({ allowed: true });
    for (const action of ['set_access_code', 'require_change', 'unlock', 'reset', 'recycle', 'read_audit'] as const) expect(decide(basic, action, support), action).toEqual({ allowed: false, reason: 'not_in_scope' });
    expect(decide(basic, 'delete_message', { ...support, members: ['201'] })).toEqual({ allowed: false, reason: 'not_in_scope' });
  });

  it('a number with no mailbox is visible only to those who manage the whole domain', () => {
    expect(decide(office, 'view', noMailboxTarget('demo.local', '999')).allowed).toBe(true);
    expect(decide({ kind: 'operator', name: 'root' }, 'read_audit', noMailboxTarget('other.local', '999')).allowed).toBe(true);
    for (const role of ROLES.filter((r) => r !== 'office_manager')) {
      expect(decide({ ...basic, role }, 'view', noMailboxTarget('demo.local', '999')), role).toEqual({ allowed: false, reason: 'not_in_scope' });
    }
  });
});
