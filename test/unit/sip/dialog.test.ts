import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import {
  SipEndpoint,
  SipRequest,
  SipResponse,
  type Dialog,
  type IncomingInvite,
  type RespondFn,
} from '../../../src/telephony/embedded/sip/index.js';
import { randomId, TestUac } from './test-uac.js';

const T1 = 40;
const SDP = 'v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';

let endpoint: SipEndpoint;
let uac: TestUac;
let inviteHandler: (invite: IncomingInvite) => void = (invite) => invite.reject(486, 'Busy Here');

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

interface Established {
  callId: string;
  fromTag: string;
  toTag: string;
  dialog: Dialog;
}

async function establish(extra: string[] = [], contact = uac.contact): Promise<Established> {
  const callId = `${randomId()}@127.0.0.1`;
  const fromTag = randomId();
  const accepted = new Promise<Dialog>((resolve, reject) => {
    inviteHandler = (invite) => invite.accept({ contentType: 'application/sdp', content: SDP }).then(resolve, reject);
  });
  await uac.request({ method: 'INVITE', callId, fromTag, cseq: 10, headers: [`Contact: ${contact}`, ...extra] });
  const ok = await uac.response(200, callId, 'INVITE');
  const toTag = ok.to.tag ?? '';
  await uac.request({ method: 'ACK', callId, fromTag, toTag, cseq: 10 });
  return { callId, fromTag, toTag, dialog: await accepted };
}

describe('Dialog', () => {
  it('loose routing: requests go to the first Record-Route URI with the route set as Route (§12.2.1.1)', async () => {
    // The remote target is unreachable on purpose: only the route (our UAC) can see the BYE.
    const { callId, dialog } = await establish(
      [`Record-Route: <sip:127.0.0.1:${uac.port};lr>, <sip:proxy2.example.com;lr>`],
      '<sip:far@192.0.2.55:5999>',
    );
    expect(dialog.routeSet).toEqual([`sip:127.0.0.1:${uac.port};lr`, 'sip:proxy2.example.com;lr']);
    const done = dialog.bye();
    const bye = await uac.incoming('BYE', callId);
    expect(bye.uri).toBe('sip:far@192.0.2.55:5999');
    expect(bye.getAll('route')).toEqual([`<sip:127.0.0.1:${uac.port};lr>`, '<sip:proxy2.example.com;lr>']);
    await uac.respondTo(bye, 200, 'OK');
    await done;
  });

  it('strict routing: the first route becomes the Request-URI, the remote target the last Route', async () => {
    const { callId, dialog } = await establish([`Record-Route: <sip:127.0.0.1:${uac.port}>`], '<sip:far@192.0.2.55:5999>');
    const done = dialog.bye();
    const bye = await uac.incoming('BYE', callId);
    expect(bye.uri).toBe(`sip:127.0.0.1:${uac.port}`);
    expect(bye.getAll('route')).toEqual(['<sip:far@192.0.2.55:5999>']);
    await uac.respondTo(bye, 200, 'OK');
    await done;
  });

  it('the INVITE 200 copies Record-Route (§12.1.1)', async () => {
    const callId = `rr${randomId()}`;
    let accepted: Promise<Dialog> | undefined;
    inviteHandler = (invite) => {
      accepted = invite.accept(null);
    };
    const route = `<sip:127.0.0.1:${uac.port};lr;ftag=f>`;
    await uac.request({ method: 'INVITE', callId, fromTag: 'f', cseq: 1, headers: [`Contact: ${uac.contact}`, `Record-Route: ${route}`] });
    const ok = await uac.response(200, callId, 'INVITE');
    expect(ok.getAll('record-route')).toEqual([route]);
    await uac.request({ method: 'ACK', callId, fromTag: 'f', toTag: ok.to.tag ?? '', cseq: 1 });
    const dialog = await accepted!;
    const done = dialog.bye();
    const bye = await uac.incoming('BYE', callId);
    expect(bye.getAll('route')).toEqual([route]);
    await uac.respondTo(bye, 200, 'OK');
    await done;
  });

  it('re-INVITE with a listener: 2xx with the answer, retransmitted until its ACK; target refresh', async () => {
    const { callId, fromTag, toTag, dialog } = await establish();
    const newContact = `<sip:moved@127.0.0.1:${uac.port}>`;
    dialog.on('reinvite', (req: SipRequest, respond: RespondFn) => {
      expect(req.body.toString()).toBe(SDP);
      respond(200, 'OK', { contentType: 'application/sdp', content: SDP });
    });
    const acks: SipRequest[] = [];
    dialog.on('ack', (ack: SipRequest) => acks.push(ack));
    await uac.request({
      method: 'INVITE',
      callId,
      fromTag,
      toTag,
      cseq: 11,
      headers: [`Contact: ${newContact}`, 'Content-Type: application/sdp'],
      body: SDP,
    });
    const ok = await uac.response(200, callId, 'INVITE');
    expect(ok.body.toString()).toBe(SDP);
    await uac.response(200, callId, 'INVITE'); // retransmission
    await uac.request({ method: 'ACK', callId, fromTag, toTag, cseq: 11 });
    await new Promise((r) => setTimeout(r, 50));
    expect(acks).toHaveLength(1);
    expect(dialog.remoteTarget).toBe(`sip:moved@127.0.0.1:${uac.port}`);
    const done = dialog.bye();
    const bye = await uac.incoming('BYE', callId);
    expect(bye.uri).toBe(`sip:moved@127.0.0.1:${uac.port}`);
    await uac.respondTo(bye, 200, 'OK');
    await done;
  });

  it('request(): REFER gets its response, an incoming NOTIFY reaches "request", a 481 ends the dialog (§12.2.1.2)', async () => {
    const { callId, fromTag, toTag, dialog } = await establish();
    const referred = dialog.request('REFER', { headers: { 'Refer-To': '<sip:201@demo.local>' } });
    const refer = await uac.incoming('REFER', callId);
    expect(refer.get('refer-to')).toBe('<sip:201@demo.local>');
    expect(refer.has('contact')).toBe(true);
    await uac.respondTo(refer, 202, 'Accepted');
    expect((await referred).status).toBe(202);

    const notified = new Promise<SipRequest>((resolve) => {
      dialog.on('request', (req: SipRequest, respond: RespondFn) => {
        respond(200, 'OK');
        resolve(req);
      });
    });
    await uac.request({
      method: 'NOTIFY',
      callId,
      fromTag,
      toTag,
      cseq: 11,
      headers: ['Event: refer', 'Subscription-State: terminated', 'Content-Type: message/sipfrag'],
      body: 'SIP/2.0 200 OK\r\n',
    });
    expect((await notified).method).toBe('NOTIFY');
    await uac.response(200, callId, 'NOTIFY');

    const ended = new Promise<string>((resolve) => dialog.once('terminated', resolve));
    const second = dialog.request('INFO');
    const info = await uac.incoming('INFO', callId);
    expect(info.cseq.seq).toBe(refer.cseq.seq + 1);
    await uac.respondTo(info, 481, 'Call/Transaction Does Not Exist');
    expect((await second).status).toBe(481);
    expect(await ended).toBe('remoteGone');
    await expect(dialog.request('INFO')).rejects.toThrow(/terminated/);
  });

  it('a remote BYE before the ACK rejects accept()', async () => {
    const callId = `early${randomId()}`;
    let accepted: Promise<Dialog> | undefined;
    let failure: unknown;
    inviteHandler = (invite) => {
      accepted = invite.accept(null);
      accepted.catch((err: unknown) => (failure = err));
    };
    await uac.request({ method: 'INVITE', callId, fromTag: 'f', cseq: 1, headers: [`Contact: ${uac.contact}`] });
    const ok = await uac.response(200, callId, 'INVITE');
    await uac.request({ method: 'BYE', callId, fromTag: 'f', toTag: ok.to.tag ?? '', cseq: 2 });
    await uac.response(200, callId, 'BYE');
    await expect(accepted!).rejects.toThrow(/before ACK/);
    expect(String(failure)).toMatch(/remoteBye/);
  });
});

describe('endpoint robustness', () => {
  it('survives a stream of mutated requests, keeps serving, and leaks nothing', async () => {
    inviteHandler = (invite) => invite.reject(486, 'Busy Here');
    const base = (method: string, i: number): string =>
      uac.build({
        method,
        callId: `fz${i}`,
        fromTag: `t${i}`,
        cseq: 1,
        branch: `z9hG4bKfz${i}`,
        headers: [`Contact: ${uac.contact}`, 'Content-Type: application/sdp'],
        body: SDP,
      });
    const samples = fc.sample(
      fc.record({
        method: fc.constantFrom('INVITE', 'OPTIONS', 'BYE', 'CANCEL', 'ACK', 'INFO'),
        at: fc.nat(),
        op: fc.constantFrom('flip', 'cut', 'insert'),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
      { seed: 42, numRuns: 300 },
    );
    for (const [i, s] of samples.entries()) {
      let data = Buffer.from(base(s.method, i));
      const at = s.at % data.length;
      if (s.op === 'flip') data[at] = s.byte;
      else if (s.op === 'cut') data = data.subarray(0, at);
      else data = Buffer.concat([data.subarray(0, at), Buffer.from([s.byte, 0x0d, 0x0a, 0x3b]), data.subarray(at)]);
      await uac.send(data);
      // Same process on both ends: let the endpoint read before the socket buffer overflows.
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5));
    }
    const id = `alive${randomId()}`;
    await uac.request({ method: 'OPTIONS', callId: id, fromTag: 'a', cseq: 1 });
    await uac.response(200, id);
    // Every INVITE that got a 486 waits for its ACK (Timer H); every other transaction ends by Timer J.
    const deadline = Date.now() + 15_000;
    const idle = (): boolean => {
      const st = endpoint.stats();
      return st.serverTransactions === 0 && st.clientTransactions === 0 && st.dialogs === 0;
    };
    while (!idle() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(endpoint.stats()).toEqual({ serverTransactions: 0, clientTransactions: 0, dialogs: 0 });
    expect(uac.received((m) => m instanceof SipResponse).length).toBeGreaterThan(50);
  });
});

describe('endpoint close()', () => {
  it('ends dialogs with "closed", rejects a pending accept and frees everything', async () => {
    const own = new SipEndpoint({ address: '127.0.0.1', port: 0, advertisedHost: '127.0.0.1', logger: silentLogger, timers: { T1 } });
    await own.start();
    const client = await TestUac.open(own.local.port);
    try {
      let accepted: Promise<Dialog> | undefined;
      own.onInvite = (invite) => {
        accepted = invite.accept(null);
        accepted.catch(() => {});
      };
      const callId = `close${randomId()}`;
      await client.request({ method: 'INVITE', callId, fromTag: 'f', cseq: 1, headers: [`Contact: ${client.contact}`] });
      await client.response(200, callId, 'INVITE');
      expect(own.stats().dialogs).toBe(1);
      await own.close();
      await expect(accepted!).rejects.toThrow(/closed/);
      expect(own.stats()).toEqual({ serverTransactions: 0, clientTransactions: 0, dialogs: 0 });
    } finally {
      await client.close();
      await own.close();
    }
  });
});
