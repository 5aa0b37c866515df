/**
 * Message-waiting indication on the drachtio engine (RFC 3842 message-summary over RFC 6665),
 * against FakeDrachtioServer — drachtio's control protocol on a loopback TCP port, named as a
 * fake because drachtio-server does not run on this machine. The engine and the real
 * drachtio-srf 5.0.29 run unchanged: SUBSCRIBEs reach `srf.subscribe`, the 200 and the NOTIFYs go
 * back over the control connection, and the fake plays the phones that subscribe.
 *
 * The mailbox store is a small in-memory MwiBackend (the engine's own contract with the rest of
 * the server); FreeSWITCH is not needed for MWI and is left unreachable.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/log.js';
import type { MailboxCounts, MailboxRef, MwiBackend, Subscriber } from '../../../src/telephony/message-summary.js';
import { mailboxKey, type ExpiresPolicy } from '../../../src/telephony/mwi-policy.js';
import { DrachtioEngine } from '../../../src/telephony/drachtio/engine.js';
import type { CallRouter } from '../../../src/telephony/router.js';
import type { AccessCodeOperations, MessageOperations } from '../../../src/telephony/session.js';
import type { AudioStore } from '../../../src/messages/audio-store.js';
import { FakeDrachtioServer, type NetworkPeer } from '../../support/fakes/fake-drachtio-server.js';
import { FakeSubscriber, notifySummary } from '../../support/fakes/fake-subscriber.js';
import { header } from '../../support/fakes/sip-text.js';
import { freePort } from '../../support/ports.js';
import { LogCapture } from '../../support/test-server.js';
import { sleep, waitFor } from '../../support/wait.js';

const SECRET = 'fake-drachtio-secret';

/** Mailboxes in memory; `change()` is what a deposit or a listen does to the real store. */
class MemoryMwiBackend implements MwiBackend {
  readonly counts_ = new Map<string, MailboxCounts>();
  readonly contacts = new Map<string, string[]>();
  readonly #listeners: Array<(ref: MailboxRef) => void> = [];
  failResolve = false;
  failCounts = false;
  resolveCalls = 0;

  constructor() {
    this.counts_.set('201@demo.local', { new: 1, saved: 0 });
    this.counts_.set('202@demo.local', { new: 0, saved: 3 });
  }

  /** Who the engine said sent each SUBSCRIBE it resolved. */
  readonly subscribers: Subscriber[] = [];
  readonly #resyncListeners: Array<() => void> = [];

  async resolve(user: string, host: string, subscriber: Subscriber): Promise<MailboxRef | null> {
    this.resolveCalls += 1;
    this.subscribers.push(subscriber);
    if (this.failResolve) throw new Error('store unavailable');
    // An access number stands for the subscriber's own mailbox (the real backend's rule).
    if (user === '*97') {
      const who = subscriber.assertedUser ?? subscriber.fromUser ?? '';
      return this.counts_.has(`${who}@${host.toLowerCase()}`) ? { domain: host, mailbox: who } : null;
    }
    // The domain as the phone wrote it: matching changes to subscriptions must not care.
    return this.counts_.has(`${user}@${host.toLowerCase()}`) ? { domain: host, mailbox: user } : null;
  }

  async counts(ref: MailboxRef): Promise<MailboxCounts> {
    if (this.failCounts) throw new Error('store unavailable');
    return this.counts_.get(mailboxKey(ref)) ?? { new: 0, saved: 0 };
  }

  onChanged(listener: (ref: MailboxRef) => void): void {
    this.#listeners.push(listener);
  }

  onResync(listener: () => void): void {
    this.#resyncListeners.push(listener);
  }

  /** What the store's change feed does after it reconnected. */
  resync(): void {
    for (const l of this.#resyncListeners) l();
  }

  unsolicitedContacts(ref: MailboxRef): readonly string[] {
    return this.contacts.get(mailboxKey(ref)) ?? [];
  }

  change(ref: MailboxRef, counts: MailboxCounts): void {
    this.counts_.set(mailboxKey(ref), counts);
    for (const l of this.#listeners) l(ref);
  }
}

interface Stack {
  readonly drachtio: FakeDrachtioServer;
  readonly engine: DrachtioEngine;
  readonly backend: MemoryMwiBackend;
  readonly logs: LogCapture;
  stop(): Promise<void>;
}

/** A FakeDrachtioServer and a DrachtioEngine on it (TRUSTED_SIP_PEERS 127.0.0.1/32), connected. */
async function stack(opts: { mwi?: boolean; mwiExpires?: Partial<ExpiresPolicy> } = {}): Promise<Stack> {
  const drachtio = await FakeDrachtioServer.start({ secret: SECRET });
  const dataDir = await mkdtemp(join(tmpdir(), 'vmaccess-mwi-'));
  const config = loadConfig({
    SIP_ENGINE: 'drachtio', DATA_DIR: dataDir,
    DRACHTIO_HOST: '127.0.0.1', DRACHTIO_PORT: String(drachtio.port), DRACHTIO_SECRET: SECRET,
    FREESWITCH_HOST: '127.0.0.1', FREESWITCH_PORT: String(await freePort()),
    ESL_LISTEN_ADDRESS: '127.0.0.1', ESL_LISTEN_PORT: '0',
    TRUSTED_SIP_PEERS: '127.0.0.1/32',
  });
  const logs = new LogCapture();
  const backend = new MemoryMwiBackend();
  const unused = (): never => { throw new Error('no calls in these tests'); };
  const engine = new DrachtioEngine({
    config, logger: createLogger('debug', logs), maxRetryMs: 1000,
    router: { route: unused } as unknown as CallRouter,
    accessCodes: {} as AccessCodeOperations,
    messages: {} as MessageOperations,
    audio: {} as AudioStore,
    audioDir: join(dataDir, 'messages'),
    ...(opts.mwi === false ? {} : { mwi: backend }),
    ...(opts.mwiExpires !== undefined ? { mwiExpires: opts.mwiExpires } : {}),
  });
  await engine.start();
  await drachtio.waitForApp();
  if (opts.mwi !== false) await waitFor(() => drachtio.routes.has('subscribe'), 5000, 'route|subscribe');
  return {
    drachtio, engine, backend, logs,
    async stop() {
      await engine.close();
      await drachtio.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

describe('drachtio engine MWI against FakeDrachtioServer', () => {
  let s: Stack;
  let port = 5400;
  const phone = (address = '127.0.0.1'): FakeSubscriber => new FakeSubscriber(s.drachtio, address, port++);
  const live: FakeSubscriber[] = [];
  /** A subscribed phone (200 seen, first NOTIFY arrived). */
  async function subscribed(requestUri = 'sip:201@demo.local'): Promise<FakeSubscriber> {
    const p = phone();
    expect((await p.subscribe(requestUri)).status).toBe(200);
    await p.notify(1);
    live.push(p);
    return p;
  }

  beforeAll(async () => {
    s = await stack();
  });
  afterAll(async () => {
    await s?.stop();
  });
  afterEach(async () => {
    for (const p of live.splice(0)) if (p.leg !== null && !p.leg.ended) await p.unsubscribe();
    await waitFor(() => s.engine.mwiSubscriptions === 0, 5000, 'no subscriptions left');
    s.backend.failResolve = false;
    s.backend.failCounts = false;
    s.backend.contacts.clear();
  });

  it('asks drachtio-server for SUBSCRIBE (route|subscribe) besides INVITE', () => {
    expect([...s.drachtio.routes].sort()).toEqual(['invite', 'subscribe']);
  });

  it('403 for a SUBSCRIBE from outside TRUSTED_SIP_PEERS, before the store is asked', async () => {
    const before = s.backend.resolveCalls;
    const res = await phone('127.0.0.2').subscribe('sip:201@demo.local', { expires: '3600' });
    expect(res.status).toBe(403);
    expect(s.backend.resolveCalls).toBe(before);
  });

  it('489 Bad Event + Allow-Events: message-summary for another event package or none', async () => {
    for (const event of ['presence', null]) {
      const res = await phone().subscribe('sip:201@demo.local', { event });
      expect(res.status, String(event)).toBe(489);
      expect(header(res, 'allow-events')).toBe('message-summary');
    }
  });

  it('423 Interval Too Brief + Min-Expires: 60 for Expires below 60; 400 without Contact; 406 for an unacceptable Accept', async () => {
    const brief = await phone().subscribe('sip:201@demo.local', { expires: '30' });
    expect(brief.status).toBe(423);
    expect(header(brief, 'min-expires')).toBe('60');
    expect((await phone().subscribe('sip:201@demo.local', { contact: null })).status).toBe(400);
    expect((await phone().subscribe('sip:201@demo.local', { accept: 'application/pidf+xml' })).status).toBe(406);
  });

  it('404 for a Request-URI that names no mailbox', async () => {
    expect((await phone().subscribe('sip:299@demo.local')).status).toBe(404);
    expect((await phone().subscribe('sip:201@nowhere.example')).status).toBe(404);
  });

  it('accepts: 200 (not 202) with Expires: 3600, then NOTIFY active;expires=3600 with the RFC 3842 body', async () => {
    const p = phone();
    const res = await p.subscribe('sip:201@demo.local', { expires: '7200' });
    live.push(p);
    expect(res.status).toBe(200);
    expect(header(res, 'expires')).toBe('3600');
    const n = notifySummary(await p.notify(1));
    expect(n.event).toBe('message-summary');
    expect(n.state).toBe('active;expires=3600');
    expect(n.type).toBe('application/simple-message-summary');
    expect(n.body).toBe('Messages-Waiting: yes\r\nMessage-Account: sip:201@demo.local\r\nVoice-Message: 1/0 (0/0)\r\n');
    expect(s.engine.mwiSubscriptions).toBe(1);

    // Without Expires: the one-hour default; 202's counts.
    const q = phone();
    const res2 = await q.subscribe('sip:202@demo.local');
    live.push(q);
    expect(header(res2, 'expires')).toBe('3600');
    expect((await q.notify(1)).body).toContain('Messages-Waiting: no\r\nMessage-Account: sip:202@demo.local\r\nVoice-Message: 0/3 (0/0)\r\n');
  });

  it('an Event id parameter is echoed in the NOTIFYs', async () => {
    const p = phone();
    expect((await p.subscribe('sip:202@demo.local', { event: 'message-summary;id=17' })).status).toBe(200);
    live.push(p);
    expect(header(await p.notify(1), 'event')).toBe('message-summary;id=17');
  });

  it('a mailbox change NOTIFYs each subscriber of that mailbox once with the new counts (domain case-insensitive), nobody else; unsolicited contacts get an out-of-dialog NOTIFY', async () => {
    const a = await subscribed('sip:201@demo.local');
    const b = await subscribed('sip:201@Demo.Local');
    const other = await subscribed('sip:202@demo.local');
    const desk = new FakeSubscriber(s.drachtio, '127.0.0.1', 5399);
    s.drachtio.registerPeer('127.0.0.1:5399', desk);
    s.backend.contacts.set('201@demo.local', [desk.contact]);

    s.backend.change({ domain: 'demo.local', mailbox: '201' }, { new: 2, saved: 1 });
    for (const p of [a, b]) {
      const n = notifySummary(await p.notify(2));
      expect(n.state).toMatch(/^active;expires=(3600|359\d)$/);
      expect(n.body).toContain('Voice-Message: 2/1 (0/0)\r\n');
    }
    const unsolicited = await desk.notify(1);
    expect(desk.leg).toBeNull();
    expect(unsolicited.method).toBe('NOTIFY');
    expect(notifySummary(unsolicited)).toMatchObject({ event: 'message-summary', state: 'terminated', type: 'application/simple-message-summary' });
    expect(unsolicited.body).toBe('Messages-Waiting: yes\r\nMessage-Account: sip:201@demo.local\r\nVoice-Message: 2/1 (0/0)\r\n');

    await sleep(300);
    expect(a.notifies).toHaveLength(2);
    expect(b.notifies).toHaveLength(2);
    expect(other.notifies).toHaveLength(1);
    expect(desk.notifies).toHaveLength(1);
  });

  it('changes in quick succession collapse: the last NOTIFY has the last counts', async () => {
    const a = await subscribed();
    for (let i = 1; i <= 5; i++) s.backend.change({ domain: 'demo.local', mailbox: '201' }, { new: i, saved: 0 });
    await waitFor(() => a.latest()?.body.includes('Voice-Message: 5/0') === true, 5000, 'the last counts');
    await sleep(200);
    // The first round read 1/0; the four changes during it collapse into one more round.
    expect(a.notifies.length).toBeLessThanOrEqual(3);
    expect(a.latest()!.body).toContain('Voice-Message: 5/0');
    s.backend.change({ domain: 'demo.local', mailbox: '201' }, { new: 1, saved: 0 });
    await waitFor(() => a.latest()?.body.includes('Voice-Message: 1/0') === true, 5000, 'counts restored');
  });

  it('a refresh gets 200 with the new Expires and a NOTIFY; a too-brief refresh 423 and the subscription stays', async () => {
    const a = await subscribed();
    const res = await a.refresh('600');
    expect(res.status).toBe(200);
    expect(header(res, 'expires')).toBe('600');
    expect(notifySummary(await a.notify(2)).state).toMatch(/^active;expires=(600|59\d)$/);
    const brief = await a.refresh('5');
    expect(brief.status).toBe(423);
    expect(header(brief, 'min-expires')).toBe('60');
    expect(s.engine.mwiSubscriptions).toBe(1);
  });

  it('unsubscribe (Expires: 0): 2xx, then a final NOTIFY terminated with the counts; the subscription is gone', async () => {
    const a = await subscribed();
    const res = await a.unsubscribe();
    expect((res.status ?? 0) >= 200 && (res.status ?? 0) < 300).toBe(true);
    const n = notifySummary(await a.notify(2));
    expect(n.state).toBe('terminated;reason=timeout');
    expect(n.body).toContain('Voice-Message: 1/0');
    await waitFor(() => s.engine.mwiSubscriptions === 0, 5000, 'the subscription to go');
    expect(a.leg!.ended).toBe(true);
    s.backend.change({ domain: 'demo.local', mailbox: '201' }, { new: 1, saved: 0 });
    await sleep(200);
    expect(a.notifies).toHaveLength(2);
  });

  it('an initial SUBSCRIBE with Expires: 0 is a fetch: 200 Expires: 0 and one NOTIFY terminated with the state', async () => {
    const p = phone();
    const res = await p.subscribe('sip:202@demo.local', { expires: '0' });
    expect(res.status).toBe(200);
    expect(header(res, 'expires')).toBe('0');
    const n = notifySummary(await p.notify(1));
    expect(n.state).toBe('terminated;reason=timeout');
    expect(n.body).toContain('Voice-Message: 0/3');
    expect(s.engine.mwiSubscriptions).toBe(0);
  });

  for (const status of [481, 408]) {
    it(`a NOTIFY answered ${status} drops the subscription`, async () => {
      const a = await subscribed();
      a.notifyAnswer = { status, reason: status === 481 ? 'Call/Transaction Does Not Exist' : 'Request Timeout' };
      s.backend.change({ domain: 'demo.local', mailbox: '201' }, { new: 1, saved: 0 });
      await a.notify(2);
      await waitFor(() => s.engine.mwiSubscriptions === 0, 5000, 'the subscription to be dropped');
      s.backend.change({ domain: 'demo.local', mailbox: '201' }, { new: 1, saved: 0 });
      await sleep(200);
      expect(a.notifies).toHaveLength(2);
      a.leg!.ended = true; // the phone has forgotten it too: nothing to unsubscribe
    });
  }

  it('the mailbox store failing: 503 + Retry-After (resolve or counts), a refresh too; a failed change round is only logged', async () => {
    s.backend.failResolve = true;
    const r1 = await phone().subscribe('sip:201@demo.local');
    expect(r1.status).toBe(503);
    expect(header(r1, 'retry-after')).toBe('30');
    s.backend.failResolve = false;
    s.backend.failCounts = true;
    const r2 = await phone().subscribe('sip:201@demo.local');
    expect(r2.status).toBe(503);
    expect(header(r2, 'retry-after')).toBe('30');

    s.backend.failCounts = false;
    const a = await subscribed();
    s.backend.failCounts = true;
    const refresh = await a.refresh('600');
    expect(refresh.status).toBe(503);
    s.backend.change({ domain: 'demo.local', mailbox: '201' }, { new: 3, saved: 0 });
    await waitFor(() => s.logs.records().some((r) => r.msg === 'message counts unavailable: NOTIFYs skipped'), 5000, 'the log line');
    expect(a.notifies).toHaveLength(1);
    expect(s.engine.mwiSubscriptions).toBe(1);
    s.backend.failCounts = false;
    s.backend.counts_.set('201@demo.local', { new: 1, saved: 0 });
  });

  it('a SUBSCRIBE to the access number (*97) is resolved with the subscriber\'s identity: P-Asserted-Identity, else From', async () => {
    s.backend.counts_.set('202@demo.local', { new: 0, saved: 3 });
    const asserted = phone();
    const res = await asserted.subscribe('sip:*97@demo.local', { headers: [['P-Asserted-Identity', '<sip:202@demo.local>']] });
    expect(res.status).toBe(200);
    expect(s.backend.subscribers.at(-1)).toEqual({ assertedUser: '202', fromUser: 'phone' });
    expect(notifySummary(await asserted.notify(1)).body).toContain('Message-Account: sip:202@demo.local\r\nVoice-Message: 0/3');
    live.push(asserted);
    // The fake phone's From user ("phone") owns no mailbox: 404, as for any unknown mailbox.
    expect((await phone().subscribe('sip:*97@demo.local')).status).toBe(404);
    expect(s.backend.subscribers.at(-1)).toEqual({ assertedUser: undefined, fromUser: 'phone' });
  });

  it('a resync (the change feed reconnected) NOTIFYs every live subscription with the counts as they are now', async () => {
    s.backend.counts_.set('202@demo.local', { new: 0, saved: 3 });
    const a = await subscribed('sip:201@demo.local');
    const b = await subscribed('sip:202@demo.local');
    s.backend.counts_.set('201@demo.local', { new: 4, saved: 0 }); // changed while nobody listened
    s.backend.resync();
    expect(notifySummary(await a.notify(2)).body).toContain('Voice-Message: 4/0');
    expect(notifySummary(await b.notify(2)).body).toContain('Voice-Message: 0/3');
  });

  it('a refresh for a subscription the engine does not have (To with a tag, e.g. after a restart) gets 481', async () => {
    const sent = s.drachtio.sendRequest(phone(), 'SUBSCRIBE', {
      requestUri: 'sip:201@demo.local', from: '<sip:phone@127.0.0.1>', to: '<sip:201@demo.local>;tag=gone',
      headers: [['Event', 'message-summary'], ['Expires', '3600']],
    });
    expect((await sent.final).status).toBe(481);
    expect(s.drachtio.legOf(sent.callId)).toBeUndefined();
  });
});

describe('drachtio engine MWI: lifecycle', () => {
  const stacks: Stack[] = [];
  afterEach(async () => {
    for (const st of stacks.splice(0)) await st.stop();
  });

  it('without the mwi option no SUBSCRIBE route is asked for', async () => {
    const st = await stack({ mwi: false });
    stacks.push(st);
    await sleep(100);
    expect([...st.drachtio.routes]).toEqual(['invite']);
  });

  it('the expiry timer ends a subscription that is not refreshed: NOTIFY terminated;reason=timeout', async () => {
    const st = await stack({ mwiExpires: { maxS: 1, minS: 1 } });
    stacks.push(st);
    const p = new FakeSubscriber(st.drachtio, '127.0.0.1', 5500);
    const res = await p.subscribe('sip:201@demo.local', { expires: '3600' });
    expect(header(res, 'expires')).toBe('1');
    expect(notifySummary(await p.notify(1)).state).toBe('active;expires=1');
    const last = notifySummary(await p.notify(2, 4000));
    expect(last.state).toBe('terminated;reason=timeout');
    await waitFor(() => st.engine.mwiSubscriptions === 0, 2000, 'the subscription to go');
  });

  it('drain: SUBSCRIBE route withdrawn, live subscriptions get NOTIFY terminated;reason=noresource, new SUBSCRIBEs 503', async () => {
    const st = await stack();
    stacks.push(st);
    const phones = [new FakeSubscriber(st.drachtio, '127.0.0.1', 5501), new FakeSubscriber(st.drachtio, '127.0.0.1', 5502)];
    for (const p of phones) {
      expect((await p.subscribe('sip:201@demo.local')).status).toBe(200);
      await p.notify(1);
    }
    await st.engine.drain(1000);
    for (const p of phones) expect(notifySummary(await p.notify(2)).state).toBe('terminated;reason=noresource');
    await waitFor(() => !st.drachtio.routes.has('subscribe'), 2000, 'remove_route|subscribe');
    const late = await new FakeSubscriber(st.drachtio, '127.0.0.1', 5503).subscribe('sip:201@demo.local');
    expect(late.status).toBe(503);
    await waitFor(() => st.engine.mwiSubscriptions === 0, 2000, 'no subscriptions');
  });

  it('close without drain also ends the subscriptions (best effort) and does not wait for a phone that never answers', async () => {
    const st = await stack();
    stacks.push(st);
    const p = new FakeSubscriber(st.drachtio, '127.0.0.1', 5504);
    expect((await p.subscribe('sip:202@demo.local')).status).toBe(200);
    await p.notify(1);
    // The phone takes the last NOTIFY and never answers it: close() must still come back (a hang
    // fails this test by its timeout) with the subscription gone and drachtio-server left.
    const answer = p.onRequest.bind(p);
    (p as NetworkPeer).onRequest = (request) => {
      const response = answer(request); // records the NOTIFY
      return request.method === 'NOTIFY' ? new Promise<never>(() => undefined) : response;
    };
    await st.engine.close();
    expect(p.notifies).toHaveLength(2);
    expect(notifySummary(p.latest()!).state).toBe('terminated;reason=noresource');
    expect(st.engine.mwiSubscriptions).toBe(0);
    await waitFor(() => !st.drachtio.connected, 5000, 'the app to leave drachtio-server');
  });
});
