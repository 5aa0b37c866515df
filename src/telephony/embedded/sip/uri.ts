/**
 * SIP, SIPS (RFC 3261 §19.1, §25.1) and tel (RFC 3966) URIs.
 */
import { SipParseError } from './errors.js';
import { emptyParams, formatHost, formatParams, isValidHost, type Params } from './grammar.js';

export type UriScheme = 'sip' | 'sips' | 'tel';

export interface SipUri {
  scheme: UriScheme;
  /** User part, percent-decoded (for tel: the telephone number). */
  user?: string;
  password?: string;
  /** Host without IPv6 brackets; '' for tel URIs. */
  host: string;
  port?: number;
  /** uri-parameters: names decoded and lower-cased, values as written (null when valueless). */
  params: Params;
  /** headers after "?" in the URI, values as written. */
  headers: Record<string, string>;
}

const ESCAPED = '%[0-9A-Fa-f]{2}';
/** user = 1*( unreserved / escaped / user-unreserved ) */
const USER_RE = new RegExp(`^(?:[A-Za-z0-9\\-_.!~*'()&=+$,;?/]|${ESCAPED})+$`);
/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
const PASSWORD_RE = new RegExp(`^(?:[A-Za-z0-9\\-_.!~*'()&=+$,]|${ESCAPED})*$`);
/** pname / pvalue = 1*paramchar; paramchar = param-unreserved / unreserved / escaped */
const PARAMCHAR_RE = new RegExp(`^(?:[A-Za-z0-9\\-_.!~*'()[\\]/:&+$]|${ESCAPED})+$`);
/** hname = 1*( hnv-unreserved / unreserved / escaped ); hvalue may be empty */
const HNAME_RE = new RegExp(`^(?:[A-Za-z0-9\\-_.!~*'()[\\]/?:+$]|${ESCAPED})+$`);
const HVALUE_RE = new RegExp(`^(?:[A-Za-z0-9\\-_.!~*'()[\\]/?:+$]|${ESCAPED})*$`);
/** Characters that stay as they are in a user part we write. */
const USER_SAFE_RE = /[A-Za-z0-9\-_.!~*'()&=+$,;?/]/;
/** telephone-subscriber, loosely: digits, hex digits, visual separators, * # + and p/w pauses. */
const TEL_NUMBER_RE = /^\+?[0-9A-Fa-f*#\-.()pPwW]+$/;
const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):/;

function bad(detail: string): never {
  throw new SipParseError(`bad URI: ${detail}`);
}

/** Percent-decodes text; never throws (bytes that are not UTF-8 become U+FFFD). */
export function decodePercent(text: string): string {
  if (!text.includes('%')) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '%' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function escapeUser(user: string): string {
  let out = '';
  for (const c of user) {
    if (USER_SAFE_RE.test(c)) out += c;
    else for (const b of Buffer.from(c, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The scheme of any absolute URI, lower case, or undefined. */
export function uriScheme(text: string): string | undefined {
  return SCHEME_RE.exec(text)?.[1]?.toLowerCase();
}

/**
 * An absoluteURI (RFC 3261 §25.1) of a scheme we don't parse further: scheme ":" and no
 * whitespace or angle brackets.
 */
export function isAbsoluteUri(text: string): boolean {
  return SCHEME_RE.test(text) && !/[\s<>"]/.test(text) && text.length > text.indexOf(':') + 1;
}

function parseUriParams(text: string, params: Params): void {
  // text is everything after the first ";" of the uri-parameters.
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    if (!PARAMCHAR_RE.test(rawName)) bad('parameter name');
    const name = decodePercent(rawName).toLowerCase();
    if (Object.prototype.hasOwnProperty.call(params, name)) bad('duplicate parameter');
    if (eq < 0) {
      params[name] = null;
    } else {
      const value = part.slice(eq + 1);
      if (!PARAMCHAR_RE.test(value)) bad('parameter value');
      params[name] = value;
    }
  }
}

function parseUriHeaders(text: string): Record<string, string> {
  const headers = Object.create(null) as Record<string, string>;
  for (const part of text.split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0) bad('header without "="');
    const name = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (!HNAME_RE.test(name) || !HVALUE_RE.test(value)) bad('header');
    headers[name] = value;
  }
  return headers;
}

function parsePort(text: string): number {
  if (!/^[0-9]{1,5}$/.test(text)) bad('port');
  const port = Number(text);
  if (port > 65535) bad('port');
  return port;
}

function parseTelUri(rest: string): SipUri {
  const semi = rest.indexOf(';');
  const number = semi < 0 ? rest : rest.slice(0, semi);
  if (!TEL_NUMBER_RE.test(number)) bad('telephone number');
  const params = emptyParams();
  if (semi >= 0) parseUriParams(rest.slice(semi + 1), params);
  return { scheme: 'tel', user: number, host: '', params, headers: Object.create(null) as Record<string, string> };
}

/**
 * Parses a sip:, sips: or tel: URI. Throws SipParseError for any other scheme or a URI that does
 * not follow the grammar.
 */
export function parseUri(text: string): SipUri {
  const scheme = uriScheme(text);
  if (scheme === undefined) bad('no scheme');
  const rest = text.slice(scheme.length + 1);
  if (scheme === 'tel') return parseTelUri(rest);
  if (scheme !== 'sip' && scheme !== 'sips') bad('unsupported scheme');
  if (/[\s<>"]/.test(rest)) bad('forbidden character');

  // "@" appears in no part after the userinfo (hostport, parameters and headers exclude it).
  const at = rest.indexOf('@');
  if (at >= 0 && rest.indexOf('@', at + 1) >= 0) bad('more than one "@"');
  const uri: SipUri = { scheme, host: '', params: emptyParams(), headers: Object.create(null) as Record<string, string> };
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    const user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    if (!USER_RE.test(user)) bad('user');
    uri.user = decodePercent(user);
    if (colon >= 0) {
      const password = userinfo.slice(colon + 1);
      if (!PASSWORD_RE.test(password)) bad('password');
      uri.password = password;
    }
  }

  let hostport = at >= 0 ? rest.slice(at + 1) : rest;
  let tail = '';
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) bad('unterminated IPv6 reference');
    uri.host = hostport.slice(1, close);
    if (!uri.host.includes(':') || !isValidHost(uri.host)) bad('IPv6 reference');
    tail = hostport.slice(close + 1);
    if (tail.startsWith(':')) {
      const end = tail.search(/[;?]/);
      uri.port = parsePort(end < 0 ? tail.slice(1) : tail.slice(1, end));
      tail = end < 0 ? '' : tail.slice(end);
    }
  } else {
    const end = hostport.search(/[;?]/);
    tail = end < 0 ? '' : hostport.slice(end);
    hostport = end < 0 ? hostport : hostport.slice(0, end);
    const colon = hostport.indexOf(':');
    uri.host = colon < 0 ? hostport : hostport.slice(0, colon);
    if (colon >= 0) uri.port = parsePort(hostport.slice(colon + 1));
    if (!isValidHost(uri.host) || uri.host.includes(':')) bad('host');
  }
  if (tail !== '' && tail.charAt(0) !== ';' && tail.charAt(0) !== '?') bad('text after host');

  const question = tail.indexOf('?');
  const paramText = question < 0 ? tail : tail.slice(0, question);
  if (paramText !== '') parseUriParams(paramText.slice(1), uri.params);
  if (question >= 0) uri.headers = parseUriHeaders(tail.slice(question + 1));
  return uri;
}

/** Writes a URI back (the user part re-escaped per RFC 3261 §19.1.2). */
export function formatUri(uri: SipUri): string {
  if (uri.scheme === 'tel') {
    return `tel:${uri.user ?? ''}${formatParams(uri.params)}`;
  }
  let out = `${uri.scheme}:`;
  if (uri.user !== undefined) {
    out += escapeUser(uri.user);
    if (uri.password !== undefined) out += `:${uri.password}`;
    out += '@';
  }
  out += formatHost(uri.host);
  if (uri.port !== undefined) out += `:${uri.port}`;
  out += formatParams(uri.params);
  const headers = Object.entries(uri.headers);
  if (headers.length > 0) out += `?${headers.map(([n, v]) => `${n}=${v}`).join('&')}`;
  return out;
}
