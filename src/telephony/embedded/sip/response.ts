/** Building responses to requests (RFC 3261 §8.2.6). */
import { newTag } from './ids.js';
import type { SipRequest } from './message.js';
import { SipResponse } from './message.js';
import { parseNameAddr } from './name-addr.js';

export interface MessageBody {
  contentType: string;
  content: string | Buffer;
}

export interface ResponseOptions {
  /** Tag for the To header when the request had none; generated if omitted (never on 100). */
  toTag?: string;
  /** Copy Record-Route: responses that establish a dialog (§12.1.1). */
  copyRecordRoute?: boolean;
  headers?: Record<string, string>;
  body?: MessageBody | null;
}

/**
 * Whether our To tag goes on the copied To: when it has none, and only when it can be read. The
 * To of a malformed request answered statelessly is copied as it came (RFC 4475 §3.1.2.6 quotbal:
 * `"Mr. J. User <sip:...>` — a ";tag=" appended to that would land inside the open quote).
 */
function needsTag(to: string): boolean {
  try {
    return parseNameAddr(to).tag === undefined;
  } catch {
    return false;
  }
}

/**
 * "The From field of the response MUST equal the From header field of the request. The Call-ID
 * header field of the response MUST equal the Call-ID header field of the request. The CSeq
 * header field of the response MUST equal the CSeq field of the request. The Via header field
 * values in the response MUST equal the Via header field values in the request and MUST maintain
 * the same ordering." (§8.2.6.2) "...the UAS MUST add a tag to the To header field in the response
 * (with the exception of the 100 (Trying) response, in which a tag MAY be present)."
 */
export function createResponse(request: SipRequest, status: number, reason: string, options: ResponseOptions = {}): SipResponse {
  const response = new SipResponse(status, reason);
  for (const via of request.getAll('via')) response.append('Via', via);
  if (options.copyRecordRoute) for (const rr of request.getAll('record-route')) response.append('Record-Route', rr);
  const from = request.get('from');
  if (from !== undefined) response.append('From', from);
  const to = request.get('to');
  if (to !== undefined) {
    const tagged = status > 100 && needsTag(to) ? `${to};tag=${options.toTag ?? newTag()}` : to;
    response.append('To', tagged);
  }
  const callId = request.get('call-id');
  if (callId !== undefined) response.append('Call-ID', callId);
  const cseq = request.get('cseq');
  if (cseq !== undefined) response.append('CSeq', cseq);
  // "If there is a Timestamp header field in the request, the UAS MUST copy it into the 100 (Trying)." (§8.2.6.1)
  const timestamp = request.get('timestamp');
  if (status === 100 && timestamp !== undefined) response.append('Timestamp', timestamp);
  for (const [name, value] of Object.entries(options.headers ?? {})) response.set(name, value);
  if (options.body) response.setBody(options.body.contentType, options.body.content);
  return response;
}

const localResponses = new WeakSet<SipResponse>();

/** A response a client transaction makes up for itself: 408 on timeout, 503 on transport error (§8.1.3.1). */
export function createLocalResponse(request: SipRequest, status: 408 | 503, reason: string): SipResponse {
  const response = new SipResponse(status, reason);
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) {
    for (const value of request.getAll(name)) response.append(name, value);
  }
  localResponses.add(response);
  return response;
}

/** True for a 408/503 made up locally (no response came from the network). */
export function isLocalResponse(response: SipResponse): boolean {
  return localResponses.has(response);
}
