/**
 * The checks a UAS makes before acting on a request (RFC 3261 §8.2.1 – §8.2.3), as pure
 * functions: each returns the rejection to send, or undefined to go on.
 */
import { splitList } from './grammar.js';
import type { SipRequest } from './message.js';
import { parseNameAddr } from './name-addr.js';
import { uriScheme } from './uri.js';

export interface Rejection {
  status: number;
  reason: string;
  headers?: Record<string, string>;
}

export interface RequestPolicy {
  allowedMethods: readonly string[];
  /** Option tags we implement (Require / Supported, §8.2.2.3). */
  supportedExtensions: readonly string[];
}

/** Methods defined by RFC 3261 and the extensions a peer is likely to send us. */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER', 'INFO', 'PRACK', 'SUBSCRIBE', 'NOTIFY',
  'UPDATE', 'MESSAGE', 'REFER', 'PUBLISH',
]);

/** Bodies we can take in an INVITE offer (§8.2.3). */
export const ACCEPTED_INVITE_BODIES = 'application/sdp';

export function allowHeader(policy: RequestPolicy): string {
  return policy.allowedMethods.join(', ');
}

export function checkRequest(request: SipRequest, policy: RequestPolicy): Rejection | undefined {
  // No Max-Forwards check: 483 is a proxy's answer (§16.3). A UAS processes a request at
  // Max-Forwards 0 as if it were positive (RFC 4475 §3.3.11) — OPTIONS with Max-Forwards 0 is
  // how a neighbour pings its next hop (§11.2).
  return (
    checkMethod(request, policy) ??
    checkRequestUri(request) ??
    checkRequire(request, policy) ??
    checkDialogTarget(request) ??
    checkInviteContent(request)
  );
}

/**
 * "If a UAS recognizes but does not support the method of a request, it MUST generate a 405
 * (Method Not Allowed) response... The UAS MUST also add an Allow header field" (§8.2.1);
 * a method it does not recognize at all gets 501 (Not Implemented) (§21.5.2).
 */
function checkMethod(request: SipRequest, policy: RequestPolicy): Rejection | undefined {
  const method = request.method;
  if (method === 'ACK' || method === 'CANCEL' || policy.allowedMethods.includes(method)) return undefined;
  const headers = { Allow: allowHeader(policy) };
  return KNOWN_METHODS.has(method)
    ? { status: 405, reason: 'Method Not Allowed', headers }
    : { status: 501, reason: 'Not Implemented', headers };
}

/**
 * "If the Request-URI uses a scheme not supported by the UAS, it SHOULD reject the request with a
 * 416 (Unsupported URI Scheme) response." (§8.2.2.1)
 */
function checkRequestUri(request: SipRequest): Rejection | undefined {
  const scheme = uriScheme(request.uri);
  return scheme === 'sip' || scheme === 'sips' ? undefined : { status: 416, reason: 'Unsupported URI Scheme' };
}

/**
 * "If a UAS does not understand an option-tag listed in a Require header field, it MUST respond by
 * generating a response with status code 420 (Bad Extension). The UAS MUST add an Unsupported
 * header field, and list in it those options it does not understand" (§8.2.2.3).
 */
function checkRequire(request: SipRequest, policy: RequestPolicy): Rejection | undefined {
  const required = request.getAll('require').flatMap(splitList).filter((tag) => tag !== '');
  const unsupported = required.filter((tag) => !policy.supportedExtensions.includes(tag.toLowerCase()));
  if (unsupported.length === 0) return undefined;
  return { status: 420, reason: 'Bad Extension', headers: { Unsupported: unsupported.join(', ') } };
}

/**
 * An INVITE, and a SUBSCRIBE that would create a dialog (RFC 6665 §4.2.1.1), needs a Contact:
 * "The Contact header field MUST be present and contain exactly one SIP or SIPS URI in any
 * request that can result in the establishment of a dialog" (§8.1.1.8); it becomes the remote
 * target, and the Record-Route the route set (§12.1.1). A SUBSCRIBE in a dialog keeps the target
 * it has when its Contact is missing.
 */
function checkDialogTarget(request: SipRequest): Rejection | undefined {
  if (request.method !== 'INVITE' && !(request.method === 'SUBSCRIBE' && request.to.tag === undefined)) return undefined;
  const contacts = request.getAll('contact');
  if (contacts.length !== 1) return { status: 400, reason: contacts.length === 0 ? 'Missing Contact' : 'Multiple Contact' };
  try {
    const contact = parseNameAddr(contacts[0] ?? '');
    const scheme = uriScheme(contact.uri);
    if (scheme !== 'sip' && scheme !== 'sips') return { status: 400, reason: 'Bad Contact' };
  } catch {
    return { status: 400, reason: 'Bad Contact' };
  }
  try {
    // The Record-Route values become the dialog's route set (§12.1.1).
    for (const rr of request.getAll('record-route')) parseNameAddr(rr);
  } catch {
    return { status: 400, reason: 'Bad Record-Route' };
  }
  return undefined;
}

/**
 * An INVITE with a body needs one we understand: "If a UAS receives a request with a body of a
 * type it does not support ... the UAS MUST reject the request with a 415 (Unsupported Media
 * Type) response ... the Accept header field ... Accept-Encoding" (§8.2.3).
 */
function checkInviteContent(request: SipRequest): Rejection | undefined {
  if (request.method !== 'INVITE') return undefined;
  const encodings = request.getAll('content-encoding').map((e) => e.toLowerCase());
  if (encodings.some((e) => e !== 'identity')) {
    return { status: 415, reason: 'Unsupported Media Type', headers: { 'Accept-Encoding': 'identity' } };
  }
  if (request.body.length > 0 && request.mediaType !== ACCEPTED_INVITE_BODIES) {
    return { status: 415, reason: 'Unsupported Media Type', headers: { Accept: ACCEPTED_INVITE_BODIES } };
  }
  return undefined;
}
