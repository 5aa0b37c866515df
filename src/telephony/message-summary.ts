/**
 * Message-waiting indication, engine-independent: what a mailbox's counts look like on the wire
 * (RFC 3842 application/simple-message-summary) and what an engine needs from the rest of the
 * server to serve `message-summary` subscriptions (RFC 6665) and unsolicited NOTIFYs.
 */

export const MESSAGE_SUMMARY_EVENT = 'message-summary';
export const MESSAGE_SUMMARY_CONTENT_TYPE = 'application/simple-message-summary';

export interface MailboxCounts {
  /** Messages not yet listened to. */
  readonly new: number;
  /** Messages kept after listening ("old" in RFC 3842). */
  readonly saved: number;
}

export interface MailboxRef {
  readonly domain: string;
  readonly mailbox: string;
}

/** What the engines ask of the server for MWI. */
export interface MwiBackend {
  /**
   * The mailbox a SUBSCRIBE names (user and host of its Request-URI, e.g. `201@demo.local`, or a
   * voicemail access number with the subscriber's identity), or null when there is none.
   */
  resolve(user: string, host: string): Promise<MailboxRef | null>;
  counts(ref: MailboxRef): Promise<MailboxCounts>;
  /** Called with every mailbox whose counts may have changed (deposit, listen, delete, reset). */
  onChanged(listener: (ref: MailboxRef) => void): void;
  /** Contacts that get NOTIFYs without subscribing (configured per mailbox); may be empty. */
  unsolicitedContacts(ref: MailboxRef): readonly string[];
}

/**
 * The RFC 3842 §5.2 body: "Messages-Waiting" yes/no, the account it is for, and the voice
 * message counts as new/old with the urgent ones in parentheses (§5.2: `Voice-Message: 2/8
 * (0/2)`; we have no urgent messages). Lines end in CRLF (§5.1 ABNF).
 */
export function formatMessageSummary(counts: MailboxCounts, account: string): string {
  const lines = [
    `Messages-Waiting: ${counts.new > 0 ? 'yes' : 'no'}`,
    `Message-Account: ${account}`,
    `Voice-Message: ${counts.new}/${counts.saved} (0/0)`,
  ];
  return `${lines.join('\r\n')}\r\n`;
}

/** The Message-Account URI of a mailbox (RFC 3842 §5.2), the user escaped as RFC 3261 §25.1 `user` requires. */
export function messageAccount(ref: MailboxRef): string {
  const user = Array.from(Buffer.from(ref.mailbox, 'utf8'))
    .map((byte) => {
      const c = String.fromCharCode(byte);
      return /[A-Za-z0-9\-_.!~*'()&=+$,;?/]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  return `sip:${user}@${ref.domain}`;
}
