/**
 * `vmaccess unlock` as an operator runs it (node bin/vmaccess.js, compiled by `npm test`'s build
 * step): through a running server whose in-process counters hold a real lock made by real calls,
 * and directly against Redis when no server runs.
 */
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { RedisLoginGuard } from '../../../src/guard/redis-login-guard.js';
import { createTestDataDir } from '../store/helpers.js';
import { freeEvenPortRange, freePort } from '../../support/ports.js';
import { TestUa } from '../../support/test-ua.js';
import { runCli, serveCli } from '../../support/cli.js';

const OPERATOR = `cli:${userInfo().username}`;


const run = runCli;

async function auditLines(env: Record<string, string>, mailbox: string): Promise<Array<Record<string, unknown>>> {
  const r = await run(['audit', '--domain', 'demo.local', '--mailbox', mailbox, '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

const serve = (env: Record<string, string>): ReturnType<typeof serveCli> => serveCli(env);

describe('vmaccess unlock: usage', () => {
  it('needs --domain and --mailbox (exit 2, one line)', async () => {
    for (const args of [['unlock'], ['unlock', '--domain', 'demo.local'], ['unlock', '--mailbox', '204']]) {
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('vmaccess: unlock needs --domain D --mailbox M\n');
    }
    expect((await run(['--help'])).stdout).toContain('vmaccess unlock --domain D --mailbox M');
  });
});

describe('vmaccess unlock through a running server (in-process counters)', () => {
  let dataDir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const d = await createTestDataDir();
    dataDir = d.dataDir;
    cleanup = d.cleanup;
  });
  afterAll(async () => { await cleanup?.(); });

  it('clears a lock made by 10 failed logins across calls; the right code works again', async () => {
    const rtp = await freeEvenPortRange(20);
    const sipPort = await freePort();
    const env = {
      DATA_DIR: dataDir, SIP_ADDRESS: '127.0.0.1', SIP_PORT: String(sipPort), HTTP_PORT: String(await freePort()),
      RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
    };
    const s = await serve(env);
    const target = { address: '127.0.0.1', port: sipPort };
    const dial = (): Promise<TestUa> => TestUa.call({ target, requestUri: 'sip:*97@demo.local', from: 'sip:204@demo.local' });
    /** One code then `#`, then time for the verify and the start of the next prompt. */
    const enter = async (ua: TestUa, code: string): Promise<void> => {
      await ua.pressKeys(`${code}#`, { gapMs: 60 });
      await new Promise((r) => setTimeout(r, 700));
    };
    try {
      // Three calls of three wrong codes (each ends with goodbye), then a fourth call.
      const callIds: string[] = [];
      for (let n = 0; n < 3; n++) {
        const ua = await dial();
        callIds.push(ua.callId);
        try {
          for (const code of ['1111', '2222', '3333']) await enter(ua, code);
          await ua.waitForBye(15_000);
        } finally {
          ua.close();
        }
      }
      const fourth = await dial();
      try {
        await enter(fourth, '4444'); // the 10th failure: 204 is locked
        await enter(fourth, '5150'); // the right code, refused while locked
        const deadline = Date.now() + 10_000;
        let events = await auditLines(env, '204');
        while (events.filter((e) => e.event === 'login_failed').length < 11 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          events = await auditLines(env, '204');
        }
        expect(events.map((e) => e.event)).toEqual([...Array(10).fill('login_failed'), 'mailbox_locked', 'login_failed']);
        expect(events[10]).toMatchObject({ channel: 'phone', actor: '204@demo.local', callId: fourth.callId });
        expect(new Set(events.slice(0, 9).map((e) => e.callId))).toEqual(new Set(callIds));
      } finally {
        await fourth.hangup().catch(() => 0);
        fourth.close();
      }

      const unlocked = await run(['unlock', '--domain', 'demo.local', '--mailbox', '204'], env);
      expect(unlocked.code, unlocked.stderr).toBe(0);
      expect(unlocked.stdout).toBe('demo.local 204: unlocked (it was locked)\n');
      expect(unlocked.stderr).toBe('');
      const again = await run(['unlock', '--domain', 'Demo.Local', '--mailbox', '204'], env);
      expect(again.stdout).toBe('demo.local 204: was not locked (failed-login count cleared)\n');
      const unlocks = (await auditLines(env, '204')).filter((e) => e.event === 'mailbox_unlocked');
      expect(unlocks).toEqual([
        expect.objectContaining({ domain: 'demo.local', mailbox: '204', channel: 'cli', actor: OPERATOR, callId: null }),
        expect.objectContaining({ channel: 'cli', actor: OPERATOR }),
      ]);

      const ua = await dial();
      try {
        await enter(ua, '5150');
        const deadline = Date.now() + 10_000;
        let last = (await auditLines(env, '204')).at(-1);
        while (last?.event !== 'login_succeeded' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          last = (await auditLines(env, '204')).at(-1);
        }
        expect(last).toMatchObject({ event: 'login_succeeded', callId: ua.callId });
      } finally {
        await ua.hangup().catch(() => 0);
        ua.close();
      }
    } finally {
      s.child.kill('SIGTERM');
      expect(await s.exited).toBe(0);
    }
  }, 90_000);
});

describe.skipIf(!process.env.REDIS_URL)('vmaccess unlock without a server, on Redis (REDIS_URL)', () => {
  const keyPrefix = `vmaccess-test-${randomBytes(6).toString('hex')}:`;
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  const guard = new RedisLoginGuard({ url: process.env.REDIS_URL ?? '', keyPrefix, logger: silentLogger });
  beforeAll(async () => {
    const d = await createTestDataDir();
    cleanup = d.cleanup;
    env = { DATA_DIR: d.dataDir, REDIS_URL: process.env.REDIS_URL ?? '', REDIS_KEY_PREFIX: keyPrefix };
  });
  afterAll(async () => {
    await guard.close();
    const redis = new Redis(process.env.REDIS_URL ?? '');
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await cleanup?.();
  });

  it('clears the shared lock another server holds, and audits it', async () => {
    const attempt = { domain: 'demo.local', mailbox: '204' };
    for (let i = 0; i < 10; i++) await guard.recordAttempt(attempt, false);
    expect((await guard.recordAttempt(attempt, true)).admitted).toBe(false);

    const r = await run(['unlock', '--domain', 'demo.local', '--mailbox', '204'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('demo.local 204: unlocked (it was locked)\n');
    expect((await guard.recordAttempt(attempt, true)).admitted).toBe(true);
    expect(await auditLines(env, '204')).toEqual([
      expect.objectContaining({ domain: 'demo.local', mailbox: '204', event: 'mailbox_unlocked', channel: 'cli', actor: OPERATOR, callId: null }),
    ]);
  });
});

describe('vmaccess unlock with Redis unreachable', () => {
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const d = await createTestDataDir();
    cleanup = d.cleanup;
    env = { DATA_DIR: d.dataDir, REDIS_URL: 'redis://127.0.0.1:1' };
  });
  afterAll(async () => { await cleanup?.(); });

  it('is a runtime failure: exit 1, one line naming Redis, nothing audited', async () => {
    const r = await run(['unlock', '--domain', 'demo.local', '--mailbox', '204'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vmaccess: redis \(REDIS_URL\) unreachable: .*ECONNREFUSED.*\n$/);
    expect(r.stdout).toBe('');
    expect(await auditLines(env, '204')).toEqual([]);
  });
});
