/**
 * Bootstrapping people with the CLI: `vmaccess user create|passwd`, `operator set`, `token
 * create` — real processes, with the password on standard input — against the store directly,
 * and through a running server (which owns the embedded store) via its admin endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/log.js';
import { startServer, type RunningServer } from '../../../src/server.js';
import { createTestDataDir } from '../store/helpers.js';
import { freeEvenPortRange, freePort } from '../../support/ports.js';
import { runCli } from '../../support/cli.js';


const run = runCli;

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

  it('with a server running on the data directory: user passwd goes through it, and the new password signs in', async () => {
    const rtp = await freeEvenPortRange(10);
    const config = loadConfig({
      ...env, SIP_ADDRESS: '127.0.0.1', SIP_PORT: String(await freePort()), HTTP_ADDRESS: '127.0.0.1', HTTP_PORT: '0',
      RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max), LOG_LEVEL: 'silent',
    });
    server = await startServer(config, { logger: createLogger('silent') });
    const base = `http://127.0.0.1:${server.http.port}`;
    const r = await run(['user', 'passwd', '--domain', 'demo.local', '--extension', '203'], env, 'carol-portal-pw1\n');
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: 'portal password of 203@demo.local set\n' });
    const signIn = async (user: string, password: string): Promise<number> =>
      (await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ domain: 'demo.local', user, password }) })).status;
    expect(await signIn('203', 'carol-portal-pw1')).toBe(200);
    expect(await signIn('205', 'erin-portal-pw1')).toBe(200);
    // The operator signs in too, and its token works on the API.
    const op = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operator: 'root', password: 'root-password-123' }) });
    expect(op.status).toBe(200);
    const token = (await run(['token', 'create', '--operator', 'root'], env)).stdout.trim();
    const me = await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(await me.json()).toMatchObject({ actor: 'token:root', channel: 'admin' });
  }, 60_000);
});
