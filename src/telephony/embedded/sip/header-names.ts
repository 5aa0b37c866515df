/**
 * Header names: compact forms (RFC 3261 §7.3.3 and the extensions that registered one),
 * the spelling we write, and which headers are comma-separated lists (RFC 3261 §7.3.1).
 */

/** Compact form → long form, lower case. */
const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'accept-contact', // RFC 3841
  b: 'referred-by', // RFC 3892
  c: 'content-type',
  d: 'request-disposition', // RFC 3841
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact', // RFC 3841
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info', // RFC 4474
  o: 'event', // RFC 6665
  r: 'refer-to', // RFC 3515
  s: 'subject',
  t: 'to',
  u: 'allow-events', // RFC 6665
  v: 'via',
  x: 'session-expires', // RFC 4028
  y: 'identity', // RFC 8224
};

/** How we write the names we know (header names are case-insensitive, RFC 3261 §7.3.1). */
const CANONICAL_NAMES: Readonly<Record<string, string>> = Object.fromEntries(
  [
    'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Alert-Info', 'Allow',
    'Allow-Events', 'Authentication-Info', 'Authorization', 'Call-ID', 'Call-Info', 'Contact',
    'Content-Disposition', 'Content-Encoding', 'Content-Language', 'Content-Length', 'Content-Type',
    'CSeq', 'Date', 'Error-Info', 'Event', 'Expires', 'From', 'Identity', 'Identity-Info',
    'In-Reply-To', 'Max-Forwards', 'MIME-Version', 'Min-Expires', 'Organization',
    'P-Asserted-Identity', 'P-Preferred-Identity', 'Path', 'Priority', 'Privacy',
    'Proxy-Authenticate', 'Proxy-Authorization', 'Proxy-Require', 'Reason', 'Record-Route',
    'Refer-To', 'Referred-By', 'Reject-Contact', 'Reply-To', 'Request-Disposition', 'Require',
    'Retry-After', 'Route', 'RSeq', 'RAck', 'Server', 'Service-Route', 'Session-Expires', 'Subject',
    'Subscription-State', 'Supported', 'Timestamp', 'To', 'Unsupported', 'User-Agent', 'Via',
    'Warning', 'WWW-Authenticate',
  ].map((name) => [name.toLowerCase(), name]),
);

/**
 * Headers whose grammar is a comma-separated list: the parser splits them into one entry per
 * element so the top Via can be read and rewritten on its own. Headers not listed here keep their
 * commas (Date, WWW-Authenticate, Retry-After comments, unknown extensions...).
 */
const LIST_HEADERS: ReadonlySet<string> = new Set([
  'accept', 'accept-contact', 'accept-encoding', 'accept-language', 'alert-info', 'allow',
  'allow-events', 'call-info', 'contact', 'content-encoding', 'content-language', 'error-info',
  'in-reply-to', 'p-asserted-identity', 'path', 'proxy-require', 'reason', 'record-route',
  'reject-contact', 'require', 'route', 'service-route', 'supported', 'unsupported', 'via',
  'warning',
]);

/** The key a header is looked up by: lower case, compact forms expanded. */
export function headerKey(name: string): string {
  const lower = name.toLowerCase();
  return COMPACT_FORMS[lower] ?? lower;
}

/** The name we write for a header: the long form in its usual spelling, else as given. */
export function canonicalHeaderName(name: string): string {
  const key = headerKey(name);
  return CANONICAL_NAMES[key] ?? (COMPACT_FORMS[name.toLowerCase()] ? key : name);
}

export function isListHeader(key: string): boolean {
  return LIST_HEADERS.has(key);
}
