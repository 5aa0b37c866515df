/**
 * The server's side of message-waiting indication, for both engines (telephony/message-summary.ts
 * MwiBackend): which mailbox a SUBSCRIBE names, its counts, its changes, and the contacts that
 * get NOTIFYs without subscribing (MWI_CONTACTS).
 */
import type { MailboxRef, MwiBackend } from '../telephony/message-summary.js';
import type { Database } from '../store/database.js';
import { findDomain, findMailbox, findMailboxOwnedBy } from '../store/directory.js';
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
  return {
    async resolve(user, host) {
      // The subscriber's AOR (sip:201@demo.local) names the mailbox by number, or by the
      // extension that owns it; the domain as for calls (host, else DEFAULT_DOMAIN).
      const name = user.replace(/^\+/, '');
      if (!USER.test(name)) return null;
      const domain = (await findDomain(deps.db, [host.toLowerCase()]))
        ?? (deps.defaultDomain === undefined ? null : await findDomain(deps.db, [deps.defaultDomain]));
      if (domain === null) return null;
      const mailbox = (await findMailbox(deps.db, domain.id, name)) ?? (await findMailboxOwnedBy(deps.db, domain.id, name));
      return mailbox === null ? null : { domain: domain.name, mailbox: mailbox.number };
    },
    counts: (ref) => deps.messages.counts(ref.domain, ref.mailbox),
    onChanged(listener) {
      deps.messages.on('changed', (domain, mailbox) => listener({ domain, mailbox }));
    },
    unsolicitedContacts: (ref) => deps.contacts.get(mailboxKey(ref)) ?? [],
  };
}
