/**
 * Whose voicemail a redirected call is for. A PBX that gives up on an extension (no answer, busy,
 * unreachable) sends the call on to the voicemail number and says which extension it was for,
 * in one of two ways; both engines hand the raw header values here.
 *
 * - Diversion (RFC 5806 §2): each redirecting hop prepends an entry naming the party it was
 *   diverted from, so the topmost entry is the last extension that did not take the call — the
 *   one whose mailbox the caller should reach (201 forwards to 202, 202 does not answer: 202).
 * - History-Info (RFC 7044) with the voicemail URI parameters of RFC 4458: the entry that was
 *   retargeted to voicemail carries `cause=` (RFC 4458 §3: 486 busy, 408 no reply, 480
 *   unavailable) and usually `target=` (the original Request-URI); without `target`, the entry
 *   before it (its parent by index, RFC 7044 §10.3) is the one retargeted. Only the causes that
 *   mean "the user did not take this call" are a deposit; others (302 unconditional forward to
 *   somewhere else, 404) are not. The Request-URI itself may carry the same RFC 4458 parameters.
 *
 * Pure: no store, no trust decisions. Unparseable entries are skipped, never an error.
 */
import { decodePercent, parseNameAddr, parseUri, splitList, type SipUri } from './embedded/sip/index.js';

/** RFC 4458 §3.2 causes that mean the called user did not answer: busy, no reply, unavailable. */
export const DEPOSIT_CAUSES: ReadonlySet<string> = new Set(['486', '408', '480']);

export interface RedirectionHeaders {
  readonly requestUri: string | undefined;
  /** Diversion header values as received (one value may hold several comma-separated entries). */
  readonly diversion: readonly string[];
  readonly historyInfo: readonly string[];
}

export interface RedirectTarget {
  /** The user part of the redirected-from URI (an extension or mailbox number). */
  readonly user: string;
  /** Its host, when it is a SIP URI (the domain is still chosen by the router). */
  readonly host: string | undefined;
  readonly via: 'diversion' | 'history-info' | 'request-uri';
}

/** At most this many entries are looked at, so a hostile header cannot cost much. */
const MAX_ENTRIES = 32;

function entries(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    let parts: string[];
    try {
      parts = splitList(value);
    } catch {
      continue;
    }
    for (const part of parts) {
      if (out.length >= MAX_ENTRIES) return out;
      out.push(part);
    }
  }
  return out;
}

function tryUri(text: string | null | undefined, escaped = false): SipUri | undefined {
  if (text === undefined || text === null || text === '') return undefined;
  try {
    // A URI inside a URI parameter (RFC 4458 target=) arrives percent-encoded.
    return parseUri(escaped ? decodePercent(text) : text);
  } catch {
    return undefined;
  }
}

function userOf(uri: SipUri | undefined, via: RedirectTarget['via']): RedirectTarget | undefined {
  if (uri === undefined || uri.user === undefined || uri.user === '') return undefined;
  return { user: uri.user, host: uri.scheme === 'tel' ? undefined : uri.host, via };
}

/** RFC 4458 on a URI: `target` says for whom, `cause` why; only a deposit cause counts. */
function rfc4458Target(uri: SipUri, via: RedirectTarget['via']): RedirectTarget | 'noTarget' | undefined {
  const cause = uri.params['cause'];
  if (cause === undefined || cause === null || !DEPOSIT_CAUSES.has(cause)) return undefined;
  return userOf(tryUri(uri.params['target'], true), via) ?? 'noTarget';
}

function fromDiversion(values: readonly string[]): RedirectTarget | undefined {
  for (const entry of entries(values)) {
    try {
      const target = userOf(tryUri(parseNameAddr(entry).uri), 'diversion');
      if (target !== undefined) return target;
    } catch {
      continue;
    }
  }
  return undefined;
}

function fromHistoryInfo(values: readonly string[]): RedirectTarget | undefined {
  const parsed: { uri: SipUri; index: string | undefined }[] = [];
  for (const entry of entries(values)) {
    try {
      const addr = parseNameAddr(entry);
      const uri = tryUri(addr.uri);
      if (uri !== undefined) parsed.push({ uri, index: addr.params['index'] ?? undefined });
    } catch {
      continue;
    }
  }
  // The latest retargeting to voicemail is the one that brought the call here.
  for (let i = parsed.length - 1; i >= 0; i--) {
    const here = parsed[i]!;
    const found = rfc4458Target(here.uri, 'history-info');
    if (found === undefined) continue;
    if (found !== 'noTarget') return found;
    // No target= : the parent entry (index without its last part, RFC 7044 §10.3), else the one before.
    const parentIndex = here.index?.includes('.') ? here.index.slice(0, here.index.lastIndexOf('.')) : undefined;
    const parent = parsed.slice(0, i).reverse().find((p) => parentIndex !== undefined && p.index === parentIndex) ?? parsed[i - 1];
    const target = userOf(parent?.uri, 'history-info');
    if (target !== undefined) return target;
  }
  return undefined;
}

/** The extension a redirected call was meant for, or undefined when it was not redirected to us. */
export function redirectTarget(h: RedirectionHeaders): RedirectTarget | undefined {
  const ruri = tryUri(h.requestUri);
  if (ruri !== undefined) {
    const found = rfc4458Target(ruri, 'request-uri');
    if (found !== undefined && found !== 'noTarget') return found;
  }
  return fromHistoryInfo(h.historyInfo) ?? fromDiversion(h.diversion);
}
