/**
 * The drachtio engine (SIP_ENGINE=drachtio) in a whole vmaccess server, against fakes named as
 * fakes — FakeDrachtioServer (drachtio's control protocol on a loopback TCP port) and
 * FakeFreeSwitch (the ESL text protocol, inbound and outbound, on loopback sockets) — because
 * neither drachtio-server nor FreeSWITCH runs on this machine. The engine's own code and the
 * real drachtio-srf 5.0.29 / drachtio-fsmrf 4.1.2 / drachtio-modesl 1.3.1 run unchanged.
 */
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listAuditEvents } from '../../../src/store/audit.js';
import type { DrachtioEngine } from '../../../src/telephony/drachtio/engine.js';
import { startTestServer, type TestServer } from '../../support/test-server.js';
import { expectNoSecretsInLogs } from '../../support/secrets.js';
import { FakeCaller, callerOffer } from '../../support/fakes/fake-caller.js';
import { FakeDrachtioServer } from '../../support/fakes/fake-drachtio-server.js';
import { FakeFreeSwitch, type FakeChannel } from '../../support/fakes/fake-freeswitch.js';
import { header, type SipText } from '../../support/fakes/sip-text.js';
import { FlakyProxy } from '../../support/flaky-proxy.js';
import { fetchMetrics, findSample } from '../../support/metrics.js';
import { createPostgresTestDatabase } from '../store/helpers.js';
import { waitFor } from '../../support/wait.js';

const DRACHTIO_SECRET = 'fake-drachtio-secret';
const ESL_PASSWORD = 'fake-esl-password';

/**
 * A server on the drachtio engine in front of the fakes (`env` adds to its settings), once it has
 * connected to drachtio-server and FreeSWITCH is ready as its media server.
 */
async function startDrachtioServer(drachtio: FakeDrachtioServer, freeswitch: FakeFreeSwitch, env: Record<string, string> = {}): Promise<TestServer> {
  const t = await startTestServer('pglite', {
    SIP_ENGINE: 'drachtio',
    DRACHTIO_HOST: '127.0.0.1', DRACHTIO_PORT: String(drachtio.port), DRACHTIO_SECRET,
    FREESWITCH_HOST: '127.0.0.1', FREESWITCH_PORT: String(freeswitch.eslPort), FREESWITCH_SECRET: ESL_PASSWORD,
    ESL_LISTEN_ADDRESS: '127.0.0.1', ESL_LISTEN_PORT: '0',
    ...env,
  });
  try {
    await drachtio.waitForApp();
    await waitFor(() => (t.server.engine as DrachtioEngine).mediaServerState === 'ready', 10_000, 'the media server');
  } catch (err) {
    await t.stop();
    throw err;
  }
  return t;
}

describe('drachtio engine against FakeDrachtioServer + FakeFreeSwitch', () => {
  let drachtio: FakeDrachtioServer;
  let freeswitch: FakeFreeSwitch;
  let t: TestServer;
  let callerPort = 5100;
  const engine = (): DrachtioEngine => t.server.engine as DrachtioEngine;
  const newCaller = (): FakeCaller => new FakeCaller(drachtio, '127.0.0.1', callerPort++);
  const events = async (mailbox: string, domain = 'demo.local'): Promise<string[]> =>
    (await listAuditEvents(t.server.core.db, { domain, mailbox })).map((e) => e.event);
  const healthz = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`http://127.0.0.1:${t.server.http.port}/healthz`);
    return { status: res.status, body: await res.json() as Record<string, unknown> };
  };

  /** Places a call and waits until FreeSWITCH's channel for it is subscribed. */
  async function connectedCall(caller: FakeCaller, opts: { requestUri?: string; from?: string; body?: string; headers?: ReadonlyArray<readonly [string, string]> } = {}): Promise<FakeChannel> {
    const channelP = freeswitch.nextChannel();
    const final = await caller.invite({
      requestUri: opts.requestUri ?? 'sip:*97@demo.local', from: opts.from ?? '<sip:201@demo.local>',
      ...(opts.body !== undefined ? { body: opts.body } : {}), ...(opts.headers !== undefined ? { headers: opts.headers } : {}),
    });
    expect(final.status, final.startLine).toBe(200);
    const channel = await channelP;
    await waitFor(() => channel.playbacks.length > 0, 5000, 'the first prompt');
    return channel;
  }

  beforeAll(async () => {
    drachtio = await FakeDrachtioServer.start({ secret: DRACHTIO_SECRET });
    freeswitch = await FakeFreeSwitch.start(drachtio, { password: ESL_PASSWORD, playbackSpeed: 8 });
    t = await startDrachtioServer(drachtio, freeswitch);
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    await freeswitch?.close();
    await drachtio?.close();
  });
  afterEach(async () => {
    await waitFor(() => engine().activeCalls === 0, 10_000, 'no active calls');
  });

  it('connects to drachtio-server (authenticate, route invite) and FreeSWITCH (auth, sofia status); /healthz is 200', async () => {
    expect(drachtio.authenticated).toBe(1);
    expect(drachtio.routes.has('invite')).toBe(true);
    expect(freeswitch.eslLogins).toBeGreaterThanOrEqual(1);
    const h = await healthz();
    expect(h.status).toBe(200);
    expect(h.body.checks).toMatchObject({ store: 'ok', drachtio: 'ok', mediaServer: 'ok' });
  });

  it('*97 from 201: prompts played by FreeSWITCH from the prompt folder, 4826#, 2, 9595# twice, * → BYE; audit as on the embedded engine', async () => {
    const caller = newCaller();
    const channel = await connectedCall(caller);
    // The answer the caller got is FreeSWITCH's.
    expect(channel.playbacks[0]!.files).toEqual([`${t.config.freeswitch.promptsDir}/en/enter-access-code.wav`]);
    for (const f of channel.playbacks[0]!.files) expect(existsSync(f)).toBe(true);

    await channel.pressDigits('4826#');
    await waitFor(() => channel.playbacks.some((p) => p.files.some((f) => f.endsWith('/main-menu.wav'))), 8000, 'the main menu');
    await channel.pressDigits('2');
    await waitFor(() => channel.playbacks.some((p) => p.files.some((f) => f.endsWith('/enter-new-access-code.wav'))), 8000, 'new code prompt');
    await channel.pressDigits('9595#');
    await waitFor(() => channel.playbacks.some((p) => p.files.some((f) => f.endsWith('/reenter-new-access-code.wav'))), 8000, 're-enter prompt');
    await channel.pressDigits('9595#');
    await waitFor(() => channel.playbacks.some((p) => p.files.some((f) => f.endsWith('/access-code-changed.wav'))), 8000, 'changed');
    await channel.pressDigits('*');
    await caller.waitForRequest('BYE', 10_000);
    await waitFor(() => channel.hungUp, 5000, 'the FreeSWITCH channel hung up');
    expect(await events('201')).toEqual(['login_succeeded', 'pin_changed']);
    expectNoSecretsInLogs(t.logs.records(), ['4826', '9595']);
  }, 60_000);

  it('a digit during a prompt breaks it with uuid_break and is kept (type-ahead)', async () => {
    const caller = newCaller();
    const channel = await connectedCall(caller, { from: '<sip:202@demo.local>' });
    await channel.pressDigit('7');
    await waitFor(() => channel.apis.some((a) => a === `uuid_break ${channel.uuid}`), 5000, 'uuid_break');
    await waitFor(() => channel.playbacks[0]!.finished, 5000, 'the prompt to stop');
    expect(channel.playbacks[0]!.broken).toBe(true);
    await channel.pressDigits('391#');
    await waitFor(async () => (await events('202')).includes('login_succeeded'), 8000, 'the login');
    expect(await caller.bye()).toBe(200);
    await waitFor(() => channel.hungUp, 5000, 'the channel released after the caller hung up');
  }, 30_000);

  it('keys by SIP INFO reach the session through the caller dialog (FreeSWITCH never sees them), answered 200', async () => {
    const caller = newCaller();
    const channel = await connectedCall(caller, { from: '<sip:204@demo.local>' });
    for (const key of '5150#') expect(await caller.info(key)).toBe(200);
    await waitFor(async () => (await events('204')).includes('login_succeeded'), 8000, 'the login');
    expect(await caller.info('*', 'application/dtmf')).toBe(200);
    await caller.waitForRequest('BYE');
    await waitFor(() => channel.hungUp, 5000, 'channel released');
  }, 30_000);

  it('without telephone-event in the offer, FreeSWITCH in-band detection is started and its INBAND_AUDIO digits count', async () => {
    const caller = newCaller();
    const channel = await connectedCall(caller, { from: '<sip:290@demo.local>', requestUri: 'sip:voicemail@demo.local', body: callerOffer({ telephoneEvent: false }) });
    await waitFor(() => channel.inbandDetection, 5000, 'start_dtmf');
    // 290 is a shared mailbox without an owner: the caller is asked for the account number.
    expect(channel.playbacks[0]!.files.at(-1)).toMatch(/enter-account-number\.wav$/);
    await channel.pressDigits('290#6042#', { source: 'INBAND_AUDIO' });
    await waitFor(async () => (await events('290')).includes('login_succeeded'), 8000, 'the login');
    await caller.bye();
  }, 30_000);

  it('Auto Attendant: option 0 sends REFER to 201 in the caller dialog; a refusal (405) says "transfer failed" and returns to the menu', async () => {
    const caller = newCaller();
    caller.answers.REFER = { status: 405, reason: 'Method Not Allowed' };
    const channel = await connectedCall(caller, { requestUri: 'sip:+15550100@demo.local', from: '<sip:5551234@example.net>' });
    expect(channel.playbacks[0]!.files.at(-1)).toMatch(/auto-attendant-menu\.wav$/);
    await channel.pressDigit('0');
    const refer = await caller.waitForRequest('REFER');
    expect(header(refer, 'refer-to')).toBe('<sip:201@demo.local>');
    await waitFor(() => channel.playbacks.some((p) => p.files.some((f) => f.endsWith('/transfer-failed.wav'))), 8000, 'transfer failed');
    caller.answers.REFER = { status: 202, reason: 'Accepted' };
    await waitFor(() => channel.playing !== null, 5000, 'the menu again');
    await channel.pressDigit('0');
    await waitFor(() => caller.requests.filter((r) => r.method === 'REFER').length === 2, 8000, 'the second REFER');
    await caller.waitForRequest('BYE');
  }, 30_000);

  it('a re-INVITE from the caller (hold) is passed to FreeSWITCH and its answer returned', async () => {
    const caller = newCaller();
    const channel = await connectedCall(caller, { from: '<sip:202@demo.local>' });
    const response = await caller.reinvite(callerOffer({ direction: 'sendonly', port: 30002 }));
    expect(response.status).toBe(200);
    expect(response.body).toContain('m=audio 20000 RTP/AVP');
    expect(channel.apis).toContain(`uuid_dump ${channel.uuid}`);
    await caller.bye();
  }, 30_000);

  it('FreeSWITCH ending the channel hangs up the caller (BYE) and ends the session', async () => {
    const caller = newCaller();
    const channel = await connectedCall(caller, { from: '<sip:202@demo.local>' });
    await channel.hangup('MEDIA_TIMEOUT');
    await caller.waitForRequest('BYE');
  }, 30_000);

  it('refuses what it cannot take, as the embedded engine does: 404 unknown number, 488 no G.711 / no offer, 415 non-SDP body', async () => {
    const caller = newCaller();
    expect((await caller.invite({ requestUri: 'sip:12345@demo.local', from: '<sip:201@demo.local>' })).status).toBe(404);
    const g722 = 'v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n';
    expect((await caller.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>', body: g722 })).status).toBe(488);
    const noOffer = await caller.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>', body: '' });
    expect(noOffer.status).toBe(488);
    const text = await caller.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>', body: 'hello', contentType: 'text/plain' });
    expect(text.status).toBe(415);
    expect(freeswitch.channels.filter((c) => !c.hungUp)).toHaveLength(0);
  });

  it('CANCEL while FreeSWITCH sets up the endpoint: 487 from drachtio-server, the channel is released', async () => {
    const caller = newCaller();
    const before = freeswitch.channels.length;
    freeswitch.inviteDelayMs = 300;
    try {
      const final = await caller.inviteAndCancel({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>', afterMs: 100 });
      expect(final.status).toBe(487);
      await waitFor(() => freeswitch.channels.length > before, 5000, 'the endpoint FreeSWITCH was asked for');
      await waitFor(() => freeswitch.channels.slice(before).every((c) => c.hungUp), 8000, 'no channel left');
    } finally {
      freeswitch.inviteDelayMs = 0;
    }
    expect(caller.requests).toHaveLength(0);
  });

  it('messages: FreeSWITCH records a deposit into the message folder (# ends it) and plays it back from there; 7 deletes it', async () => {
    const messages = t.server.core.messages;
    const depositor = newCaller();
    const channel = await connectedCall(depositor, { requestUri: 'sip:vm-201@demo.local', from: '"Pat" <sip:5551234@example.net>' });
    expect(channel.playbacks[0]!.files[0]).toMatch(/person-at-extension\.wav$/);
    channel.speech = Int16Array.from({ length: 20_000 }, (_, i) => Math.round(5000 * Math.sin(i / 3)));
    await channel.pressDigit('#'); // skip the greeting
    await waitFor(() => channel.recordings.length === 1, 5000, 'record');
    const recording = channel.recordings[0]!;
    expect(recording.path.startsWith(`${t.config.freeswitch.messagesDir}/`)).toBe(true);
    expect(recording.args).toEqual(['180', '200', '5']); // 3 min, silence threshold, 5 s of silence
    await channel.pressDigit('#'); // the end of the message: uuid_break
    await waitFor(() => channel.playbacks.some((p) => p.files.some((f) => f.endsWith('/message-recorded.wav'))), 8000, '"recorded"');
    const [stored] = await messages.list('demo.local', '201');
    expect(stored).toMatchObject({ caller: '5551234', callerName: 'Pat', durationMs: 2500, state: 'new' });
    expect(existsSync(recording.path)).toBe(false); // FreeSWITCH's file was taken into the store
    await depositor.waitForRequest('BYE', 10_000);

    const owner = newCaller();
    const listening = await connectedCall(owner);
    await listening.pressDigits('9595#'); // 201's code since the change test above
    await waitFor(() => listening.playbacks.some((p) => p.files.some((f) => f.endsWith('/main-menu.wav'))), 8000, 'the main menu');
    await listening.pressDigits('1');
    const messageFile = `${t.config.freeswitch.messagesDir}/${stored!.audioKey}`;
    await waitFor(() => listening.playbacks.some((p) => p.files.includes(messageFile)), 8000, 'the message played');
    expect(existsSync(messageFile)).toBe(true);
    await listening.pressDigits('7');
    await waitFor(() => listening.playbacks.some((p) => p.files.some((f) => f.endsWith('/message-deleted.wav'))), 8000, '"deleted"');
    expect(await messages.list('demo.local', '201')).toEqual([]);
    expect(existsSync(messageFile)).toBe(false);
    expect(await owner.bye()).toBe(200);
  }, 60_000);

  it('messages: a caller who hangs up while FreeSWITCH records still leaves the message', async () => {
    const caller = newCaller();
    const channel = await connectedCall(caller, { requestUri: 'sip:vm-202@demo.local', from: '<sip:5550000@example.net>' });
    await channel.pressDigit('#');
    await waitFor(() => channel.recordings.length === 1, 5000, 'record');
    expect(await caller.bye()).toBe(200);
    await waitFor(async () => (await t.server.core.messages.counts('demo.local', '202')).new === 1, 8000, 'the message stored');
    const [m] = await t.server.core.messages.list('demo.local', '202');
    expect(m).toMatchObject({ caller: '5550000', durationMs: 2000 });
    await t.server.core.messages.delete('demo.local', '202', m!.id, { channel: 'admin', actor: 'test', callId: null });
  }, 30_000);
});

/**
 * The limits on the drachtio engine, as on the embedded one (test/e2e/limits-and-metrics.test.ts):
 * MAX_CALLS and the per-source INVITE rate → 503 with Retry-After, and a store outage at routing
 * → 503 with Retry-After, counted in vmaccess_store_errors_total. With DATABASE_URL the store is
 * Postgres behind a FlakyProxy the test can take away; without it, PGlite and no outage case.
 */
describe('drachtio engine limits against FakeDrachtioServer + FakeFreeSwitch', () => {
  const DATABASE_URL = process.env.DATABASE_URL;
  let drachtio: FakeDrachtioServer;
  let freeswitch: FakeFreeSwitch;
  let t: TestServer;
  let proxy: FlakyProxy | null = null;
  let dropDb: (() => Promise<void>) | null = null;
  let callerPort = 5400;
  const engine = (): DrachtioEngine => t.server.engine as DrachtioEngine;
  const newCaller = (): FakeCaller => new FakeCaller(drachtio, '127.0.0.1', callerPort++);
  const metric = async (series: string): Promise<number> => {
    const text = await fetchMetrics(t);
    const value = findSample(text, series);
    if (value === undefined) {
      // A labelled counter has no sample until its first count; its metric is still declared.
      expect(text).toContain(`# TYPE ${series.replace(/\{.*$/, '')} counter`);
      return 0;
    }
    return value;
  };
  /** Retry-After (RFC 3261 §20.33): delta-seconds, at least one. */
  const retryAfter = (response: SipText): number => {
    const value = header(response, 'retry-after');
    expect(value).toMatch(/^\d+$/);
    return Number(value);
  };

  beforeAll(async () => {
    drachtio = await FakeDrachtioServer.start({ secret: DRACHTIO_SECRET });
    freeswitch = await FakeFreeSwitch.start(drachtio, { password: ESL_PASSWORD, playbackSpeed: 8 });
    let store: Record<string, string> = {};
    if (DATABASE_URL !== undefined) {
      const db = await createPostgresTestDatabase();
      dropDb = () => db.drop();
      const proxied = await FlakyProxy.inFrontOf(db.databaseUrl, 5432);
      proxy = proxied.proxy;
      store = { DATABASE_URL: proxied.url, PIN_PEPPER: 'drachtio-limits-pepper-0123456789' };
    }
    t = await startDrachtioServer(drachtio, freeswitch, { MAX_CALLS: '1', INVITE_RATE_PER_SOURCE: '1', INVITE_BURST_PER_SOURCE: '2', ...store });
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    await proxy?.close();
    await dropDb?.();
    await freeswitch?.close();
    await drachtio?.close();
  });
  afterEach(async () => {
    await waitFor(() => engine().activeCalls === 0 && engine().setupsInProgress === 0, 10_000, 'no active calls');
  });

  it('MAX_CALLS=1: a second INVITE gets 503 with Retry-After, counted in /metrics; once the call ends, calls are taken again', async () => {
    const first = newCaller();
    const channel = freeswitch.nextChannel();
    expect((await first.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>' })).status).toBe(200);
    await channel;
    const before = await metric('vmaccess_invites_rejected_total{status="503"}');
    const refused = await newCaller().invite({ requestUri: 'sip:*97@demo.local', from: '<sip:202@demo.local>' });
    expect(refused.status).toBe(503);
    expect(retryAfter(refused)).toBeGreaterThanOrEqual(1);
    expect(await metric('vmaccess_invites_rejected_total{status="503"}')).toBe(before + 1);
    expect(engine().activeCalls).toBe(1);
    expect(await first.bye()).toBe(200);
    await waitFor(() => engine().activeCalls === 0, 5000, 'the call to end');
    const again = newCaller();
    expect((await again.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:202@demo.local>' })).status).toBe(200);
    await waitFor(() => again.leg !== null && freeswitch.channels.at(-1)!.playbacks.length > 0, 5000, 'the first prompt');
    expect(await again.bye()).toBe(200);
  }, 30_000);

  it('a BYE right behind the ACK ends the call as the caller\'s hang-up (not by the IVR\'s timeouts), and FreeSWITCH\'s channel is released', async () => {
    // FakeCaller sends its ACK and then, at once, the BYE: drachtio-srf often reads both in one
    // chunk, before the engine has a listener on the new dialog (engine.ts checks dialog.connected).
    const endedByCaller = await metric('vmaccess_calls_total{outcome="ended_by_caller"}');
    const endedByServer = await metric('vmaccess_calls_total{outcome="ended_by_server"}');
    for (let i = 0; i < 3; i++) {
      const caller = newCaller();
      const channel = freeswitch.nextChannel();
      expect((await caller.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:202@demo.local>' })).status).toBe(200);
      expect(await caller.bye()).toBe(200);
      const ch = await channel;
      // Nothing left of it, the answering included (MAX_CALLS=1 counts a setup in progress too).
      await waitFor(() => engine().activeCalls === 0 && engine().setupsInProgress === 0 && ch.hungUp, 5000, 'the call to end and its channel to go');
      // The server never said goodbye to a caller who had gone: no BYE of its own.
      expect(caller.requests.filter((r) => r.method === 'BYE')).toEqual([]);
    }
    expect(await metric('vmaccess_calls_total{outcome="ended_by_caller"}')).toBe(endedByCaller + 3);
    expect(await metric('vmaccess_calls_total{outcome="ended_by_server"}')).toBe(endedByServer);
  }, 30_000);

  it('an untrusted source over INVITE_RATE_PER_SOURCE gets 503 with Retry-After; a trusted one is not limited', async () => {
    // 192.0.2.50 is outside TRUSTED_SIP_PEERS (127.0.0.0/8, ::1); one INVITE after another, so
    // MAX_CALLS=1 never counts two setups at once. 5555 is no access number: 404 when admitted.
    const scanner = new FakeCaller(drachtio, '192.0.2.50', 5060);
    const statuses: number[] = [];
    let limited: SipText | undefined;
    for (let i = 0; i < 3; i++) {
      const final = await scanner.invite({ requestUri: 'sip:5555@demo.local', from: '<sip:scanner@example.net>' });
      statuses.push(final.status ?? 0);
      if (final.status === 503) limited = final;
    }
    expect(statuses).toEqual([404, 404, 503]);
    expect(retryAfter(limited!)).toBeGreaterThanOrEqual(1);
    expect(retryAfter(limited!)).toBeLessThanOrEqual(2);
    expect(t.logs.records().some((r) => r.msg === 'INVITE refused: per-source INVITE rate exceeded' && r.source === '192.0.2.50')).toBe(true);
    const trusted = newCaller();
    for (let i = 0; i < 4; i++) expect((await trusted.invite({ requestUri: 'sip:5555@demo.local', from: '<sip:201@demo.local>' })).status).toBe(404);
  }, 30_000);

  it.skipIf(DATABASE_URL === undefined)('the store away at routing: 503 with Retry-After, a store error in /metrics; back: calls work', async () => {
    const before = await metric('vmaccess_store_errors_total');
    await proxy!.close();
    const caller = newCaller();
    const refused = await caller.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>' });
    expect(refused.status).toBe(503);
    expect(retryAfter(refused)).toBeGreaterThanOrEqual(1);
    expect(await metric('vmaccess_store_errors_total')).toBeGreaterThan(before);
    expect(freeswitch.channels.filter((c) => !c.hungUp)).toHaveLength(0);
    await proxy!.open();
    const again = newCaller();
    expect((await again.invite({ requestUri: 'sip:*97@demo.local', from: '<sip:201@demo.local>' })).status).toBe(200);
    expect(await again.bye()).toBe(200);
  }, 30_000);
});
