/**
 * DTMF carried in SIP INFO bodies, as phones send it when configured for "SIP INFO" DTMF:
 * `application/dtmf-relay` (`Signal=5\r\nDuration=160`, the Cisco/Polycom format) and
 * `application/dtmf` (the bare key). Returns the key, null for a body without one (answer 200,
 * nothing pressed), or 'unsupported' for another content type (answer 415).
 */
const KEYS = /^[0-9*#A-D]$/;

export function parseDtmfInfo(contentType: string | undefined, body: string): string | null | 'unsupported' {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/dtmf-relay') {
    const signal = /^\s*signal\s*=\s*(\S+)\s*$/im.exec(body)?.[1];
    if (signal === undefined) return null;
    // Some phones send the flash hook as "!" or event numbers; only 0-9 * # A-D are keys.
    const key = signal === '10' ? '*' : signal === '11' ? '#' : signal.toUpperCase();
    return KEYS.test(key) ? key : null;
  }
  if (type === 'application/dtmf') {
    const key = body.trim().toUpperCase();
    if (key === '10') return '*';
    if (key === '11') return '#';
    return KEYS.test(key) ? key : null;
  }
  if (type === '' && body.trim() === '') return null; // an empty INFO (keepalive) is fine
  return 'unsupported';
}
