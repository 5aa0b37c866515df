/**
 * Message-waiting indication end to end over UDP on 127.0.0.1: a TestUac subscribes to a mailbox
 * of the embedded endpoint (RFC 6665 / RFC 3842) and answers the NOTIFYs. The notifier runs on a
 * manual clock, so an hour-long subscription expires when the test says so.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import {
  MessageSummaryNotifier,
  type MessageCounts,
  type MessageSummaryNotifierOptions,
  type NotifierClock,
} from '../../../src/telephony/embedded/mwi.js';
import { parseNameAddr, parseUri, SipEndpoint, SipRequest, SipResponse } from '../../../src/telephony/embedded/sip/index.js';
import { randomId, TestUac } from './test-uac.js';

const T1 = 40;
const DOMAIN = 'demo.local';

/** Timers that fire only when advance() moves the time past them. */
class ManualClock implements NotifierClock {
  private time = 0;
  private seq = 0;
  private readonly tasks = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.tasks.set(id, { at: this.time + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.tasks.delete(handle as number);
  }

  get pending(): number {
    return this.tasks.size;
  }

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.tasks) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.tasks.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = end;
  }
}

let endpoint: SipEndpoint;
let uac: TestUac;
let clock: ManualClock;
let notifier: MessageSummaryNotifier;
let trustAll = true;
const mailboxes = new Map<string, MessageCounts>([
  ['201', { new: 2, old: 8 }],
  ['202', { new: 0, old: 0 }],
  ['203', { new: 1, old: 0 }],
]);
let countReads = 0;

function notifierOptions(overrides: Partial<MessageSummaryNotifierOptions> = {}): MessageSummaryNotifierOptions {
  return {
    trusted: (address) => trustAll && address === '127.0.0.1',
    resolve: async (request) => {
      const uri = parseUri(request.uri);
      return uri.user !== undefined && mailboxes.has(uri.user) ? { domain: uri.host, mailbox: uri.user } : null;
    },
    counts: async (_domain, mailbox) => {
      countReads++;
      const counts = mailboxes.get(mailbox);
      if (!counts) throw new Error('no such mailbox');
      return { ...counts };
    },
    logger: silentLogger,
    clock,
    minExpires: 60,
    maxExpires: 3600,
    defaultExpires: 3600,
    minNotifyIntervalMs: 0,
    ...overrides,
  };
}

beforeAll(async () => {
  endpoint = new SipEndpoint({
    address: '127.0.0.1',
    port: 0,
    advertisedHost: '127.0.0.1',
    logger: silentLogger,
    timers: { T1, T2: 8 * T1, T4: 10 * T1 },
  });
  await endpoint.start();
  clock = new ManualClock();
  notifier = new MessageSummaryNotifier(endpoint, notifierOptions());
  uac = await TestUac.open(endpoint.local.port);
});

afterAll(async () => {
  await notifier?.close();
  await uac?.close();
  await endpoint?.close();
});

interface Subscription {
  callId: string;
  fromTag: string;
  toTag: string;
  cseq: number;
}

interface SubscribeSpec {
  mailbox?: string;
  /** null: no Expires header. */
  expires?: number | null;
  event?: string | null;
  accept?: string | null;
  extra?: string[];
}

function subscribeHeaders(spec: SubscribeSpec): string[] {
  const event = spec.event === undefined ? 'message-summary' : spec.event;
  const expires = spec.expires === undefined ? 3600 : spec.expires;
  const accept = spec.accept === undefined ? 'application/simple-message-summary' : spec.accept;
  return [
    `Contact: ${uac.contact}`,
    ...(event === null ? [] : [`Event: ${event}`]),
    ...(expires === null ? [] : [`Expires: ${expires}`]),
    ...(accept === null ? [] : [`Accept: ${accept}`]),
    ...(spec.extra ?? []),
  ];
}

/** Sends a new SUBSCRIBE; resolves with its final response. */
async function sendSubscribe(spec: SubscribeSpec = {}): Promise<{ callId: string; fromTag: string; response: SipResponse }> {
  const callId = `${randomId()}@127.0.0.1`;
  const fromTag = randomId();
  const mailbox = spec.mailbox ?? '201';
  await uac.request({
    method: 'SUBSCRIBE',
    uri: `sip:${mailbox}@${DOMAIN}`,
    toUri: `sip:${mailbox}@${DOMAIN}`,
    callId,
    fromTag,
    cseq: 1,
    headers: subscribeHeaders(spec),
  });
  const response = (await uac.next((m) => m instanceof SipResponse && m.callId === callId && m.status >= 200)) as SipResponse;
  return { callId, fromTag, response };
}

/** SUBSCRIBE → 200 → the first NOTIFY, answered 200. */
async function subscribe(spec: SubscribeSpec = {}): Promise<{ sub: Subscription; ok: SipResponse; notify: SipRequest }> {
  const { callId, fromTag, response } = await sendSubscribe(spec);
  expect(response.status).toBe(200);
  const notify = await nextNotify(callId);
  await uac.respondTo(notify, 200, 'OK');
  return { sub: { callId, fromTag, toTag: response.to.tag ?? '', cseq: 1 }, ok: response, notify };
}

/** A SUBSCRIBE in the subscription's dialog; resolves with its final response. */
async function resubscribe(sub: Subscription, spec: SubscribeSpec = {}): Promise<SipResponse> {
  sub.cseq++;
  await uac.request({
    method: 'SUBSCRIBE',
    uri: `sip:uac@127.0.0.1:${uac.port}`,
    toUri: `sip:${spec.mailbox ?? '201'}@${DOMAIN}`,
    callId: sub.callId,
    fromTag: sub.fromTag,
    toTag: sub.toTag,
    cseq: sub.cseq,
    headers: subscribeHeaders(spec),
  });
  return (await uac.next((m) => m instanceof SipResponse && m.callId === sub.callId && m.cseq.seq === sub.cseq && m.status >= 200)) as SipResponse;
}

const lastNotifySeq = new Map<string, number>();

/** The next NOTIFY of a call that is not a retransmission of one already taken. */
async function nextNotify(callId: string): Promise<SipRequest> {
  const after = lastNotifySeq.get(callId) ?? -1;
  const notify = (await uac.next(
    (m) => m instanceof SipRequest && m.method === 'NOTIFY' && m.callId === callId && m.cseq.seq > after,
  )) as SipRequest;
  lastNotifySeq.set(callId, notify.cseq.seq);
  return notify;
}

/** The NOTIFYs of a call (retransmissions counted once). */
function notifies(callId: string): SipRequest[] {
  const seen = new Map<number, SipRequest>();
  for (const m of uac.received((r) => r instanceof SipRequest && r.method === 'NOTIFY' && r.callId === callId)) {
    const request = m as SipRequest;
    if (!seen.has(request.cseq.seq)) seen.set(request.cseq.seq, request);
  }
  return [...seen.values()];
}

function summary(newCount: number, old: number, mailbox = '201'): string {
  return `Messages-Waiting: ${newCount > 0 ? 'yes' : 'no'}\r\nMessage-Account: sip:${mailbox}@${DOMAIN}\r\nVoice-Message: ${newCount}/${old} (0/0)\r\n`;
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The subscription's dialog has left the endpoint: a SUBSCRIBE in it gets 481 (RFC 3261 §12.2.2). */
async function expectDialogGone(sub: Subscription, mailbox = '201'): Promise<void> {
  expect((await resubscribe(sub, { mailbox })).status).toBe(481);
}

describe('message-summary notifier (RFC 3842 over RFC 6665)', () => {
  // Each test ends its subscriptions; the last answer may still be on its way when it returns.
  beforeEach(() => waitFor(() => notifier.size === 0 && endpoint.stats().dialogs === 0));

  it('OPTIONS lists SUBSCRIBE in Allow and message-summary in Allow-Events', async () => {
    const id = `o${randomId()}`;
    await uac.request({ method: 'OPTIONS', callId: id, fromTag: 'a', cseq: 1 });
    const ok = await uac.response(200, id);
    expect(ok.getAll('allow')).toContain('SUBSCRIBE');
    expect(ok.getAll('allow-events')).toEqual(['message-summary']);
  });

  it('a trusted SUBSCRIBE gets 200 (Expires, To tag, Contact) then a NOTIFY with the counts', async () => {
    const { callId, fromTag, response: ok } = await sendSubscribe({ expires: 3600 });
    expect(ok.status).toBe(200);
    expect(ok.get('expires')).toBe('3600');
    const toTag = ok.to.tag;
    expect(toTag).toBeTruthy();
    expect(parseUri(parseNameAddr(ok.get('contact') ?? '').uri)).toMatchObject({ host: '127.0.0.1', port: endpoint.local.port });
    expect(ok.getAll('allow-events')).toEqual(['message-summary']);
    expect(ok.getAll('allow')).toContain('SUBSCRIBE');

    const notify = await nextNotify(callId);
    expect(notify.uri).toBe(`sip:uac@127.0.0.1:${uac.port}`);
    expect(notify.from.tag).toBe(toTag);
    expect(notify.to.tag).toBe(fromTag);
    expect(notify.from.uri).toBe(`sip:201@${DOMAIN}`);
    expect(notify.cseq.method).toBe('NOTIFY');
    expect(notify.get('event')).toBe('message-summary');
    expect(notify.get('subscription-state')).toBe('active;expires=3600');
    expect(notify.get('content-type')).toBe('application/simple-message-summary');
    expect(notify.has('contact')).toBe(true);
    expect(notify.body.toString()).toBe(summary(2, 8));
    await uac.respondTo(notify, 200, 'OK');
    await waitFor(() => notifier.size === 1);

    const sub = { callId, fromTag, toTag: toTag ?? '', cseq: 1 };
    const bye = await resubscribe(sub, { expires: 0 });
    expect(bye.status).toBe(200);
    await uac.respondTo(await nextNotify(callId), 200, 'OK');
  });

  it('Expires above the maximum is cut down; no Expires means the default; an id is echoed', async () => {
    const long = await subscribe({ expires: 86_400 });
    expect(long.ok.get('expires')).toBe('3600');
    expect(long.notify.get('subscription-state')).toBe('active;expires=3600');
    const none = await subscribe({ expires: null, mailbox: '202', event: 'message-summary;id=7' });
    expect(none.ok.get('expires')).toBe('3600');
    expect(none.notify.get('event')).toBe('message-summary;id=7');
    expect(none.notify.body.toString()).toBe(summary(0, 0, '202'));
    // The id names the subscription: another one in the same dialog is refused (one per dialog).
    expect((await resubscribe(none.sub, { mailbox: '202', event: 'message-summary;id=8' })).status).toBe(403);

    expect((await resubscribe(long.sub, { expires: 0 })).status).toBe(200);
    await uac.respondTo(await nextNotify(long.sub.callId), 200, 'OK');
    expect((await resubscribe(none.sub, { expires: 0, mailbox: '202', event: 'message-summary;id=7' })).status).toBe(200);
    const last = await nextNotify(none.sub.callId);
    expect(last.get('event')).toBe('message-summary;id=7');
    await uac.respondTo(last, 200, 'OK');
  });

  it('changed() sends the new counts; a burst of changes never has two NOTIFYs in flight and ends on the last state', async () => {
    const { sub } = await subscribe({ mailbox: '203' });
    mailboxes.set('203', { new: 3, old: 1 });
    const done = notifier.changed(DOMAIN, '203');
    const first = await nextNotify(sub.callId);
    expect(first.body.toString()).toBe(summary(3, 1, '203'));
    expect(first.get('subscription-state')).toMatch(/^active;expires=\d+$/);

    // The first NOTIFY is left unanswered while the counts change four more times.
    const burst: Promise<void>[] = [];
    for (let i = 4; i <= 7; i++) {
      mailboxes.set('203', { new: i, old: 1 });
      burst.push(notifier.changed(DOMAIN, '203'));
    }
    await sleep(5 * T1);
    expect(notifies(sub.callId)).toHaveLength(2); // the initial one and `first`, retransmitted
    await uac.respondTo(first, 200, 'OK');
    await done;
    const last = await nextNotify(sub.callId);
    expect(last.cseq.seq).toBeGreaterThan(first.cseq.seq);
    expect(last.body.toString()).toBe(summary(7, 1, '203'));
    await uac.respondTo(last, 200, 'OK');
    await Promise.all(burst);
    await sleep(4 * T1);
    expect(notifies(sub.callId)).toHaveLength(3);

    // A mailbox nobody subscribed to: nothing is read, nothing sent.
    const reads = countReads;
    await notifier.changed(DOMAIN, '999');
    expect(countReads).toBe(reads);

    expect((await resubscribe(sub, { expires: 0, mailbox: '203' })).status).toBe(200);
    await uac.respondTo(await nextNotify(sub.callId), 200, 'OK');
  });

  it('refresh: 200 with the new Expires and a NOTIFY; the expiry timer restarts', async () => {
    const { sub } = await subscribe({ expires: 600 });
    clock.advance(500_000);
    const ok = await resubscribe(sub, { expires: 600 });
    expect(ok.status).toBe(200);
    expect(ok.get('expires')).toBe('600');
    expect(ok.to.tag).toBe(sub.toTag);
    const notify = await nextNotify(sub.callId);
    expect(notify.get('subscription-state')).toBe('active;expires=600');
    expect(notify.body.toString()).toBe(summary(2, 8));
    await uac.respondTo(notify, 200, 'OK');
    // Without the refresh it would have expired at 600 s.
    clock.advance(599_000);
    await sleep(3 * T1);
    expect(notifies(sub.callId)).toHaveLength(2);
    clock.advance(1_000);
    const expired = await nextNotify(sub.callId);
    expect(expired.get('subscription-state')).toBe('terminated;reason=timeout');
    await uac.respondTo(expired, 200, 'OK');
    await expectDialogGone(sub);
  });

  it('a refresh asking for too little gets 423 and the subscription goes on', async () => {
    const { sub } = await subscribe({ expires: 600 });
    const brief = await resubscribe(sub, { expires: 5 });
    expect(brief.status).toBe(423);
    expect(brief.get('min-expires')).toBe('60');
    const wrong = await resubscribe(sub, { event: 'presence' });
    expect(wrong.status).toBe(489);
    expect(notifier.size).toBeGreaterThanOrEqual(1);
    expect((await resubscribe(sub, { expires: 0 })).status).toBe(200);
    const last = await nextNotify(sub.callId);
    expect(last.get('subscription-state')).toBe('terminated;reason=timeout');
    await uac.respondTo(last, 200, 'OK');
  });

  it('unsubscribe (Expires: 0 in the dialog): 200, a terminated NOTIFY with the state, and the dialog is gone', async () => {
    const { sub } = await subscribe();
    expect(endpoint.stats().dialogs).toBe(1);
    const ok = await resubscribe(sub, { expires: 0 });
    expect(ok.status).toBe(200);
    expect(ok.get('expires')).toBe('0');
    const last = await nextNotify(sub.callId);
    expect(last.get('subscription-state')).toBe('terminated;reason=timeout');
    expect(last.body.toString()).toBe(summary(2, 8));
    await uac.respondTo(last, 200, 'OK');
    await waitFor(() => endpoint.stats().dialogs === 0);
    expect(notifier.size).toBe(0);
    await expectDialogGone(sub);
  });

  it('expiry without a refresh: NOTIFY terminated;reason=timeout, subscription and dialog gone', async () => {
    const { sub } = await subscribe({ expires: 60 });
    expect(notifier.size).toBe(1);
    clock.advance(59_999);
    await sleep(2 * T1);
    expect(notifies(sub.callId)).toHaveLength(1);
    clock.advance(1);
    const last = await nextNotify(sub.callId);
    expect(last.get('subscription-state')).toBe('terminated;reason=timeout');
    await uac.respondTo(last, 200, 'OK');
    expect(notifier.size).toBe(0);
    await expectDialogGone(sub);
  });

  it('an untrusted source gets 403', async () => {
    trustAll = false;
    try {
      const { response } = await sendSubscribe();
      expect(response.status).toBe(403);
    } finally {
      trustAll = true;
    }
  });

  it('another event package gets 489 with Allow-Events; so does a SUBSCRIBE without Event', async () => {
    const presence = await sendSubscribe({ event: 'presence' });
    expect(presence.response.status).toBe(489);
    expect(presence.response.getAll('allow-events')).toEqual(['message-summary']);
    const none = await sendSubscribe({ event: null });
    expect(none.response.status).toBe(489);
  });

  it('Expires 10 gets 423 with Min-Expires', async () => {
    const { response } = await sendSubscribe({ expires: 10 });
    expect(response.status).toBe(423);
    expect(response.get('min-expires')).toBe('60');
  });

  it('an Accept without application/simple-message-summary gets 406; a wildcard is fine', async () => {
    const { response } = await sendSubscribe({ accept: 'text/plain' });
    expect(response.status).toBe(406);
    const wildcard = await subscribe({ accept: 'application/*', expires: 0 });
    expect(wildcard.notify.get('subscription-state')).toBe('terminated;reason=timeout');
  });

  it('an unknown mailbox gets 404; a SUBSCRIBE without Contact gets 400', async () => {
    const { response } = await sendSubscribe({ mailbox: '999' });
    expect(response.status).toBe(404);
    const callId = `${randomId()}@127.0.0.1`;
    await uac.request({
      method: 'SUBSCRIBE',
      uri: `sip:201@${DOMAIN}`,
      callId,
      fromTag: 'a',
      cseq: 1,
      headers: ['Event: message-summary', 'Expires: 3600'],
    });
    await uac.response(400, callId);
  });

  it('Expires 0 on a new SUBSCRIBE is a fetch: 200, one NOTIFY terminated;reason=timeout, nothing lasting', async () => {
    const { callId, fromTag, response } = await sendSubscribe({ expires: 0 });
    expect(response.status).toBe(200);
    expect(response.get('expires')).toBe('0');
    const notify = await nextNotify(callId);
    expect(notify.get('subscription-state')).toBe('terminated;reason=timeout');
    expect(notify.body.toString()).toBe(summary(2, 8));
    expect(notifier.size).toBe(0);
    await uac.respondTo(notify, 200, 'OK');
    await waitFor(() => endpoint.stats().dialogs === 0);
    await notifier.changed(DOMAIN, '201');
    await sleep(3 * T1);
    expect(notifies(callId)).toHaveLength(1);
    await expectDialogGone({ callId, fromTag, toTag: response.to.tag ?? '', cseq: 1 });
  });

  it('a NOTIFY answered 481 ends the subscription', async () => {
    const { callId, response } = await sendSubscribe({ mailbox: '202' });
    expect(response.status).toBe(200);
    const notify = await nextNotify(callId);
    await uac.respondTo(notify, 481, 'Subscription Does Not Exist');
    await waitFor(() => notifier.size === 0);
    await waitFor(() => endpoint.stats().dialogs === 0);
    mailboxes.set('202', { new: 1, old: 0 });
    await notifier.changed(DOMAIN, '202');
    await sleep(3 * T1);
    expect(notifies(callId)).toHaveLength(1);
  });

  it('a NOTIFY answered 500 without Retry-After leaves the subscription; one never answered ends it (Timer F)', async () => {
    const { callId, fromTag, response } = await sendSubscribe({ mailbox: '202' });
    const sub = { callId, fromTag, toTag: response.to.tag ?? '', cseq: 1 };
    await uac.respondTo(await nextNotify(callId), 500, 'Server Internal Error');
    await sleep(3 * T1);
    expect(notifier.size).toBe(1);
    // The next change goes out; this time nobody answers.
    mailboxes.set('202', { new: 4, old: 0 });
    await notifier.changed(DOMAIN, '202');
    expect(notifier.size).toBe(0);
    expect(notifies(callId)).toHaveLength(2);
    await expectDialogGone(sub, '202');
  });

  it('unsolicited NOTIFY: out of any dialog to a configured contact, with the counts', async () => {
    const listener = await TestUac.open(endpoint.local.port);
    try {
      listener.autoRespond('NOTIFY', 200, 'OK');
      const status = await notifier.unsolicited(`sip:201@127.0.0.1:${listener.port}`, DOMAIN, '201');
      expect(status).toBe(200);
      const [notify] = listener.received((m) => m instanceof SipRequest && m.method === 'NOTIFY') as SipRequest[];
      expect(notify).toBeDefined();
      expect(notify!.uri).toBe(`sip:201@127.0.0.1:${listener.port}`);
      expect(notify!.to.uri).toBe(`sip:201@${DOMAIN}`);
      expect(notify!.to.tag).toBeUndefined();
      expect(notify!.from.tag).toBeTruthy();
      expect(notify!.cseq).toEqual({ seq: 1, method: 'NOTIFY' });
      expect(notify!.get('event')).toBe('message-summary');
      expect(notify!.has('subscription-state')).toBe(true);
      expect(notify!.has('contact')).toBe(true);
      expect(notify!.get('content-type')).toBe('application/simple-message-summary');
      expect(notify!.body.toString()).toBe(summary(2, 8));
      // A contact that does not answer: 408 after Timer F.
      const silent = await TestUac.open(endpoint.local.port);
      const port = silent.port;
      await silent.close();
      expect([408, 503]).toContain(await notifier.unsolicited(`sip:201@127.0.0.1:${port}`, DOMAIN, '201'));
    } finally {
      await listener.close();
    }
  });

  it('rate limit: change NOTIFYs of one subscription are at least minNotifyIntervalMs apart, SUBSCRIBE answers are not', async () => {
    await notifier.close();
    notifier = new MessageSummaryNotifier(endpoint, notifierOptions({ minNotifyIntervalMs: 1000 }));
    const { sub } = await subscribe({ mailbox: '203' });
    mailboxes.set('203', { new: 9, old: 0 });
    const done = notifier.changed(DOMAIN, '203');
    await sleep(3 * T1);
    expect(notifies(sub.callId)).toHaveLength(1);
    clock.advance(1000);
    const notify = await nextNotify(sub.callId);
    expect(notify.body.toString()).toBe(summary(9, 0, '203'));
    await uac.respondTo(notify, 200, 'OK');
    await done;
    // A refresh right after is answered with a NOTIFY at once (RFC 6665 §4.2.2).
    expect((await resubscribe(sub, { mailbox: '203' })).status).toBe(200);
    await uac.respondTo(await nextNotify(sub.callId), 200, 'OK');
    expect((await resubscribe(sub, { mailbox: '203', expires: 0 })).status).toBe(200);
    await uac.respondTo(await nextNotify(sub.callId), 200, 'OK');
  });

  it('close(): every subscription gets terminated;reason=noresource, SUBSCRIBE is 405 again, nothing is left behind', async () => {
    const first = await subscribe({ mailbox: '201' });
    const second = await subscribe({ mailbox: '202' });
    expect(notifier.size).toBe(2);
    const undo = uac.autoRespond('NOTIFY', 200, 'OK');
    try {
      await notifier.close();
    } finally {
      undo();
    }
    for (const { sub } of [first, second]) {
      const last = notifies(sub.callId).at(-1);
      expect(last?.get('subscription-state')).toBe('terminated;reason=noresource');
    }
    expect(notifier.size).toBe(0);
    expect(clock.pending).toBe(0);

    const { response } = await sendSubscribe();
    expect(response.status).toBe(405);
    expect(response.getAll('allow')).not.toContain('SUBSCRIBE');
    expect(endpoint.allowEvents).toEqual([]);

    await waitFor(() => {
      const s = endpoint.stats();
      return s.serverTransactions === 0 && s.clientTransactions === 0 && s.dialogs === 0;
    });
    expect(endpoint.stats()).toEqual({ serverTransactions: 0, clientTransactions: 0, dialogs: 0 });
  });
});
