/**
 * Transaction matching keys (RFC 3261 §17.1.3 for responses, §17.2.3 for requests).
 */
import type { SipRequest, SipResponse } from '../message.js';
import { BRANCH_MAGIC_COOKIE, formatVia, parseVia } from '../via.js';

/**
 * The key of the server transaction a request belongs to.
 *
 * "1. the branch parameter in the request is equal to the one in the top Via header field of the
 * request that created the transaction, and 2. the sent-by value in the top Via of the request is
 * equal to the one in the request that created the transaction, and 3. the method of the request
 * matches the one that created the transaction, except for ACK, where the method of the request
 * that created the transaction is INVITE." (§17.2.3)
 *
 * `asMethod` looks up another transaction by the same rule: a CANCEL is matched to the INVITE it
 * cancels with method INVITE (§9.2).
 */
export function serverTransactionKey(request: SipRequest, asMethod?: string): string {
  const via = parseVia(request.get('via') ?? '');
  const method = asMethod ?? (request.method === 'ACK' ? 'INVITE' : request.method);
  if (via.branch?.startsWith(BRANCH_MAGIC_COOKIE)) {
    return `${via.branch}|${via.host.toLowerCase()}:${via.port ?? ''}|${method}`;
  }
  // RFC 2543 peers (no magic cookie): "the INVITE request matches a transaction if the
  // Request-URI, To tag, From tag, Call-ID, CSeq, and top Via header field match those of the
  // INVITE request which created the transaction" — the To tag is left out because ours is only
  // added by the response, and an ACK/CANCEL carries the same Request-URI and CSeq number.
  const unmodifiedVia = { ...via, params: { ...via.params } };
  delete unmodifiedVia.params['received'];
  delete unmodifiedVia.params['rport'];
  return [
    'rfc2543',
    request.uri,
    request.from.tag ?? '',
    request.callId,
    request.cseq.seq,
    formatVia(unmodifiedVia),
    method,
  ].join('|');
}

/**
 * "1. If the response has the same value of the branch parameter in the top Via header field as
 * the branch parameter in the top Via header field of the request that created the transaction.
 * 2. If the method parameter in the CSeq header field matches the method of the request that
 * created the transaction." (§17.1.3)
 */
export function clientTransactionKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

export function responseClientTransactionKey(response: SipResponse): string {
  return clientTransactionKey(response.topVia.branch ?? '', response.cseq.method);
}
