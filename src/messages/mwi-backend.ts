/**
 * The server's side of message-waiting indication, for both engines (telephony/message-summary.ts
 * MwiBackend): which mailbox a SUBSCRIBE names, its counts, its changes (from this server and,
 * through the message service's change bus, from the others on the same Postgres), and the
 * contacts that get NOTIFYs without subscribing (MWI_CONTACTS).
 */
import type { MailboxRef, MwiBackend, Subscriber } from '../telephony/message-summary.js';
import { callerUser } from '../telephony/router.js';
import type { Database } from '../store/database.js';
import { findAccessNumber, findDomain, findMailbox, findMailboxOwnedBy } from '../store/directory.js';
import type { MessageService } from './message-service.js';

/** `mailbox@domain` → contact URIs, from MWI_CONTACTS. */
export type UnsolicitedContacts = ReadonlyMap<string, readonly string[]>;

export function mailboxKey(ref: MailboxRef): string {
  return `${ref.mailbox}@${ref.domain.toLowerCase()}`;
}

const USER = /^[A-Za-z0-9*#+._-]{1,64}$/;

export function createMwiBackend(deps: {
  db: Database; messages: MessageService; defaultDomain: string | undefined; contacts: UnsolicitedContacts;
}): MwiBackend {
  const contactRefs: MailboxRef[] = [...deps.contacts.keys()].map((key) => {
    const at = key.lastIndexOf('@');
    return { mailbox: key.slice(0, at), domain: key.slice(at + 1) };
  });
  return {
    async resolve(user, host, subscriber: Subscriber) {
      // The subscriber's AOR (sip:201@demo.local) names the mailbox by number, or by the
      // extension that owns it; the domain as for calls (host, else DEFAULT_DOMAIN).
      const name = user.replace(/^\+/, '');
      if (!USER.test(name)) return null;
      const domain = (await findDomain(deps.db, [host.toLowerCase()]))
        ?? (deps.defaultDomain === undefined ? null : await findDomain(deps.db, [deps.defaultDomain]));
      if (domain === null) return null;
      // A voicemail access number (*97) names "my mailbox", as for a call to it (CONTRACT, Calls):
      // the mailbox owned by the P-Asserted-Identity user, else the From user. Only trusted peers
      // get this far (mwi-policy.ts screenSubscribe), so the identity is believed as for calls.
      const access = await findAccessNumber(deps.db, domain.id, user);
      if (access?.kind === 'voicemail') {
        const who = callerUser(subscriber.assertedUser, subscriber.fromUser);
        const own = who === undefined ? null : await findMailboxOwnedBy(deps.db, domain.id, who);
        return own === null ? null : { domain: domain.name, mailbox: own.number };
      }
      const mailbox = (await findMailbox(deps.db, domain.id, name)) ?? (await findMailboxOwnedBy(deps.db, domain.id, name));
      return mailbox === null ? null : { domain: domain.name, mailbox: mailbox.number };
    },
    counts: (ref) => deps.messages.counts(ref.domain, ref.mailbox),
    onChanged(listener) {
      deps.messages.on('changed', (domain, mailbox) => listener({ domain, mailbox }));
    },
    onResync(listener) {
      // Changes other servers made while this one was not listening: the engines re-tell the
      // mailboxes of their subscriptions and, merged with those, the configured contacts'.
      deps.messages.on('resync', () => listener(contactRefs));
    },
    unsolicitedContacts: (ref) => deps.contacts.get(mailboxKey(ref)) ?? [],
  };
}
