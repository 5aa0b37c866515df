/**
 * The embedded engine's message-waiting notifier with an in-memory MwiBackend, over UDP on
 * 127.0.0.1: who may subscribe (trusted peers, existing mailboxes), what the NOTIFY says
 * (RFC 3842 §5.2 body), that a change reaches the subscribers of that mailbox only (tenants
 * apart), unsolicited NOTIFYs to a configured contact, the subscription cap, and a store that
 * fails (503, no crash).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import type { MailboxCounts, MailboxRef, MwiBackend } from '../../../src/telephony/message-summary.js';
import { MessageWaitingNotifier } from '../../../src/telephony/embedded/message-waiting.js';
import { SipEndpoint, SipRequest, SipResponse } from '../../../src/telephony/embedded/sip/index.js';
import { randomId, TestUac } from '../sip/test-uac.js';

const T1 = 40;
const MAX_SUBSCRIPTIONS = 4;

const key = (ref: MailboxRef): string => `${ref.mailbox}@${ref.domain.toLowerCase()}`;

class MemoryBackend implements MwiBackend {
  readonly mailboxes = new Map<string, MailboxCounts>([
    ['201@demo.local', { new: 1, saved: 0 }],
    ['202@demo.local', { new: 0, saved: 2 }],
    ['201@other.local', { new: 5, saved: 5 }],
  ]);
  readonly contacts = new Map<string, string[]>();
  failResolve = false;
  private readonly listeners: Array<(ref: MailboxRef) => void> = [];

  async resolve(user: string, host: string): Promise<MailboxRef | null> {
    if (this.failResolve) throw new Error('store down');
    const ref = { domain: host.toLowerCase(), mailbox: user };
    return this.mailboxes.has(key(ref)) ? ref : null;
  }

  async counts(ref: MailboxRef): Promise<MailboxCounts> {
    const counts = this.mailboxes.get(key(ref));
    if (!counts) throw new Error('no such mailbox');
    return counts;
  }

  onChanged(listener: (ref: MailboxRef) => void): void {
    this.listeners.push(listener);
  }

  unsolicitedContacts(ref: MailboxRef): readonly string[] {
    return this.contacts.get(key(ref)) ?? [];
  }

  change(ref: MailboxRef, counts: MailboxCounts): void {
    this.mailboxes.set(key(ref), counts);
    for (const listener of this.listeners) listener(ref);
  }
}

let endpoint: SipEndpoint;
let uac: TestUac;
let backend: MemoryBackend;
let notifier: MessageWaitingNotifier;
let trusted = true;

beforeAll(async () => {
  endpoint = new SipEndpoint({
    address: '127.0.0.1', port: 0, advertisedHost: '127.0.0.1', logger: silentLogger,
    timers: { T1, T2: 8 * T1, T4: 10 * T1 },
  });
  await endpoint.start();
  backend = new MemoryBackend();
  notifier = new MessageWaitingNotifier({
    endpoint, backend, logger: silentLogger, isTrusted: () => trusted,
    maxSubscriptions: MAX_SUBSCRIPTIONS, minNotifyIntervalMs: 0,
  });
  uac = await TestUac.open(endpoint.local.port);
  uac.autoRespond('NOTIFY', 200, 'OK');
});

afterAll(async () => {
  await notifier?.close();
  await uac?.close();
  await endpoint?.close();
});

interface Sub {
  callId: string;
  fromTag: string;
  toTag: string;
  cseq: number;
  aor: string;
}

async function sendSubscribe(aor: string, expires = 600): Promise<{ sub: Sub; response: SipResponse }> {
  const callId = `${randomId()}@127.0.0.1`;
  const fromTag = randomId();
  await uac.request({
    method: 'SUBSCRIBE', uri: `sip:${aor}`, toUri: `sip:${aor}`, callId, fromTag, cseq: 1,
    headers: [`Contact: ${uac.contact}`, 'Event: message-summary', `Expires: ${expires}`, 'Accept: application/simple-message-summary'],
  });
  const response = (await uac.next((m) => m instanceof SipResponse && m.callId === callId && m.status >= 200)) as SipResponse;
  return { sub: { callId, fromTag, toTag: response.to.tag ?? '', cseq: 1, aor }, response };
}

/** SUBSCRIBE → 200 → the first NOTIFY. */
async function subscribe(aor: string): Promise<{ sub: Sub; notify: SipRequest }> {
  const { sub, response } = await sendSubscribe(aor);
  expect(response.status).toBe(200);
  return { sub, notify: await notifyOf(sub) };
}

function notifyOf(sub: Sub, after = 0): Promise<SipRequest> {
  return uac.next((m) => m instanceof SipRequest && m.method === 'NOTIFY' && m.callId === sub.callId && m.cseq.seq > after) as Promise<SipRequest>;
}

async function unsubscribe(sub: Sub): Promise<void> {
  sub.cseq++;
  await uac.request({
    method: 'SUBSCRIBE', uri: `sip:uac@127.0.0.1:${uac.port}`, toUri: `sip:${sub.aor}`, callId: sub.callId,
    fromTag: sub.fromTag, toTag: sub.toTag, cseq: sub.cseq,
    headers: [`Contact: ${uac.contact}`, 'Event: message-summary', 'Expires: 0'],
  });
  await uac.response(200, sub.callId, 'SUBSCRIBE');
  const last = (await uac.next((m) => m instanceof SipRequest && m.method === 'NOTIFY' && m.callId === sub.callId
    && (m.get('subscription-state') ?? '').startsWith('terminated'))) as SipRequest;
  expect(last.get('subscription-state')).toBe('terminated;reason=timeout');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(20);
  }
}

describe('MessageWaitingNotifier (embedded engine, MwiBackend)', () => {
  beforeEach(async () => {
    trusted = true;
    backend.failResolve = false;
    await waitFor(() => notifier.subscriptions === 0 && endpoint.stats().dialogs === 0);
  });

  it('a trusted subscriber gets 200, then a NOTIFY with the RFC 3842 summary of the mailbox', async () => {
    const { sub, notify } = await subscribe('201@demo.local');
    expect(notify.get('event')).toBe('message-summary');
    // The time left, in whole seconds (RFC 6665 §4.2.2), rounded down on the real clock.
    expect(notify.get('subscription-state')).toMatch(/^active;expires=(599|600)$/);
    expect(notify.get('content-type')).toBe('application/simple-message-summary');
    const body = notify.body.toString();
    expect(body).toContain('Messages-Waiting: yes\r\n');
    expect(body).toContain('Message-Account: sip:201@demo.local\r\n');
    expect(body).toMatch(/^Voice-Message: 1\/0\b/m);
    expect(notifier.subscriptions).toBe(1);
    await unsubscribe(sub);
  });

  it('an untrusted source gets 403; an unknown mailbox 404; neither leaves anything behind', async () => {
    trusted = false;
    expect((await sendSubscribe('201@demo.local')).response.status).toBe(403);
    trusted = true;
    expect((await sendSubscribe('299@demo.local')).response.status).toBe(404);
    expect((await sendSubscribe('202@other.local')).response.status).toBe(404);
    expect(notifier.subscriptions).toBe(0);
    expect(endpoint.stats().dialogs).toBe(0);
  });

  it('a change NOTIFYs every subscriber of that mailbox (domain in any case), and no other mailbox or tenant', async () => {
    const a = await subscribe('201@demo.local');
    const b = await subscribe('201@demo.local');
    const other = await subscribe('202@demo.local');
    const tenant = await subscribe('201@other.local');
    expect(tenant.notify.body.toString()).toMatch(/^Voice-Message: 5\/5\b/m);

    backend.change({ domain: 'Demo.LOCAL', mailbox: '201' }, { new: 3, saved: 1 });
    for (const s of [a, b]) {
      const changed = await notifyOf(s.sub, s.notify.cseq.seq);
      expect(changed.get('subscription-state')).toMatch(/^active;expires=\d+$/);
      expect(changed.body.toString()).toMatch(/^Voice-Message: 3\/1\b/m);
      expect(changed.body.toString()).toContain('Messages-Waiting: yes');
    }
    await sleep(300);
    const later = (s: { sub: Sub; notify: SipRequest }): SipRequest[] => uac.received((m) =>
      m instanceof SipRequest && m.method === 'NOTIFY' && m.callId === s.sub.callId && m.cseq.seq > s.notify.cseq.seq) as SipRequest[];
    expect(later(other)).toEqual([]);
    expect(later(tenant)).toEqual([]);

    backend.change({ domain: 'demo.local', mailbox: '201' }, { new: 0, saved: 4 });
    const cleared = await notifyOf(a.sub, a.notify.cseq.seq + 1);
    expect(cleared.body.toString()).toContain('Messages-Waiting: no');
    expect(cleared.body.toString()).toMatch(/^Voice-Message: 0\/4\b/m);
    for (const s of [a, b, other, tenant]) await unsubscribe(s.sub);
    backend.mailboxes.set('201@demo.local', { new: 1, saved: 0 });
  });

  it('unsolicited: a configured contact gets a NOTIFY outside any dialog on every change', async () => {
    const phone = await TestUac.open(endpoint.local.port);
    phone.autoRespond('NOTIFY', 200, 'OK');
    try {
      backend.contacts.set('202@demo.local', [`sip:202@127.0.0.1:${phone.port}`]);
      backend.change({ domain: 'demo.local', mailbox: '202' }, { new: 2, saved: 2 });
      const notify = (await phone.next((m) => m instanceof SipRequest && m.method === 'NOTIFY')) as SipRequest;
      expect(notify.uri).toBe(`sip:202@127.0.0.1:${phone.port}`);
      expect(notify.to.uri).toBe('sip:202@demo.local');
      expect(notify.to.tag).toBeUndefined();
      expect(notify.from.tag).toBeTruthy();
      expect(notify.get('event')).toBe('message-summary');
      // No subscription behind it (RFC 6665 §8.2.3 still wants the header).
      expect(notify.get('subscription-state')).toBe('terminated');
      expect(notify.get('content-type')).toBe('application/simple-message-summary');
      expect(notify.body.toString()).toBe('Messages-Waiting: yes\r\nMessage-Account: sip:202@demo.local\r\nVoice-Message: 2/2 (0/0)\r\n');
      // Other mailboxes' changes do not reach it.
      backend.change({ domain: 'demo.local', mailbox: '201' }, { new: 1, saved: 0 });
      await sleep(300);
      expect(phone.received((m) => m instanceof SipRequest && m.method === 'NOTIFY')).toHaveLength(1);
      await waitFor(() => endpoint.stats().clientTransactions === 0);
    } finally {
      backend.contacts.clear();
      backend.mailboxes.set('202@demo.local', { new: 0, saved: 2 });
      await phone.close();
    }
  });

  it('a store that cannot answer: 503 with Retry-After, and the next SUBSCRIBE is served', async () => {
    backend.failResolve = true;
    const { response } = await sendSubscribe('201@demo.local');
    expect(response.status).toBe(503);
    expect(response.get('retry-after')).toBe('30');
    backend.failResolve = false;
    const { sub } = await subscribe('201@demo.local');
    await unsubscribe(sub);
  });

  it(`more than ${MAX_SUBSCRIPTIONS} live subscriptions: 503 with Retry-After`, async () => {
    const subs: Sub[] = [];
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) subs.push((await subscribe('202@demo.local')).sub);
    expect(notifier.subscriptions).toBe(MAX_SUBSCRIPTIONS);
    const over = await sendSubscribe('202@demo.local');
    expect(over.response.status).toBe(503);
    expect(over.response.has('retry-after')).toBe(true);
    // Untrusted sources still hear 403, whatever the load.
    trusted = false;
    expect((await sendSubscribe('202@demo.local')).response.status).toBe(403);
    trusted = true;
    for (const sub of subs) await unsubscribe(sub);
  });
});

describe('MessageWaitingNotifier close()', () => {
  it('ends the subscriptions with reason=noresource, then SUBSCRIBE is no longer served', async () => {
    await waitFor(() => notifier.subscriptions === 0 && endpoint.stats().dialogs === 0);
    const { sub } = await subscribe('201@demo.local');
    const closed = notifier.close();
    const last = (await uac.next((m) => m instanceof SipRequest && m.method === 'NOTIFY' && m.callId === sub.callId
      && (m.get('subscription-state') ?? '').startsWith('terminated'))) as SipRequest;
    expect(last.get('subscription-state')).toBe('terminated;reason=noresource');
    await closed;
    expect(notifier.subscriptions).toBe(0);
    expect((await sendSubscribe('201@demo.local')).response.status).toBe(405);
    // Changes after close send nothing.
    const before = uac.received((m) => m instanceof SipRequest && m.method === 'NOTIFY').length;
    backend.change({ domain: 'demo.local', mailbox: '201' }, { new: 9, saved: 9 });
    await sleep(200);
    expect(uac.received((m) => m instanceof SipRequest && m.method === 'NOTIFY')).toHaveLength(before);
  });
});

describe('vmaccess_mwi_subscriptions', () => {
  it('reports what the engine says, and 0 for an engine without MWI', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const source = { activeCalls: () => 0, rtpPacketsSent: () => 0, rtpLateTicks: () => 0, rtpSkippedSlots: () => 0 };
    metrics.setMediaSource(source);
    expect(await metrics.text()).toMatch(/^vmaccess_mwi_subscriptions 0$/m);
    metrics.setMediaSource({ ...source, mwiSubscriptions: () => 3 });
    expect(await metrics.text()).toMatch(/^vmaccess_mwi_subscriptions 3$/m);
  });
});
