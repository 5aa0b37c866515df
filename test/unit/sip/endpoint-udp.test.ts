import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import {
  parseNameAddr,
  parseUri,
  SipEndpoint,
  SipRequest,
  SipResponse,
  type Dialog,
  type IncomingInvite,
} from '../../../src/telephony/embedded/sip/index.js';
import { randomId, TestUac } from './test-uac.js';

const T1 = 40;
const SDP_OFFER = 'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';
const SDP_ANSWER = 'v=0\r\no=vmaccess 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0\r\n';

let endpoint: SipEndpoint;
let uac: TestUac;
/** What the test wants done with the next INVITE. */
let inviteHandler: (invite: IncomingInvite) => void = (invite) => invite.reject(480, 'Temporarily Unavailable');

beforeAll(async () => {
  endpoint = new SipEndpoint({
    address: '127.0.0.1',
    port: 0,
    advertisedHost: '127.0.0.1',
    logger: silentLogger,
    timers: { T1, T2: 8 * T1, T4: 10 * T1 },
  });
  await endpoint.start();
  endpoint.onInvite = (invite) => inviteHandler(invite);
  uac = await TestUac.open(endpoint.local.port);
});

afterAll(async () => {
  await uac?.close();
  await endpoint?.close();
});

interface Call {
  callId: string;
  fromTag: string;
  branch: string;
}

function newCall(): Call {
  return { callId: `${randomId()}@127.0.0.1`, fromTag: randomId(), branch: `z9hG4bK${randomId()}` };
}

function sendInvite(call: Call, extra: string[] = [], body = SDP_OFFER): Promise<void> {
  return uac.request({
    method: 'INVITE',
    branch: call.branch,
    callId: call.callId,
    fromTag: call.fromTag,
    cseq: 1,
    headers: [`Contact: ${uac.contact}`, ...(body ? ['Content-Type: application/sdp'] : []), ...extra],
    body,
  });
}

function sendAck(call: Call, toTag: string): Promise<void> {
  return uac.request({ method: 'ACK', callId: call.callId, fromTag: call.fromTag, toTag, cseq: 1 });
}

/** INVITE → 100 → 200 → ACK; resolves with the dialog on both sides. */
async function establish(): Promise<{ call: Call; dialog: Dialog; toTag: string }> {
  const call = newCall();
  const accepted = new Promise<Dialog>((resolve, reject) => {
    inviteHandler = (invite) => invite.accept({ contentType: 'application/sdp', content: SDP_ANSWER }).then(resolve, reject);
  });
  await sendInvite(call);
  await uac.response(100, call.callId);
  const ok = await uac.response(200, call.callId, 'INVITE');
  const toTag = ok.to.tag ?? '';
  await sendAck(call, toTag);
  return { call, dialog: await accepted, toTag };
}

/** Our side hangs up; the UAC answers the BYE. */
async function hangUp(dialog: Dialog, call: Call): Promise<void> {
  const done = dialog.bye();
  await uac.respondTo(await uac.incoming('BYE', call.callId), 200, 'OK');
  await done;
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SipEndpoint over UDP (end to end)', () => {
  it('INVITE → 100 Trying + 200 OK (To tag, Contact, Allow, Supported, SDP), retransmitted until the ACK', async () => {
    const call = newCall();
    let incoming: IncomingInvite | undefined;
    let accepted: Promise<Dialog> | undefined;
    inviteHandler = (invite) => {
      incoming = invite;
      accepted = invite.accept({ contentType: 'application/sdp', content: SDP_ANSWER });
    };
    await sendInvite(call);
    const trying = await uac.response(100, call.callId);
    expect(trying.to.tag).toBeUndefined();
    const ok = await uac.response(200, call.callId, 'INVITE');
    expect(incoming?.request.body.toString()).toBe(SDP_OFFER);
    const toTag = ok.to.tag;
    expect(toTag).toBeTruthy();
    expect(parseUri(parseNameAddr(ok.get('contact') ?? '').uri)).toMatchObject({ host: '127.0.0.1', port: endpoint.local.port });
    expect(ok.getAll('allow')).toEqual(expect.arrayContaining(['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS']));
    expect(ok.has('supported')).toBe(true);
    expect(ok.mediaType).toBe('application/sdp');
    expect(ok.body.toString()).toBe(SDP_ANSWER);
    // No ACK yet: the 200 comes again (§13.3.1.4).
    await uac.response(200, call.callId, 'INVITE');
    await uac.response(200, call.callId, 'INVITE');
    await sendAck(call, toTag ?? '');
    const dialog = await accepted!;
    expect(dialog.ack).toBeInstanceOf(SipRequest);
    expect(dialog.remoteTag).toBe(call.fromTag);
    expect(dialog.localTag).toBe(toTag);
    expect(dialog.remoteTarget).toBe(`sip:uac@127.0.0.1:${uac.port}`);
    // Retransmissions stop after the ACK (one may still be in flight: let it land first).
    await new Promise((r) => setTimeout(r, 2 * T1));
    const count = uac.received((m) => m instanceof SipResponse && m.status === 200 && m.callId === call.callId).length;
    await new Promise((r) => setTimeout(r, 20 * T1));
    expect(uac.received((m) => m instanceof SipResponse && m.status === 200 && m.callId === call.callId)).toHaveLength(count);

    // BYE from the caller: 200, 'bye' and 'terminated'.
    const terminated = new Promise<string>((resolve) => dialog.once('terminated', resolve));
    let byeSeen = false;
    dialog.on('bye', () => (byeSeen = true));
    await uac.request({ method: 'BYE', callId: call.callId, fromTag: call.fromTag, toTag, cseq: 2 });
    await uac.response(200, call.callId, 'BYE');
    expect(await terminated).toBe('remoteBye');
    expect(byeSeen).toBe(true);
    expect(dialog.state).toBe('terminated');
  });

  it('a 2xx retransmitted INVITE is absorbed; a delayed offer gets its answer in the ACK', async () => {
    const call = newCall();
    let invites = 0;
    const accepted = new Promise<Dialog>((resolve, reject) => {
      inviteHandler = (invite) => {
        invites++;
        invite.accept({ contentType: 'application/sdp', content: SDP_ANSWER }).then(resolve, reject);
      };
    });
    await sendInvite(call, [], '');
    const ok = await uac.response(200, call.callId, 'INVITE');
    await sendInvite(call, [], ''); // retransmission: same branch
    await uac.request({
      method: 'ACK',
      callId: call.callId,
      fromTag: call.fromTag,
      toTag: ok.to.tag ?? '',
      cseq: 1,
      headers: ['Content-Type: application/sdp'],
      body: SDP_OFFER,
    });
    const dialog = await accepted;
    expect(dialog.ack?.body.toString()).toBe(SDP_OFFER);
    expect(invites).toBe(1);
    await hangUp(dialog, call);
  });

  it('BYE from our side: the request follows the dialog state and bye() resolves on the 200', async () => {
    const { call, dialog, toTag } = await establish();
    const reasons: string[] = [];
    dialog.on('terminated', (reason: string) => reasons.push(reason));
    const done = dialog.bye();
    expect(dialog.bye()).toBe(done); // idempotent
    const bye = await uac.incoming('BYE', call.callId);
    expect(bye.uri).toBe(`sip:uac@127.0.0.1:${uac.port}`);
    expect(bye.from.tag).toBe(toTag);
    expect(bye.to.tag).toBe(call.fromTag);
    expect(bye.cseq.method).toBe('BYE');
    expect(bye.maxForwards).toBe(70);
    expect(bye.topVia.branch?.startsWith('z9hG4bK')).toBe(true);
    expect(bye.topVia.rport).toBeNull();
    await uac.respondTo(bye, 200, 'OK');
    await done;
    expect(reasons).toEqual(['localBye']);
  });

  it('in-dialog INFO reaches the listener; OPTIONS in the dialog is answered; a stale CSeq gets 500; re-INVITE without listener 488', async () => {
    const { call, dialog, toTag } = await establish();
    dialog.on('info', (req: SipRequest, respond: (s: number, r: string) => void) => {
      expect(req.body.toString()).toBe('Signal=5\r\nDuration=160\r\n');
      respond(200, 'OK');
    });
    await uac.request({
      method: 'INFO',
      callId: call.callId,
      fromTag: call.fromTag,
      toTag,
      cseq: 5,
      headers: ['Content-Type: application/dtmf-relay'],
      body: 'Signal=5\r\nDuration=160\r\n',
    });
    await uac.response(200, call.callId, 'INFO');
    await uac.request({ method: 'OPTIONS', callId: call.callId, fromTag: call.fromTag, toTag, cseq: 6 });
    expect((await uac.response(200, call.callId, 'OPTIONS')).has('allow')).toBe(true);
    await uac.request({ method: 'INFO', callId: call.callId, fromTag: call.fromTag, toTag, cseq: 3 });
    await uac.response(500, call.callId, 'INFO');
    await uac.request({ method: 'INVITE', callId: call.callId, fromTag: call.fromTag, toTag, cseq: 7, headers: [`Contact: ${uac.contact}`] });
    await uac.response(488, call.callId, 'INVITE');
    await hangUp(dialog, call);
  });

  it('CANCEL before the answer: 200 to the CANCEL, 487 to the INVITE, "cancel" emitted, accept() refused', async () => {
    const call = newCall();
    let incoming: IncomingInvite | undefined;
    inviteHandler = (invite) => {
      incoming = invite;
      invite.provisional(180, 'Ringing');
    };
    await sendInvite(call);
    const ringing = await uac.response(180, call.callId);
    const cancelled = new Promise<void>((resolve) => incoming?.once('cancel', resolve));
    await uac.request({ method: 'CANCEL', branch: call.branch, callId: call.callId, fromTag: call.fromTag, cseq: 1 });
    const okCancel = await uac.response(200, call.callId, 'CANCEL');
    const terminated = await uac.response(487, call.callId, 'INVITE');
    await cancelled;
    expect(incoming?.cancelled).toBe(true);
    // "the To tag of the response to the CANCEL and the To tag in the response to the original request SHOULD be the same" (§9.2)
    expect(okCancel.to.tag).toBe(ringing.to.tag);
    expect(terminated.to.tag).toBe(ringing.to.tag);
    await expect(incoming!.accept(null)).rejects.toThrow(/cancelled/);
    // ACK for the 487 uses the INVITE's branch (§17.1.1.3).
    await uac.request({ method: 'ACK', branch: call.branch, callId: call.callId, fromTag: call.fromTag, toTag: terminated.to.tag ?? '', cseq: 1 });
  });

  it('CANCEL for an unknown transaction gets 481', async () => {
    const call = newCall();
    await uac.request({ method: 'CANCEL', branch: call.branch, callId: call.callId, fromTag: call.fromTag, cseq: 1 });
    await uac.response(481, call.callId, 'CANCEL');
  });

  it('reject(): 486 is retransmitted until the ACK', async () => {
    const call = newCall();
    inviteHandler = (invite) => invite.reject(486, 'Busy Here');
    await sendInvite(call);
    const busy = await uac.response(486, call.callId);
    await uac.response(486, call.callId); // Timer G
    await uac.request({ method: 'ACK', branch: call.branch, callId: call.callId, fromTag: call.fromTag, toTag: busy.to.tag ?? '', cseq: 1 });
  });

  it('no ACK within 64*T1: accept() rejects and we send BYE (§13.3.1.4)', async () => {
    const call = newCall();
    let accepted: Promise<Dialog> | undefined;
    inviteHandler = (invite) => {
      accepted = invite.accept({ contentType: 'application/sdp', content: SDP_ANSWER });
    };
    await sendInvite(call);
    await uac.response(200, call.callId, 'INVITE');
    await expect(accepted!).rejects.toThrow(/ACK/);
    const bye = await uac.incoming('BYE', call.callId);
    await uac.respondTo(bye, 200, 'OK');
  });

  it('OPTIONS → 200 with Allow and Accept; unknown method → 501; REGISTER → 405 with Allow', async () => {
    const id = randomId();
    await uac.request({ method: 'OPTIONS', callId: `o${id}`, fromTag: 'a', cseq: 1 });
    const options = await uac.response(200, `o${id}`);
    expect(options.getAll('allow')).toContain('INVITE');
    expect(options.get('accept')).toBe('application/sdp');
    expect(options.to.tag).toBeTruthy();
    await uac.request({ method: 'FOO', callId: `f${id}`, fromTag: 'a', cseq: 1 });
    await uac.response(501, `f${id}`);
    await uac.request({ method: 'REGISTER', callId: `r${id}`, fromTag: 'a', cseq: 1 });
    const notAllowed = await uac.response(405, `r${id}`);
    expect(notAllowed.getAll('allow')).toContain('BYE');
  });

  it('request checks: Max-Forwards 0 is served (a UAS, not a proxy), 420 with Unsupported, 416, 481 for an unknown dialog, 415, 400 without Contact', async () => {
    const id = randomId();
    await uac.request({ method: 'OPTIONS', callId: `mf${id}`, fromTag: 'a', cseq: 1, maxForwards: 0 });
    await uac.response(200, `mf${id}`);
    await uac.request({ method: 'OPTIONS', callId: `rq${id}`, fromTag: 'a', cseq: 1, headers: ['Require: 100rel, foo'] });
    expect((await uac.response(420, `rq${id}`)).getAll('unsupported')).toEqual(['100rel', 'foo']);
    await uac.request({ method: 'OPTIONS', uri: 'tel:+15550100', callId: `tel${id}`, fromTag: 'a', cseq: 1 });
    await uac.response(416, `tel${id}`);
    await uac.request({ method: 'BYE', callId: `bye${id}`, fromTag: 'a', toTag: 'nosuchdialog', cseq: 1 });
    await uac.response(481, `bye${id}`);
    await uac.request({ method: 'BYE', callId: `bye2${id}`, fromTag: 'a', cseq: 1 });
    await uac.response(481, `bye2${id}`);
    await uac.request({ method: 'INVITE', callId: `ct${id}`, fromTag: 'a', cseq: 1, headers: [`Contact: ${uac.contact}`, 'Content-Type: text/plain'], body: 'hi' });
    expect((await uac.response(415, `ct${id}`)).get('accept')).toBe('application/sdp');
    await uac.request({ method: 'INVITE', callId: `nc${id}`, fromTag: 'a', cseq: 1 });
    await uac.response(400, `nc${id}`);
  });

  it('rport: the response goes to the source port with received and rport filled in (RFC 3581)', async () => {
    const id = `rp${randomId()}`;
    await uac.request({
      method: 'OPTIONS',
      callId: id,
      fromTag: 'a',
      cseq: 1,
      via: `Via: SIP/2.0/UDP 192.0.2.99:5999;branch=z9hG4bK${randomId()};rport`,
    });
    const ok = await uac.response(200, id);
    expect(ok.topVia).toMatchObject({ host: '192.0.2.99', port: 5999, received: '127.0.0.1', rport: uac.port });
  });

  it('garbage is dropped or answered 400, and the endpoint keeps serving', async () => {
    await uac.send('this is not SIP');
    await uac.send(Buffer.from([0, 1, 2, 3, 255]));
    await uac.send('\r\n\r\n');
    const id = `bad${randomId()}`;
    // Answerable but malformed: CSeq method disagrees with the request method.
    await uac.send(uac.build({ method: 'OPTIONS', callId: id, fromTag: 'a', cseq: 1, cseqMethod: 'INVITE' }));
    const bad = await uac.response(400, id);
    expect(bad.reason).toBe('CSeq method mismatch');
    const version = `ver${randomId()}`;
    await uac.send(uac.build({ method: 'OPTIONS', callId: version, fromTag: 'a', cseq: 1 }).replace('SIP/2.0\r\n', 'SIP/3.0\r\n'));
    await uac.response(505, version);
    const ok = `ok${randomId()}`;
    await uac.request({ method: 'OPTIONS', callId: ok, fromTag: 'a', cseq: 1 });
    await uac.response(200, ok);
  });

  it('not accepting calls: INVITE and OPTIONS get 503 with Retry-After', async () => {
    endpoint.acceptingCalls = false;
    try {
      const call = newCall();
      await sendInvite(call);
      expect((await uac.response(503, call.callId)).has('retry-after')).toBe(true);
      const id = `o${randomId()}`;
      await uac.request({ method: 'OPTIONS', callId: id, fromTag: 'a', cseq: 1 });
      await uac.response(503, id);
    } finally {
      endpoint.acceptingCalls = true;
    }
  });

  it('a throwing onInvite handler gets the caller a 500, not a crash', async () => {
    inviteHandler = () => {
      throw new Error('application bug');
    };
    const call = newCall();
    await sendInvite(call);
    await uac.response(500, call.callId);
  });

  it('leaves no transactions or dialogs behind', async () => {
    await waitFor(() => {
      const s = endpoint.stats();
      return s.serverTransactions === 0 && s.clientTransactions === 0 && s.dialogs === 0;
    });
    expect(endpoint.stats()).toEqual({ serverTransactions: 0, clientTransactions: 0, dialogs: 0 });
  });
});
