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

/**
 * Who sent a SUBSCRIBE, as the engines read it — believed only because the request came from a
 * trusted peer (screenSubscribe answers 403 to everyone else before anything is resolved).
 */
export interface Subscriber {
  /** P-Asserted-Identity user (RFC 3325 §9.1), if the request carried that header. */
  readonly assertedUser?: string | undefined;
  readonly fromUser?: string | undefined;
}

/** What the engines ask of the server for MWI. */
export interface MwiBackend {
  /**
   * The mailbox a SUBSCRIBE names (user and host of its Request-URI, e.g. `201@demo.local`), or
   * for a voicemail access number (`*97@demo.local`) the subscriber's own mailbox, as for a call
   * to it: the one owned by the P-Asserted-Identity user, else the From user. Null when there is
   * none (404).
   */
  resolve(user: string, host: string, subscriber: Subscriber): Promise<MailboxRef | null>;
  counts(ref: MailboxRef): Promise<MailboxCounts>;
  /** Called with every mailbox whose counts may have changed (deposit, listen, delete, reset). */
  onChanged(listener: (ref: MailboxRef) => void): void;
  /**
   * Called when changes may have been missed (the store's change feed reconnected): every mailbox
   * with a live subscription, and every one of `mailboxes` (those with unsolicited contacts; none
   * when left out), should be told its counts again — once each, as for one change.
   */
  onResync?(listener: (mailboxes?: readonly MailboxRef[]) => void): void;
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
