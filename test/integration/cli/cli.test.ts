/**
 * The `vmaccess` command as an operator runs it: real processes (node bin/vmaccess.js, compiled
 * by `npm test`'s build step), real exit codes and stderr lines, real signals.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runtimeFilePath } from '../../../src/runtime/server-runtime.js';
import { createTestDataDir, describeEachDatabase, createPostgresTestDatabase } from '../store/helpers.js';
import { freeEvenPortRange, freePort } from '../../support/ports.js';
import { TestUa, TestUaCallRejectedError } from '../../support/test-ua.js';
import { runCli, serveCli } from '../../support/cli.js';




const run = runCli;
const serve = serveCli;

async function serverEnv(dataDir: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const rtp = await freeEvenPortRange(20);
  return {
    DATA_DIR: dataDir, SIP_ADDRESS: '127.0.0.1', SIP_PORT: String(await freePort()), HTTP_PORT: String(await freePort()),
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max), ...extra,
  };
}

describe('usage and configuration errors', () => {
  it('--help prints usage and exits 0; no command prints usage and exits 2', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('vmaccess audit --domain D');
    const none = await run([]);
    expect(none.code).toBe(2);
  });

  it.each([
    [['frobnicate'], "unknown command 'frobnicate'"],
    [['audit'], 'audit needs --domain D'],
    [['audit', '--domain'], "--domain"],
    [['serve', '--nope'], "'--nope'"],
    [['migrate', 'extra'], 'extra'],
  ])('%j → exit 2 and one line on stderr', async (args, text) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(text);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.startsWith('vmaccess: ')).toBe(true);
  });

  it('a bad environment variable stops serve with exit 2, naming the variable', async () => {
    const r = await run(['serve'], { SIP_PORT: 'abc' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("vmaccess: SIP_PORT: expected a port number from 0 to 65535, got 'abc'\n");
    const pepper = await run(['migrate'], { DATABASE_URL: 'postgres://root@127.0.0.1:5432/test' });
    expect(pepper.code).toBe(2);
    expect(pepper.stderr).toMatch(/^vmaccess: PIN_PEPPER: expected .*required when DATABASE_URL is set.*\n$/);
  });

  it('an unreachable Postgres is a runtime failure: exit 1, one line', async () => {
    const r = await run(['migrate'], { DATABASE_URL: 'postgres://root@127.0.0.1:1/none', PIN_PEPPER: 'a-pepper-of-enough-length' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.startsWith('vmaccess: ')).toBe(true);
  });
});

describeEachDatabase('migrate, demo, audit', (variant) => {
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const data = await createTestDataDir();
    env = { DATA_DIR: data.dataDir };
    const cleanups = [data.cleanup];
    if (variant === 'postgres') {
      const pgdb = await createPostgresTestDatabase();
      env = { ...env, DATABASE_URL: pgdb.databaseUrl, PIN_PEPPER: 'cli-test-pepper-0123456789' };
      cleanups.push(pgdb.drop);
    }
    cleanup = async () => { for (const c of cleanups) await c(); };
  });
  afterAll(async () => { await cleanup?.(); });

  it('migrate applies once, then is up to date', async () => {
    const first = await run(['migrate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^migrations applied: 001_initial\.sql/);
    const second = await run(['migrate'], env);
    expect(second.stdout).toBe('migrations: up to date\n');
  });

  it('demo seeds once, then changes nothing', async () => {
    const first = await run(['demo'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^demo tenant: seeded \(\d+ rows\)\n$/);
    const second = await run(['demo'], env);
    expect(second.stdout).toBe('demo tenant: already present, nothing changed\n');
  });

  it('audit of a quiet mailbox prints nothing and exits 0', async () => {
    const r = await run(['audit', '--domain', 'demo.local', '--mailbox', '201', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
  });
});

describe('serve', () => {
  let dataDir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const d = await createTestDataDir();
    dataDir = d.dataDir;
    cleanup = d.cleanup;
  });
  afterAll(async () => { await cleanup?.(); });

  it('while serving, the CLI goes through the server; a second server is refused; SIGTERM drains and exits 0', async () => {
    const env = await serverEnv(dataDir, { SHUTDOWN_GRACE_MS: '20000' });
    const s = await serve(env);
    try {
      expect(existsSync(runtimeFilePath(dataDir))).toBe(true);
      const sipPort = Number(env.SIP_PORT);

      // A call that logs in: its audit row is read back through the running server.
      const ua = await TestUa.call({
        target: { address: '127.0.0.1', port: sipPort }, requestUri: 'sip:*97@demo.local', from: 'sip:201@demo.local',
      });
      try {
        await ua.pressKeys('4826#');
        const deadline = Date.now() + 10_000;
        let audit = await run(['audit', '--domain', 'demo.local', '--mailbox', '201', '--json'], { DATA_DIR: dataDir });
        while (!audit.stdout.includes('login_succeeded') && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          audit = await run(['audit', '--domain', 'demo.local', '--mailbox', '201', '--json'], { DATA_DIR: dataDir });
        }
        expect(audit.code, audit.stderr).toBe(0);
        const line = JSON.parse(audit.stdout.trim().split('\n')[0]!) as Record<string, unknown>;
        expect(Object.keys(line)).toEqual(['at', 'domain', 'mailbox', 'event', 'channel', 'actor', 'callId']);
        expect(line).toMatchObject({ domain: 'demo.local', mailbox: '201', event: 'login_succeeded', channel: 'phone', actor: '201@demo.local', callId: ua.callId });
        expect((await run(['demo'], { DATA_DIR: dataDir })).stdout).toBe('demo tenant: already present, nothing changed\n');
        const text = await run(['audit', '--domain', 'demo.local'], { DATA_DIR: dataDir });
        expect(text.stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}demo\.local {2}201 {2}login_succeeded {2}phone {2}201@demo\.local {2}\S+\n$/);

        // Another server on the same embedded store must refuse, not corrupt it.
        const second = await run(['serve'], await serverEnv(dataDir));
        expect(second.code).toBe(1);
        expect(second.stderr).toMatch(/^vmaccess: .*in use by another vmaccess process \(pid \d+\).*\n$/);

        // SIGTERM: new calls are refused with 503, the call in progress goes on to its end.
        s.child.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 300));
        const refused = await TestUa.call({
          target: { address: '127.0.0.1', port: sipPort }, requestUri: 'sip:*97@demo.local', from: 'sip:202@demo.local',
        }).then((late) => { late.close(); return 200; }, (err: unknown) => (err instanceof TestUaCallRejectedError ? err.status : -1));
        expect(refused).toBe(503);
        await ua.pressKeys('*');
        await ua.waitForBye(10_000);
      } finally {
        ua.close();
      }
      expect(await s.exited).toBe(0);
      expect(s.output()).toContain('vmaccess stopped');
      expect(existsSync(runtimeFilePath(dataDir))).toBe(false);
    } finally {
      if (s.child.exitCode === null) s.child.kill('SIGKILL');
    }
  }, 90_000);
});
