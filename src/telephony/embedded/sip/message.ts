/**
 * SIP messages (RFC 3261 §7, §20): a strict parser and a serializer.
 *
 * Parsing happens in two steps. Framing (CRLF-separated header lines, folding, Content-Length)
 * failures throw SipParseError without a partial message. Failures of meaning (a required header
 * missing, a CSeq that disagrees with the method...) throw SipParseError with `partial` set, so a
 * UAS can still answer 400 when Via, From, To, Call-ID and CSeq are readable. A broken request
 * line is answerable too, but only when everything else about the request reads cleanly (see
 * brokenRequestLine below).
 */
import { SipParseError } from './errors.js';
import { isToken, splitList, trimLws } from './grammar.js';
import { canonicalHeaderName, headerKey, isListHeader } from './header-names.js';
import { isValidCallId, parseBoundedInteger, parseCSeq, parseMaxForwards, type CSeq } from './header-values.js';
import { parseNameAddr, type NameAddr } from './name-addr.js';
import type { TransportProtocol } from './transport.js';
import { isAbsoluteUri, parseUri, uriScheme } from './uri.js';
import { parseVia, type Via } from './via.js';

export interface SipHeader {
  /** Name as we write it (long form, usual spelling). */
  name: string;
  /** Lookup key: lower-case long form. */
  key: string;
  value: string;
}

const EMPTY = Buffer.alloc(0);
/** Default when a request has no Max-Forwards (RFC 3261 §8.1.1.6 recommends 70). */
export const DEFAULT_MAX_FORWARDS = 70;
/** Largest header section we read; anything larger is no SIP we want (64 KiB, RFC 3261 §18.1.1 UDP limit). */
export const MAX_HEADER_BYTES = 65_536;
const MAX_HEADER_LINES = 256;
/**
 * Control characters other than HTAB may only appear escaped in a quoted-pair, and CR/LF never
 * ("quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)", §25.1).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHAR_RE = /[\r\n]|(?<!\\)[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

function assertHeader(name: string, value: string): void {
  if (!isToken(name)) throw new TypeError(`invalid SIP header name: ${name}`);
  if (CONTROL_CHAR_RE.test(value)) throw new TypeError(`invalid character in SIP header ${name}`);
}

export abstract class SipMessage {
  readonly headers: SipHeader[] = [];
  body: Buffer = EMPTY;

  abstract get startLine(): string;

  /** The first value of a header (for list headers: the first element). */
  get(name: string): string | undefined {
    const key = headerKey(name);
    return this.headers.find((h) => h.key === key)?.value;
  }

  /** Every value of a header in order: each header line, and each element of a list header. */
  getAll(name: string): string[] {
    const key = headerKey(name);
    return this.headers.filter((h) => h.key === key).map((h) => h.value);
  }

  has(name: string): boolean {
    const key = headerKey(name);
    return this.headers.some((h) => h.key === key);
  }

  /** Adds a header after the existing ones. */
  append(name: string, value: string): this {
    assertHeader(name, value);
    this.headers.push({ name: canonicalHeaderName(name), key: headerKey(name), value });
    return this;
  }

  /** Adds a header before all others of its name (e.g. our Via on a request we send). */
  prepend(name: string, value: string): this {
    assertHeader(name, value);
    const key = headerKey(name);
    const index = this.headers.findIndex((h) => h.key === key);
    const header = { name: canonicalHeaderName(name), key, value };
    if (index < 0) this.headers.push(header);
    else this.headers.splice(index, 0, header);
    return this;
  }

  /** Replaces all values of a header, keeping the position of the first one. */
  set(name: string, value: string | readonly string[]): this {
    const values = typeof value === 'string' ? [value] : value;
    for (const v of values) assertHeader(name, v);
    const key = headerKey(name);
    const index = this.headers.findIndex((h) => h.key === key);
    this.remove(name);
    const entries = values.map((v) => ({ name: canonicalHeaderName(name), key, value: v }));
    this.headers.splice(index < 0 ? this.headers.length : index, 0, ...entries);
    return this;
  }

  /** Replaces only the first value of a header (the top Via, RFC 3261 §18.2.1). */
  setFirst(name: string, value: string): this {
    assertHeader(name, value);
    const key = headerKey(name);
    const header = this.headers.find((h) => h.key === key);
    if (header) header.value = value;
    else this.append(name, value);
    return this;
  }

  remove(name: string): this {
    const key = headerKey(name);
    for (let i = this.headers.length - 1; i >= 0; i--) if (this.headers[i]?.key === key) this.headers.splice(i, 1);
    return this;
  }

  private required(name: string): string {
    const value = this.get(name);
    if (value === undefined) throw new SipParseError(`missing ${canonicalHeaderName(name)}`);
    return value;
  }

  get callId(): string {
    return this.required('call-id');
  }

  get cseq(): CSeq {
    return parseCSeq(this.required('cseq'));
  }

  get from(): NameAddr {
    return parseNameAddr(this.required('from'));
  }

  get to(): NameAddr {
    return parseNameAddr(this.required('to'));
  }

  get topVia(): Via {
    return parseVia(this.required('via'));
  }

  get vias(): Via[] {
    return this.getAll('via').map(parseVia);
  }

  /** Max-Forwards, 70 when absent. */
  get maxForwards(): number {
    const value = this.get('max-forwards');
    return value === undefined ? DEFAULT_MAX_FORWARDS : parseMaxForwards(value);
  }

  /** The media type of the body, lower case without parameters ("application/sdp"). */
  get mediaType(): string | undefined {
    const value = this.get('content-type');
    return value === undefined ? undefined : trimLws(value.split(';')[0] ?? '').toLowerCase();
  }

  /** Sets the body and its Content-Type (Content-Length is written by serialize()). */
  setBody(contentType: string, content: string | Buffer): this {
    this.body = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    this.set('Content-Type', contentType);
    return this;
  }

  /** The message on the wire, with a Content-Length that matches the body (RFC 3261 §20.14). */
  serialize(): Buffer {
    let head = `${this.startLine}\r\n`;
    for (const h of this.headers) if (h.key !== 'content-length') head += `${h.name}: ${h.value}\r\n`;
    head += `Content-Length: ${this.body.length}\r\n\r\n`;
    const headBuf = Buffer.from(head, 'utf8');
    return this.body.length === 0 ? headBuf : Buffer.concat([headBuf, this.body]);
  }
}

export class SipRequest extends SipMessage {
  constructor(
    public method: string,
    public uri: string,
  ) {
    super();
  }

  get startLine(): string {
    return `${this.method} ${this.uri} SIP/2.0`;
  }
}

export class SipResponse extends SipMessage {
  constructor(
    public status: number,
    public reason: string,
  ) {
    super();
  }

  get startLine(): string {
    return `SIP/2.0 ${this.status} ${this.reason}`;
  }
}

type StartLine =
  | { message: SipRequest | SipResponse; foreignVersion: boolean; brokenRequestLine?: undefined }
  | {
    message: SipRequest;
    foreignVersion: false;
    /**
     * Why the request line is malformed, when it is a request line whose method is still a
     * token: the headers decide whether the request can be answered (RFC 4475 §3.1.2.7 – §3.1.2.10).
     */
    brokenRequestLine: string;
  };

/** Request-Line = Method SP Request-URI SP SIP-Version; Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.1, §7.2). */
function parseStartLine(line: string): StartLine {
  if (line.startsWith('SIP/') || line.startsWith('sip/')) {
    // A malformed status line is never answered (responses are not answered, §17.1.3 / §18.1.2).
    const m = /^SIP\/2\.0 ([1-6][0-9]{2})(?: (.*))?$/is.exec(line);
    if (!m || CONTROL_CHAR_RE.test(line)) throw new SipParseError('bad status line');
    return { message: new SipResponse(Number(m[1]), m[2] ?? ''), foreignVersion: false };
  }
  const parts = line.split(' ');
  const [method = '', uri = '', version = ''] = parts;
  // Without a method there is nothing to say this is a request at all: dropped.
  if (!isToken(method)) throw new SipParseError('bad method');
  // The Request-URI is never used to build a response, so a broken one is kept empty rather
  // than carried about half-read.
  const broken = (reason: string): StartLine => ({ message: new SipRequest(method, ''), foreignVersion: false, brokenRequestLine: reason });
  // §3.1.2.9 lwsstart / §3.1.2.10 trws / §3.1.2.8 lwsruri: exactly one SP between the three
  // elements and none after the version (§25.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF).
  if (parts.length !== 3) return broken('bad request line');
  if (CONTROL_CHAR_RE.test(line)) return broken('control character in request line');
  // §3.1.2.7 ltgtruri: "<sip:...>" is a name-addr, not an absoluteURI.
  if (!isAbsoluteUri(uri)) return broken('bad Request-URI');
  let foreignVersion = false;
  if (!/^SIP\/2\.0$/i.test(version)) {
    if (!/^SIP\/[0-9]{1,3}\.[0-9]{1,3}$/i.test(version)) return broken('bad SIP version');
    foreignVersion = true;
  }
  return { message: new SipRequest(method, uri), foreignVersion };
}

/**
 * RFC 4475 §3.1.2.7 – §3.1.2.10: a request whose only fault is its request line "should" get 400
 * (ltgtruri, lwsruri), or it is "acceptable to reject" it (lwsstart, trws). We do answer it, from
 * the headers alone, but only when every one a response is built from reads cleanly (Via, From,
 * To, Call-ID, CSeq, §8.2.6.2) and the CSeq names the request line's method: a bad start line in
 * front of bad headers is more likely noise than a SIP request, and answering noise would make us
 * a reflector. Anything less is dropped, as before, with no partial.
 */
function answerableBrokenRequest(message: SipRequest, reason: string): never {
  const drop = (why: string): never => {
    throw new SipParseError(`${reason}; ${why}`);
  };
  validate(message, drop);
  throw new SipParseError(reason, { status: 400, partial: message });
}

/** Joins folded lines: "LWS = [*WSP CRLF] 1*WSP", equivalent to a single SP (§7.3.1). */
function unfold(lines: string[]): string[] {
  const out: string[] = [];
  for (const line of lines) {
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      if (out.length === 0) throw new SipParseError('folded line before any header');
      out[out.length - 1] = `${trimLws(out[out.length - 1] ?? '')} ${trimLws(line)}`;
    } else {
      out.push(line);
    }
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses one SIP message. `transport` decides the body framing (RFC 3261 §18.3): over UDP a
 * missing Content-Length means the rest of the datagram is the body and extra bytes after
 * Content-Length are dropped; over TCP (already framed by the transport) Content-Length is
 * mandatory. Throws SipParseError and nothing else, whatever the input.
 */
export function parseMessage(data: Buffer, transport: TransportProtocol = 'udp'): SipRequest | SipResponse {
  try {
    return parseUnchecked(data, transport);
  } catch (err) {
    if (err instanceof SipParseError) throw err;
    throw new SipParseError('unparseable message', { cause: err });
  }
}

function parseUnchecked(data: Buffer, transport: TransportProtocol): SipRequest | SipResponse {
  // "Implementations processing SIP messages over stream-oriented transports MUST ignore any
  // CRLF appearing before the start-line" (§7.5); harmless to do for datagrams too.
  let start = 0;
  while (start + 1 < data.length && data[start] === 0x0d && data[start + 1] === 0x0a) start += 2;
  const headEnd = data.indexOf('\r\n\r\n', start, 'latin1');
  if (headEnd < 0) {
    throw new SipParseError(data.length - start > MAX_HEADER_BYTES ? 'header section too large' : 'missing empty line after headers');
  }
  if (headEnd - start > MAX_HEADER_BYTES) throw new SipParseError('header section too large');
  let head: string;
  try {
    head = utf8.decode(data.subarray(start, headEnd));
  } catch {
    throw new SipParseError('header section is not UTF-8');
  }
  const lines = head.split('\r\n');
  if (lines.some((line) => line.includes('\r') || line.includes('\n'))) throw new SipParseError('bare CR or LF');
  const { message, foreignVersion, brokenRequestLine } = parseStartLine(lines[0] ?? '');

  const headerLines = unfold(lines.slice(1));
  if (headerLines.length > MAX_HEADER_LINES) throw new SipParseError('too many headers');
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new SipParseError('header without colon');
    const name = trimLws(line.slice(0, colon));
    if (!isToken(name)) throw new SipParseError('bad header name');
    const value = trimLws(line.slice(colon + 1));
    if (CONTROL_CHAR_RE.test(value)) throw new SipParseError('control character in header');
    const key = headerKey(name);
    // An empty list header ("Supported:" with no option tags) is kept as one empty value.
    const list = isListHeader(key) ? splitList(value) : [value];
    const values = list.length === 0 ? [''] : list;
    for (const v of values) message.headers.push({ name: canonicalHeaderName(name), key, value: v });
  }

  if (brokenRequestLine !== undefined) answerableBrokenRequest(message, brokenRequestLine);

  // From here on the start line and headers are known: errors carry the partial message.
  const fail = (reason: string, status = 400): never => {
    throw new SipParseError(reason, { status, partial: message });
  };
  if (foreignVersion) fail('SIP Version Not Supported', 505);
  frameBody(message, data.subarray(headEnd + 4), transport, fail);
  validate(message, fail);
  return message;
}

function frameBody(
  message: SipMessage,
  rest: Buffer,
  transport: TransportProtocol,
  fail: (reason: string) => never,
): void {
  const lengths = message.getAll('content-length');
  if (lengths.length > 1) fail('multiple Content-Length');
  const declared = lengths[0];
  if (declared === undefined) {
    if (transport === 'tcp') fail('missing Content-Length');
    // Without Content-Length on a datagram "the message body is assumed to end at the end of the
    // transport packet" (§18.3); a trailing CRLF some phones add is not a body.
    message.body = isBlank(rest) ? EMPTY : Buffer.from(rest);
    return;
  }
  let length = 0;
  try {
    length = parseBoundedInteger(declared, 2 ** 31 - 1, 'Content-Length');
  } catch (err) {
    fail(err instanceof SipParseError ? err.reason : 'bad Content-Length');
  }
  // "If the transport packet ends before the end of the message body, this is considered an
  // error." ... "additional bytes in the transport packet beyond the end of the body MUST be
  // discarded." (§18.3)
  if (rest.length < length) fail('body shorter than Content-Length');
  message.body = length === 0 ? EMPTY : Buffer.from(rest.subarray(0, length));
}

function isBlank(buf: Buffer): boolean {
  for (const byte of buf) if (byte !== 0x0d && byte !== 0x0a && byte !== 0x20 && byte !== 0x09) return false;
  return true;
}

function exactlyOne(message: SipMessage, name: string, fail: (reason: string) => never): string {
  const values = message.getAll(name);
  if (values.length === 0) fail(`missing ${canonicalHeaderName(name)}`);
  if (values.length > 1) fail(`multiple ${canonicalHeaderName(name)}`);
  return values[0] ?? '';
}

/** The minimum every request and response carries: To, From, CSeq, Call-ID, Via (§8.1.1, §20). */
function validate(message: SipRequest | SipResponse, fail: (reason: string) => never): void {
  const attempt = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      return fail(err instanceof SipParseError ? err.reason : 'bad header');
    }
  };
  const vias = message.getAll('via');
  if (vias.length === 0) fail('missing Via');
  for (const via of vias) attempt(() => parseVia(via));
  const from = exactlyOne(message, 'from', fail);
  attempt(() => parseNameAddr(from));
  const to = exactlyOne(message, 'to', fail);
  attempt(() => parseNameAddr(to));
  const callId = exactlyOne(message, 'call-id', fail);
  if (!isValidCallId(callId)) fail('bad Call-ID');
  const cseq = attempt(() => parseCSeq(exactlyOne(message, 'cseq', fail)));

  const expires = message.getAll('expires');
  if (expires.length > 1) fail('multiple Expires');
  if (expires[0] !== undefined) attempt(() => parseBoundedInteger(expires[0] ?? '', 2 ** 32 - 1, 'Expires'));
  if (message.body.length > 0 && !message.has('content-type')) fail('body without Content-Type');

  if (message instanceof SipRequest) {
    if (cseq.method !== message.method) fail('CSeq method mismatch');
    const maxForwards = message.getAll('max-forwards');
    if (maxForwards.length > 1) fail('multiple Max-Forwards');
    if (maxForwards[0] !== undefined) attempt(() => parseMaxForwards(maxForwards[0] ?? ''));
    // A broken request line's Request-URI is kept empty (parseStartLine): no scheme, not parsed.
    const scheme = uriScheme(message.uri);
    if (scheme === 'sip' || scheme === 'sips') attempt(() => parseUri(message.uri));
  }
}
