import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import {
  createResponse,
  DEFAULT_TIMERS,
  InviteServerTransaction,
  Invite2xxRetransmitter,
  NonInviteClientTransaction,
  NonInviteServerTransaction,
  parseMessage,
  serverTransactionKey,
  SipRequest,
  SipResponse,
  TransactionState,
  type SipMessage,
  type TransactionEnvironment,
  type TransportProtocol,
} from '../../../src/telephony/embedded/sip/index.js';

function request(method: string, branch = 'z9hG4bKtest1', cseqMethod = method): SipRequest {
  const text = [
    `${method} sip:*97@demo.local SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.10:5060;branch=${branch}`,
    'Max-Forwards: 70',
    'From: <sip:201@demo.local>;tag=abc',
    'To: <sip:*97@demo.local>',
    'Call-ID: call-1@192.0.2.10',
    `CSeq: 1 ${cseqMethod}`,
    'Contact: <sip:201@192.0.2.10>',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

interface Harness {
  env: TransactionEnvironment;
  sent: Array<{ at: number; message: SipMessage }>;
  terminated: ReturnType<typeof vi.fn>;
  fail: (err: Error) => void;
}

function harness(transport: TransportProtocol = 'udp'): Harness {
  const sent: Harness['sent'] = [];
  const terminated = vi.fn();
  let failure: Error | undefined;
  const env: TransactionEnvironment = {
    timers: { ...DEFAULT_TIMERS },
    logger: silentLogger,
    destination: { transport, address: '192.0.2.10', port: 5060 },
    send: (message) => {
      sent.push({ at: Date.now(), message });
      return failure ? Promise.reject(failure) : Promise.resolve();
    },
    onTerminated: terminated,
  };
  return { env, sent, terminated, fail: (err) => (failure = err) };
}

const statuses = (h: Harness): number[] => h.sent.map((s) => (s.message instanceof SipResponse ? s.message.status : -1));
const times = (h: Harness, status: number): number[] =>
  h.sent.filter((s) => s.message instanceof SipResponse && s.message.status === status).map((s) => s.at);

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('INVITE server transaction (RFC 3261 §17.2.1, RFC 6026)', () => {
  it('sends 100 Trying at once and resends the latest provisional on a retransmitted INVITE', () => {
    const h = harness();
    const invite = request('INVITE');
    const tx = new InviteServerTransaction('k', invite, h.env);
    expect(tx.state).toBe(TransactionState.Proceeding);
    expect(statuses(h)).toEqual([100]);
    expect(tx.receiveRequest(invite)).toBe(true);
    expect(statuses(h)).toEqual([100, 100]);
    tx.respond(createResponse(invite, 180, 'Ringing', { toTag: 't' }));
    tx.receiveRequest(invite);
    expect(statuses(h)).toEqual([100, 100, 180, 180]);
  });

  it('non-2xx over UDP: Timer G retransmits at T1 doubling to T2, Timer H gives up at 64*T1', () => {
    const h = harness();
    const invite = request('INVITE');
    const tx = new InviteServerTransaction('k', invite, h.env);
    const onAckTimeout = vi.fn();
    tx.user = { onAckTimeout };
    tx.respond(createResponse(invite, 486, 'Busy Here', { toTag: 't' }));
    expect(tx.state).toBe(TransactionState.Completed);
    vi.advanceTimersByTime(31_999);
    expect(times(h, 486)).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(h.terminated).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(tx.state).toBe(TransactionState.Terminated);
    expect(h.terminated).toHaveBeenCalledWith(tx);
    expect(onAckTimeout).toHaveBeenCalledOnce();
    vi.advanceTimersByTime(60_000);
    expect(times(h, 486)).toHaveLength(11);
  });

  it('ACK in Completed stops Timer G (Confirmed), Timer I = T4 ends it; INVITE retransmission resends the final', () => {
    const h = harness();
    const invite = request('INVITE');
    const tx = new InviteServerTransaction('k', invite, h.env);
    tx.respond(createResponse(invite, 404, 'Not Found', { toTag: 't' }));
    vi.advanceTimersByTime(600);
    tx.receiveRequest(invite);
    expect(times(h, 404)).toEqual([0, 500, 600]);
    expect(tx.receiveRequest(request('ACK', 'z9hG4bKtest1', 'ACK'))).toBe(true);
    expect(tx.state).toBe(TransactionState.Confirmed);
    vi.advanceTimersByTime(DEFAULT_TIMERS.T4 - 1);
    expect(times(h, 404)).toEqual([0, 500, 600]);
    expect(tx.state).toBe(TransactionState.Confirmed);
    vi.advanceTimersByTime(1);
    expect(tx.state).toBe(TransactionState.Terminated);
    expect(h.terminated).toHaveBeenCalledOnce();
  });

  it('non-2xx over TCP: no Timer G; ACK terminates at once (Timer I = 0)', () => {
    const h = harness('tcp');
    const invite = request('INVITE');
    const tx = new InviteServerTransaction('k', invite, h.env);
    tx.respond(createResponse(invite, 603, 'Decline', { toTag: 't' }));
    vi.advanceTimersByTime(10_000);
    expect(times(h, 603)).toEqual([0]);
    tx.receiveRequest(request('ACK', 'z9hG4bKtest1', 'ACK'));
    expect(tx.state).toBe(TransactionState.Terminated);
  });

  it('2xx: Accepted absorbs INVITE retransmissions, passes an ACK up, Timer L ends it at 64*T1', () => {
    const h = harness();
    const invite = request('INVITE');
    const tx = new InviteServerTransaction('k', invite, h.env);
    tx.respond(createResponse(invite, 200, 'OK', { toTag: 't' }));
    expect(tx.state).toBe(TransactionState.Accepted);
    expect(tx.receiveRequest(invite)).toBe(true);
    expect(tx.receiveRequest(request('ACK', 'z9hG4bKtest1', 'ACK'))).toBe(false);
    vi.advanceTimersByTime(31_999);
    // The transaction itself never retransmits a 2xx (that is the UAS core's job, §13.3.1.4).
    expect(statuses(h)).toEqual([100, 200]);
    vi.advanceTimersByTime(1);
    expect(tx.state).toBe(TransactionState.Terminated);
    expect(h.terminated).toHaveBeenCalledOnce();
  });

  it('ignores responses from the TU after the final one', () => {
    const h = harness();
    const invite = request('INVITE');
    const tx = new InviteServerTransaction('k', invite, h.env);
    tx.respond(createResponse(invite, 486, 'Busy Here', { toTag: 't' }));
    tx.respond(createResponse(invite, 180, 'Ringing', { toTag: 't' }));
    tx.respond(createResponse(invite, 200, 'OK', { toTag: 't' }));
    expect(statuses(h)).toEqual([100, 486]);
    expect(tx.state).toBe(TransactionState.Completed);
  });

  it('a transport error is reported to the TU without a state change (RFC 6026 §8.8)', async () => {
    const h = harness();
    const invite = request('INVITE');
    const tx = new InviteServerTransaction('k', invite, h.env);
    const onTransportError = vi.fn();
    tx.user = { onTransportError };
    h.fail(new Error('unreachable'));
    tx.respond(createResponse(invite, 486, 'Busy Here', { toTag: 't' }));
    await vi.advanceTimersByTimeAsync(0);
    expect(onTransportError).toHaveBeenCalled();
    expect(tx.state).toBe(TransactionState.Completed);
  });
});

describe('non-INVITE server transaction (RFC 3261 §17.2.2)', () => {
  it('Trying discards retransmissions; Completed resends the final; Timer J = 64*T1 over UDP', () => {
    const h = harness();
    const bye = request('BYE');
    const tx = new NonInviteServerTransaction('k', bye, h.env);
    expect(tx.state).toBe(TransactionState.Trying);
    tx.receiveRequest(bye);
    expect(h.sent).toHaveLength(0);
    tx.respond(createResponse(bye, 200, 'OK'));
    expect(tx.state).toBe(TransactionState.Completed);
    vi.advanceTimersByTime(1000);
    tx.receiveRequest(bye);
    expect(times(h, 200)).toEqual([0, 1000]);
    vi.advanceTimersByTime(31_000 - 1);
    expect(tx.state).toBe(TransactionState.Completed);
    vi.advanceTimersByTime(1);
    expect(tx.state).toBe(TransactionState.Terminated);
    expect(h.terminated).toHaveBeenCalledOnce();
  });

  it('Proceeding resends the provisional; over TCP Timer J is zero', () => {
    const h = harness('tcp');
    const info = request('INFO');
    const tx = new NonInviteServerTransaction('k', info, h.env);
    tx.respond(createResponse(info, 183, 'Progress'));
    expect(tx.state).toBe(TransactionState.Proceeding);
    tx.receiveRequest(info);
    expect(statuses(h)).toEqual([183, 183]);
    tx.respond(createResponse(info, 200, 'OK'));
    expect(tx.state).toBe(TransactionState.Terminated);
    expect(h.terminated).toHaveBeenCalledOnce();
  });

  it('ends after 64*T1 when the TU never answers (no leak)', () => {
    const h = harness();
    const tx = new NonInviteServerTransaction('k', request('INFO'), h.env);
    vi.advanceTimersByTime(32_000);
    expect(tx.state).toBe(TransactionState.Terminated);
    expect(h.terminated).toHaveBeenCalledOnce();
  });
});

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  function client(h: Harness): { tx: NonInviteClientTransaction; user: { onResponse: ReturnType<typeof vi.fn>; onTimeout: ReturnType<typeof vi.fn>; onTransportError: ReturnType<typeof vi.fn> } } {
    const user = { onResponse: vi.fn(), onTimeout: vi.fn(), onTransportError: vi.fn() };
    const tx = new NonInviteClientTransaction('k', request('BYE'), h.env, user);
    return { tx, user };
  }
  const requestTimes = (h: Harness): number[] => h.sent.filter((s) => s.message instanceof SipRequest).map((s) => s.at);

  it('Timer E doubles to T2 over UDP; Timer F times out at 64*T1', () => {
    const h = harness();
    const { tx, user } = client(h);
    vi.advanceTimersByTime(31_999);
    expect(requestTimes(h)).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(user.onTimeout).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(user.onTimeout).toHaveBeenCalledOnce();
    expect(tx.state).toBe(TransactionState.Terminated);
    expect(h.terminated).toHaveBeenCalledOnce();
    vi.advanceTimersByTime(60_000);
    expect(requestTimes(h)).toHaveLength(11);
  });

  it('in Proceeding Timer E is reset to T2; a final response stops it; Timer K = T4', () => {
    const h = harness();
    const { tx, user } = client(h);
    vi.advanceTimersByTime(600);
    const bye = tx.request;
    tx.receiveResponse(createResponse(bye, 100, 'Trying'));
    expect(tx.state).toBe(TransactionState.Proceeding);
    vi.advanceTimersByTime(9_000);
    expect(requestTimes(h)).toEqual([0, 500, 1500, 5500, 9500]);
    const ok = createResponse(bye, 200, 'OK');
    tx.receiveResponse(ok);
    tx.receiveResponse(ok);
    expect(user.onResponse).toHaveBeenCalledTimes(2); // 100 and 200, not the retransmitted 200
    expect(tx.state).toBe(TransactionState.Completed);
    vi.advanceTimersByTime(DEFAULT_TIMERS.T4);
    expect(tx.state).toBe(TransactionState.Terminated);
    expect(requestTimes(h)).toHaveLength(5);
    expect(user.onTimeout).not.toHaveBeenCalled();
  });

  it('over TCP: no retransmissions and Timer K = 0', () => {
    const h = harness('tcp');
    const { tx } = client(h);
    vi.advanceTimersByTime(20_000);
    expect(requestTimes(h)).toEqual([0]);
    tx.receiveResponse(createResponse(tx.request, 481, 'Call/Transaction Does Not Exist'));
    expect(tx.state).toBe(TransactionState.Terminated);
  });

  it('a transport error ends the transaction and is reported (§17.1.4)', async () => {
    const h = harness();
    h.fail(new Error('unreachable'));
    const { tx, user } = client(h);
    await vi.advanceTimersByTimeAsync(0);
    expect(user.onTransportError).toHaveBeenCalledOnce();
    expect(tx.state).toBe(TransactionState.Terminated);
  });
});

describe('transaction matching (RFC 3261 §17.2.3)', () => {
  it('ACK and CANCEL (as INVITE) match the INVITE; another branch or sent-by does not', () => {
    const inviteKey = serverTransactionKey(request('INVITE'));
    expect(serverTransactionKey(request('ACK', 'z9hG4bKtest1', 'ACK'))).toBe(inviteKey);
    expect(serverTransactionKey(request('CANCEL', 'z9hG4bKtest1', 'CANCEL'), 'INVITE')).toBe(inviteKey);
    expect(serverTransactionKey(request('CANCEL', 'z9hG4bKtest1', 'CANCEL'))).not.toBe(inviteKey);
    expect(serverTransactionKey(request('INVITE', 'z9hG4bKother'))).not.toBe(inviteKey);
    const moved = parseMessage(Buffer.from(request('INVITE').serialize().toString().replace('192.0.2.10:5060;', '192.0.2.11:5060;'))) as SipRequest;
    expect(serverTransactionKey(moved)).not.toBe(inviteKey);
  });

  it('RFC 2543 requests without the magic cookie match on Request-URI, tags, Call-ID, CSeq and Via', () => {
    const inviteKey = serverTransactionKey(request('INVITE', 'old1'));
    expect(serverTransactionKey(request('ACK', 'old1', 'ACK'))).toBe(inviteKey);
    expect(serverTransactionKey(request('INVITE', 'old2'))).not.toBe(inviteKey);
  });
});

describe('UAS 2xx retransmission (RFC 3261 §13.3.1.4)', () => {
  it('repeats at T1 doubling to T2 and gives up at 64*T1; stop() ends it', () => {
    
    const sentAt: number[] = [];
    const onGiveUp = vi.fn();
    const r = new Invite2xxRetransmitter({ timers: { ...DEFAULT_TIMERS }, reliable: false, retransmit: () => sentAt.push(Date.now()), onGiveUp });
    r.start();
    vi.advanceTimersByTime(31_999);
    expect(sentAt).toEqual([500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(onGiveUp).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onGiveUp).toHaveBeenCalledOnce();
    vi.advanceTimersByTime(60_000);
    expect(sentAt).toHaveLength(10);

    const stopped = new Invite2xxRetransmitter({ timers: { ...DEFAULT_TIMERS }, reliable: true, retransmit: () => sentAt.push(-1), onGiveUp });
    stopped.start();
    vi.advanceTimersByTime(1000);
    stopped.stop();
    vi.advanceTimersByTime(60_000);
    expect(sentAt).not.toContain(-1);
    expect(onGiveUp).toHaveBeenCalledOnce();
  });
});
