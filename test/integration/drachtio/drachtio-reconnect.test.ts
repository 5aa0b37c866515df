/**
 * The drachtio engine when its peers come and go, on real loopback sockets (fakes named as
 * fakes: FakeDrachtioServer, FakeFreeSwitch): it reconnects by itself with backoff, logs each
 * change of state in one line, says so on /healthz (503) and refuses calls with 503 +
 * Retry-After while it cannot carry them — never a hung call, never a crash.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DrachtioEngine } from '../../../src/telephony/drachtio/engine.js';
import { freePort } from '../../support/ports.js';
import { startTestServer, type TestServer } from '../../support/test-server.js';
import { FakeCaller } from '../../support/fakes/fake-caller.js';
import { FakeDrachtioServer } from '../../support/fakes/fake-drachtio-server.js';
import { FakeFreeSwitch, type FakeFreeSwitchOptions } from '../../support/fakes/fake-freeswitch.js';
import { header } from '../../support/fakes/sip-text.js';
import { waitFor } from '../../support/wait.js';

const SECRET = 'fake-drachtio-secret';
const PASSWORD = 'fake-esl-password';

describe('drachtio engine: peers that come and go', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  async function server(env: Record<string, string>): Promise<TestServer> {
    const t = await startTestServer('pglite', {
      SIP_ENGINE: 'drachtio', DRACHTIO_HOST: '127.0.0.1', FREESWITCH_HOST: '127.0.0.1',
      ESL_LISTEN_ADDRESS: '127.0.0.1', ESL_LISTEN_PORT: '0', ...env,
    });
    cleanups.push(() => t.stop());
    return t;
  }
  const health = async (t: TestServer): Promise<{ status: number; checks: Record<string, string> }> => {
    const res = await fetch(`http://127.0.0.1:${t.server.http.port}/healthz`);
    const body = await res.json() as { checks: Record<string, string> };
    return { status: res.status, checks: body.checks };
  };
  const messages = (t: TestServer): string[] => t.logs.records().map((r) => String(r.msg));

  interface Stack {
    readonly drachtio: FakeDrachtioServer;
    readonly fs: FakeFreeSwitch;
    readonly t: TestServer;
    readonly engine: DrachtioEngine;
  }

  /**
   * A FakeDrachtioServer, a FakeFreeSwitch on it (`freeswitch`: its options but the password) and a
   * server with the secrets given (by default the right ones); unless `ready` is false, once the
   * server has connected to drachtio-server and its media server is ready.
   */
  async function stack({
    freeswitch = { playbackSpeed: 8 }, drachtioSecret = SECRET, freeswitchSecret = PASSWORD, ready = true,
  }: {
    freeswitch?: Omit<FakeFreeSwitchOptions, 'password'>; drachtioSecret?: string; freeswitchSecret?: string; ready?: boolean;
  } = {}): Promise<Stack> {
    const drachtio = await FakeDrachtioServer.start({ secret: SECRET });
    cleanups.push(() => drachtio.close());
    const fs = await FakeFreeSwitch.start(drachtio, { password: PASSWORD, ...freeswitch });
    cleanups.push(() => fs.close());
    const t = await server({ DRACHTIO_PORT: String(drachtio.port), DRACHTIO_SECRET: drachtioSecret, FREESWITCH_PORT: String(fs.eslPort), FREESWITCH_SECRET: freeswitchSecret });
    const engine = t.server.engine as DrachtioEngine;
    if (ready) {
      await drachtio.waitForApp();
      await waitFor(() => engine.mediaServerState === 'ready', 10_000);
    }
    return { drachtio, fs, t, engine };
  }

  it('with nothing to connect to it stays up, logs one line per retry, and /healthz says why (503)', async () => {
    const t = await server({ DRACHTIO_PORT: String(await freePort()), FREESWITCH_PORT: String(await freePort()) });
    await waitFor(() => messages(t).filter((m) => m === 'drachtio-server unreachable; retrying').length >= 3, 10_000, 'three retries');
    await waitFor(() => messages(t).filter((m) => m.startsWith('media server unavailable')).length >= 2, 10_000, 'two media retries');
    const retries = t.logs.records().filter((r) => r.msg === 'drachtio-server unreachable; retrying');
    expect(retries[0]).toMatchObject({ level: 40, reason: 'ECONNREFUSED' });
    expect(retries.map((r) => r.attempt)).toEqual([...retries.keys()].map((i) => i + 2));
    const h = await health(t);
    expect(h.status).toBe(503);
    expect(h.checks).toMatchObject({ store: 'ok', drachtio: 'failing', mediaServer: 'failing' });
  }, 30_000);

  it('drachtio-server goes away and comes back: logged and reported down meanwhile, then it re-authenticates and takes calls again', async () => {
    const { drachtio, fs, t, engine } = await stack();
    expect((await health(t)).status).toBe(200);

    drachtio.dropApp();
    await waitFor(() => !engine.drachtioConnected, 5000, 'the engine to notice');
    expect(messages(t)).toContain('lost the connection to drachtio-server; reconnecting');
    await waitFor(() => drachtio.authenticated === 2, 10_000, 're-authentication');
    await drachtio.waitForApp();
    await waitFor(() => engine.drachtioConnected, 10_000);
    expect((await health(t)).status).toBe(200);

    const caller = new FakeCaller(drachtio, '127.0.0.1', 5200);
    const channel = fs.nextChannel();
    expect((await caller.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>' })).status).toBe(200);
    await (await channel).pressDigits('4826#');
    await waitFor(async () => (await t.server.core.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_events WHERE event = 'login_succeeded'"))[0]!.n === 1, 8000, 'the login');
    expect(await caller.bye()).toBe(200);
  }, 40_000);

  it('FreeSWITCH goes away: new calls get 503 with Retry-After, /healthz 503; when it is back, a new MediaServer takes calls', async () => {
    const { drachtio, fs, t, engine } = await stack();

    // A call in progress keeps its own (outbound) ESL connection through the outage.
    const inCall = new FakeCaller(drachtio, '127.0.0.1', 5201);
    const channelP = fs.nextChannel();
    expect((await inCall.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:202@demo.local>' })).status).toBe(200);
    const channel = await channelP;

    await fs.stopEsl();
    await waitFor(() => engine.mediaServerState !== 'ready', 5000, 'the engine to notice');
    expect(messages(t)).toContain('lost the ESL connection to FreeSWITCH; reconnecting (calls in progress keep their media)');
    const h = await health(t);
    expect(h.status).toBe(503);
    expect(h.checks.mediaServer).toBe('failing');
    const refused = await new FakeCaller(drachtio, '127.0.0.1', 5202).invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>' });
    expect(refused.status).toBe(503);
    expect(header(refused, 'retry-after')).toBe('30');

    await channel.pressDigits('7391#');
    await waitFor(() => channel.playbacks.some((p) => p.files.some((f) => f.endsWith('/main-menu.wav'))), 8000, 'the call going on');

    const logins = fs.eslLogins;
    await fs.startEsl();
    await waitFor(() => engine.mediaServerState === 'ready', 15_000, 'the media server back');
    expect(fs.eslLogins).toBe(logins + 1);
    expect((await health(t)).status).toBe(200);
    const after = new FakeCaller(drachtio, '127.0.0.1', 5203);
    const next = fs.nextChannel();
    expect((await after.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>' })).status).toBe(200);
    const nextChannel = await next;
    await nextChannel.pressDigits('4826#');
    await waitFor(() => nextChannel.playbacks.some((p) => p.files.some((f) => f.endsWith('/main-menu.wav'))), 8000, 'the login on the new MediaServer');
    await nextChannel.pressDigits('*');
    await after.waitForRequest('BYE');
    await inCall.bye();
    await waitFor(() => engine.activeCalls === 0, 10_000);
  }, 60_000);

  it('a wrong FREESWITCH_SECRET or DRACHTIO_SECRET is said plainly and retried, without a crash or a leaked connection', async () => {
    const { drachtio, fs, t } = await stack({ freeswitch: {}, drachtioSecret: 'not-the-secret', freeswitchSecret: 'not-the-password', ready: false });
    await waitFor(() => t.logs.records().some((r) => r.msg === 'drachtio-server refused us'), 10_000, 'the drachtio refusal');
    await waitFor(() => t.logs.records().filter((r) => r.reason === 'FreeSWITCH refused the ESL password (FREESWITCH_SECRET)').length >= 2, 10_000, 'two ESL refusals');
    expect(fs.eslLogins).toBe(0);
    expect(drachtio.authenticated).toBe(0);
    expect((await health(t)).status).toBe(503);
    expect(JSON.stringify(t.logs.records())).not.toContain('not-the-password');
  }, 30_000);

  it('FreeSWITCH without the drachtio_mrf SIP profile is refused with that reason (fsmrf would throw)', async () => {
    const { t } = await stack({ freeswitch: { profile: 'internal' }, ready: false });
    await waitFor(() => t.logs.records().some((r) => r.reason === "FreeSWITCH has no SIP profile 'drachtio_mrf' in 'sofia status'"), 10_000, 'the profile refusal');
    expect((t.server.engine as DrachtioEngine).mediaServerState).not.toBe('ready');
  }, 30_000);

  it('SIGTERM-style drain: the INVITE route is withdrawn, a call in progress finishes, an INVITE that still comes gets 503', async () => {
    const { drachtio, fs, engine } = await stack();
    const caller = new FakeCaller(drachtio, '127.0.0.1', 5204);
    const channelP = fs.nextChannel();
    expect((await caller.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>' })).status).toBe(200);
    const channel = await channelP;

    const drained = engine.drain(20_000);
    await waitFor(() => !drachtio.routes.has('invite'), 5000, 'remove_route|invite');
    const refused = await new FakeCaller(drachtio, '127.0.0.1', 5205).invite({ requestUri: 'sip:*97@demo.local', from: '<sip:202@demo.local>' });
    expect(refused.status).toBe(503);
    await channel.pressDigits('4826#');
    await waitFor(() => channel.playbacks.some((p) => p.files.some((f) => f.endsWith('/main-menu.wav'))), 8000, 'the login');
    await channel.pressDigits('*');
    await caller.waitForRequest('BYE');
    await drained;
    expect(engine.activeCalls).toBe(0);
  }, 40_000);
});
