/**
 * Cuts a TCP byte stream into SIP messages (RFC 3261 §18.3): the header section ends at the first
 * empty line, the body is Content-Length bytes long.
 */

export type Frame =
  /** One whole message (header section and body). */
  | { kind: 'message'; data: Buffer }
  /** A CRLFCRLF ping (RFC 5626 §4.4.1): answer with CRLF. */
  | { kind: 'ping' }
  /**
   * The message is larger than the cap; `head` is its header section when that was complete, and
   * `part` says whether the header section itself or the body (Content-Length) is too large.
   */
  | { kind: 'oversize'; head?: Buffer; part?: 'header' | 'body' }
  /** Content-Length unreadable: the stream cannot be framed any more. */
  | { kind: 'unframeable'; data: Buffer };

const CONTENT_LENGTH_RE = /^(?:content-length|l)[ \t]*:[ \t]*(.*)$/i;

export class TcpFramer {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessageBytes: number) {}

  /** Adds received bytes and returns every frame now complete. */
  push(chunk: Buffer): Frame[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const frame = this.next();
      if (!frame) return frames;
      frames.push(frame);
      if (frame.kind !== 'message' && frame.kind !== 'ping') return frames;
    }
  }

  private next(): Frame | undefined {
    // Keepalives between messages: CRLFCRLF is a ping, a lone CRLF (a pong or stray) is skipped.
    while (this.buffer.length >= 2 && this.buffer[0] === 0x0d && this.buffer[1] === 0x0a) {
      if (this.buffer.length < 4) {
        // "\r\n" or "\r\n\r" may still become a ping.
        if (this.buffer.length === 2 || this.buffer[2] === 0x0d) return undefined;
      } else if (this.buffer[2] === 0x0d && this.buffer[3] === 0x0a) {
        this.buffer = this.buffer.subarray(4);
        return { kind: 'ping' };
      }
      this.buffer = this.buffer.subarray(2);
    }
    const headEnd = this.buffer.indexOf('\r\n\r\n', 0, 'latin1');
    if (headEnd < 0) {
      if (this.buffer.length > this.maxMessageBytes) return this.drop({ kind: 'oversize' });
      return undefined;
    }
    const bodyStart = headEnd + 4;
    const head = this.buffer.subarray(0, bodyStart);
    if (bodyStart > this.maxMessageBytes) return this.drop({ kind: 'oversize', head: Buffer.from(head), part: 'header' });
    const length = contentLength(head);
    if (length === 'invalid') return this.drop({ kind: 'unframeable', data: Buffer.from(head) });
    const total = bodyStart + length;
    if (total > this.maxMessageBytes) return this.drop({ kind: 'oversize', head: Buffer.from(head), part: 'body' });
    if (this.buffer.length < total) return undefined;
    const data = Buffer.from(this.buffer.subarray(0, total));
    this.buffer = this.buffer.subarray(total);
    return { kind: 'message', data };
  }

  private drop(frame: Frame): Frame {
    this.buffer = Buffer.alloc(0);
    return frame;
  }
}

/**
 * Content-Length of a header section: 0 when absent (the parser then rejects the message, which
 * "MUST" have one on a stream, §18.3), 'invalid' when unreadable or given twice differently.
 */
function contentLength(head: Buffer): number | 'invalid' {
  const lines = head.toString('latin1').split('\r\n');
  let found: number | undefined;
  for (let i = 1; i < lines.length; i++) {
    const m = CONTENT_LENGTH_RE.exec(lines[i] ?? '');
    if (!m) continue;
    let value = (m[1] ?? '').trim();
    // A folded value continues on the next line.
    while (value === '' && /^[ \t]/.test(lines[i + 1] ?? '')) value = (lines[++i] ?? '').trim();
    if (!/^[0-9]{1,10}$/.test(value)) return 'invalid';
    const n = Number(value);
    if (found !== undefined && found !== n) return 'invalid';
    found = n;
  }
  return found ?? 0;
}
