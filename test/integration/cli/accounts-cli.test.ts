/**
 * Bootstrapping people with the CLI: `vmaccess user create|passwd`, `operator set`, `token
 * create|revoke` — real processes, with the password on standard input — against the store
 * directly, and through a running server (which owns the embedded store) via its admin endpoint.
 * Every account change is audited (channel cli, actor cli:<os user>, never a password); `vmaccess
 * audit` prints only the CONTRACT's six events unless --all.
 */
import { userInfo } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/log.js';
import { startServer, type RunningServer } from '../../../src/server.js';
import { createTestDataDir } from '../store/helpers.js';
import { freeEvenPortRange, freePort } from '../../support/ports.js';
import { runCli } from '../../support/cli.js';


const run = runCli;
const CONTRACT_EVENTS = ['login_succeeded', 'login_failed', 'pin_changed', 'pin_set', 'mailbox_locked', 'mailbox_unlocked'];
const actor = `cli:${userInfo().username}`;

type Line = { at: string; domain: string; mailbox: string; event: string; channel: string; actor: string; callId: string | null };
async function audit(env: Record<string, string>, ...args: string[]): Promise<Line[]> {
  const r = await run(['audit', ...args, '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
}

describe('accounts from the command line', () => {
  let data: { dataDir: string; cleanup(): Promise<void> };
  let env: Record<string, string>;
  let server: RunningServer | null = null;

  beforeAll(async () => {
    data = await createTestDataDir();
    env = { DATA_DIR: data.dataDir };
  });
  afterAll(async () => {
    await server?.stop();
    await data?.cleanup();
  });

  it('without a server: demo, user create with a password, operator set, token create; bad input is exit 2 with one line', async () => {
    expect((await run(['demo'], env)).code).toBe(0);
    const created = await run(['user', 'create', '--domain', 'demo.local', '--extension', '205', '--name', 'Erin Agent', '--role', 'call_center_agent', '--site', 'hq', '--password-stdin'], env, 'erin-portal-pw1\n');
    expect(created, created.stderr).toMatchObject({ code: 0, stdout: 'user 205@demo.local created with a mailbox and a portal password\n' });
    expect((await run(['operator', 'set', '--name', 'root'], env, 'root-password-123\n')).code).toBe(0);
    const token = await run(['token', 'create', '--operator', 'root', '--label', 'ci'], env);
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);

    for (const [args, stdin, message] of [
      [['user', 'create', '--domain', 'demo.local', '--extension', '205', '--name', 'Again', '--role', 'basic'], undefined, 'user 205 already exists in demo.local'],
      [['user', 'create', '--domain', 'demo.local', '--extension', '206', '--name', 'X', '--role', 'king'], undefined, 'role must be one of'],
      [['user', 'create', '--domain', 'nowhere.example', '--extension', '206', '--name', 'X', '--role', 'basic'], undefined, 'no domain nowhere.example'],
      [['user', 'passwd', '--domain', 'demo.local', '--extension', '203'], 'short\n', 'a password needs at least 10 characters'],
      [['user', 'passwd', '--domain', 'demo.local', '--extension', '203'], '', 'no password on standard input'],
      [['token', 'create', '--operator', 'nobody'], undefined, 'no operator nobody'],
      [['user', 'frobnicate'], undefined, 'user needs create or passwd'],
    ] as const) {
      const r = await run([...args], env, stdin);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain('short');
    }
  }, 60_000);

  it('account changes are audited (channel cli, who ran it, never the password); audit shows them only with --all', async () => {
    expect((await run(['unlock', '--domain', 'demo.local', '--mailbox', '205'], env)).code).toBe(0);
    const all = await audit(env, '--domain', 'demo.local', '--mailbox', '205', '--all');
    expect(all.map((e) => [e.event, e.channel, e.actor])).toEqual([
      ['user_created', 'cli', actor], ['portal_password_set', 'cli', actor], ['mailbox_unlocked', 'cli', actor]]);
    // By default only the CONTRACT's events, which external tools validate against.
    expect((await audit(env, '--domain', 'demo.local', '--mailbox', '205')).map((e) => e.event)).toEqual(['mailbox_unlocked']);
    const whole = await audit(env, '--domain', 'demo.local');
    expect(whole.length).toBeGreaterThan(0);
    for (const e of whole) {
      expect(CONTRACT_EVENTS).toContain(e.event);
      expect(Object.keys(e)).toEqual(['at', 'domain', 'mailbox', 'event', 'channel', 'actor', 'callId']);
    }
    // Operators and tokens belong to no domain: under '*', the operator's name as the mailbox.
    const operators = await audit(env, '--domain', '*', '--all');
    expect(operators.map((e) => [e.mailbox, e.event, e.channel, e.actor])).toEqual([
      ['root', 'operator_set', 'cli', actor], ['root', 'api_token_created', 'cli', actor]]);
    expect(await audit(env, '--domain', '*')).toEqual([]);
    const text = (await run(['audit', '--domain', 'demo.local', '--all'], env)).stdout + (await run(['audit', '--domain', '*', '--all', '--json'], env)).stdout;
    for (const secret of ['erin-portal-pw1', 'root-password-123']) expect(text).not.toContain(secret);
  }, 60_000);

  it('with a server running on the data directory: user passwd goes through it, and the new password signs in', async () => {
    const rtp = await freeEvenPortRange(10);
    const config = loadConfig({
      ...env, SIP_ADDRESS: '127.0.0.1', SIP_PORT: String(await freePort()), HTTP_ADDRESS: '127.0.0.1', HTTP_PORT: '0',
      RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max), LOG_LEVEL: 'silent',
    });
    server = await startServer(config, { logger: createLogger('silent') });
    const base = `http://127.0.0.1:${server.http.port}`;
    const r = await run(['user', 'passwd', '--domain', 'demo.local', '--extension', '203'], env, 'carol-portal-pw1\n');
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: 'portal password of 203@demo.local set; their sessions are ended\n' });
    const signIn = async (user: string, password: string): Promise<{ status: number; cookie: string }> => {
      const res = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ domain: 'demo.local', user, password }) });
      return { status: res.status, cookie: (res.headers.get('set-cookie') ?? '').split(';')[0]! };
    };
    const me = async (headers: Record<string, string>): Promise<number> => (await fetch(`${base}/api/me`, { headers })).status;
    expect((await signIn('203', 'carol-portal-pw1')).status).toBe(200);
    const erin = await signIn('205', 'erin-portal-pw1');
    expect(erin.status).toBe(200);
    // A new password ends the sessions of the old one (through the server too), and is audited.
    expect(await me({ cookie: erin.cookie })).toBe(200);
    expect((await run(['user', 'passwd', '--domain', 'demo.local', '--extension', '205'], env, 'erin-portal-pw2\n')).code).toBe(0);
    expect(await me({ cookie: erin.cookie })).toBe(401);
    expect((await signIn('205', 'erin-portal-pw1')).status).toBe(401);
    expect((await signIn('205', 'erin-portal-pw2')).status).toBe(200);
    expect((await audit(env, '--domain', 'demo.local', '--mailbox', '205', '--all')).at(-1)).toMatchObject({ event: 'portal_password_set', channel: 'cli', actor });
    // The operator signs in too, and its token works on the API.
    const op = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operator: 'root', password: 'root-password-123' }) });
    expect(op.status).toBe(200);
    const token = (await run(['token', 'create', '--operator', 'root', '--label', 'deploy'], env)).stdout.trim();
    const whoami = await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(await whoami.json()).toMatchObject({ actor: 'token:root', channel: 'admin' });

    // Revoked by label: 401 at once; another token of the operator keeps working until revoked itself.
    const other = (await run(['token', 'create', '--operator', 'root', '--label', 'backup'], env)).stdout.trim();
    const revoked = await run(['token', 'revoke', '--operator', 'root', '--label', 'deploy'], env);
    expect(revoked, revoked.stderr).toMatchObject({ code: 0, stdout: '1 token of operator root revoked\n' });
    expect(await me({ authorization: `Bearer ${token}` })).toBe(401);
    expect(await me({ authorization: `Bearer ${other}` })).toBe(200);
    expect((await run(['token', 'revoke', '--operator', 'root', '--token-stdin'], env, `${other}\n`)).code).toBe(0);
    expect(await me({ authorization: `Bearer ${other}` })).toBe(401);
    for (const [args, stdin, message] of [
      [['token', 'revoke', '--operator', 'root', '--label', 'deploy'], undefined, 'no active token labelled deploy'],
      [['token', 'revoke', '--operator', 'root', '--token-stdin'], `${other}\n`, 'no such active token'],
      [['token', 'revoke', '--operator', 'root'], undefined, 'either --label L or --token-stdin'],
      [['token', 'revoke', '--operator', 'nobody', '--label', 'x'], undefined, 'no operator nobody'],
    ] as const) {
      const r = await run([...args], env, stdin);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain(other);
    }
    const tokens = (await audit(env, '--domain', '*', '--all')).map((e) => e.event);
    expect(tokens.filter((e) => e === 'api_token_revoked')).toHaveLength(2);
  }, 60_000);
});
