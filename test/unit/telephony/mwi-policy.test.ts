import { describe, expect, it } from 'vitest';
import {
  MWI_EXPIRES, acceptsMessageSummary, mailboxKey, notifyEndsSubscription, parseEventHeader, remainingSeconds,
  sameMailbox, screenSubscribe, subscriptionExpires, subscriptionStateHeader, type SubscribeFacts,
} from '../../../src/telephony/mwi-policy.js';

const good: SubscribeFacts = { trusted: true, event: 'message-summary', expires: '3600', accept: undefined, hasContact: true };

describe('subscriptionExpires (RFC 6665 §4.2.1.1, RFC 3842 default one hour)', () => {
  it('absent or blank → 3600; above 3600 → 3600; 60..3600 as asked; 0 kept (fetch / unsubscribe)', () => {
    expect(subscriptionExpires(undefined)).toEqual({ ok: true, expiresS: 3600 });
    expect(subscriptionExpires('  ')).toEqual({ ok: true, expiresS: 3600 });
    expect(subscriptionExpires('86400')).toEqual({ ok: true, expiresS: 3600 });
    expect(subscriptionExpires('99999999999999999999999')).toEqual({ ok: true, expiresS: 3600 });
    expect(subscriptionExpires('60')).toEqual({ ok: true, expiresS: 60 });
    expect(subscriptionExpires(' 1800 ')).toEqual({ ok: true, expiresS: 1800 });
    expect(subscriptionExpires('0')).toEqual({ ok: true, expiresS: 0 });
  });

  it('nonzero below 60 → 423 with Min-Expires: 60; not a number → 400', () => {
    for (const v of ['1', '30', '59']) expect(subscriptionExpires(v)).toEqual({ ok: false, status: 423, headers: { 'Min-Expires': '60' } });
    for (const v of ['-1', '1.5', 'soon', '3600s']) expect(subscriptionExpires(v)).toMatchObject({ ok: false, status: 400 });
  });

  it('follows a given policy', () => {
    const policy = { defaultS: 600, maxS: 900, minS: 120 };
    expect(subscriptionExpires(undefined, policy)).toEqual({ ok: true, expiresS: 600 });
    expect(subscriptionExpires('1000', policy)).toEqual({ ok: true, expiresS: 900 });
    expect(subscriptionExpires('119', policy)).toEqual({ ok: false, status: 423, headers: { 'Min-Expires': '120' } });
    expect(MWI_EXPIRES).toEqual({ defaultS: 3600, maxS: 3600, minS: 60 });
  });
});

describe('Event and Accept headers', () => {
  it('parses the package and its id parameter', () => {
    expect(parseEventHeader('message-summary')).toEqual({ package: 'message-summary', id: undefined });
    expect(parseEventHeader(' message-summary ; id=7 ')).toEqual({ package: 'message-summary', id: '7' });
    expect(parseEventHeader('')).toBeNull();
    expect(parseEventHeader(undefined)).toBeNull();
  });

  it('accepts absent/empty Accept, */*, application/*, and the type itself with parameters', () => {
    for (const a of [undefined, '', 'application/simple-message-summary', 'text/plain, Application/Simple-Message-Summary;q=0.5', '*/*', 'application/*']) {
      expect(acceptsMessageSummary(a), String(a)).toBe(true);
    }
    expect(acceptsMessageSummary('application/pidf+xml')).toBe(false);
  });
});

describe('screenSubscribe: the status a SUBSCRIBE gets before the mailbox is looked up', () => {
  it('accepts a trusted message-summary SUBSCRIBE with the granted expiry and the event', () => {
    expect(screenSubscribe(good)).toEqual({ kind: 'accept', expiresS: 3600, event: { package: 'message-summary', id: undefined } });
    expect(screenSubscribe({ ...good, event: 'Message-Summary', expires: undefined })).toMatchObject({ kind: 'accept', expiresS: 3600 });
  });

  it('403 untrusted — before anything else is looked at', () => {
    expect(screenSubscribe({ ...good, trusted: false, event: 'presence', expires: '1' })).toMatchObject({ kind: 'reject', status: 403 });
  });

  it('481 for a refresh of a dialog it does not know', () => {
    expect(screenSubscribe({ ...good, unknownDialog: true })).toMatchObject({ kind: 'reject', status: 481 });
  });

  it('489 + Allow-Events: message-summary for another package or none', () => {
    for (const event of ['presence', 'dialog', undefined, '']) {
      expect(screenSubscribe({ ...good, event })).toEqual({
        kind: 'reject', status: 489, headers: { 'Allow-Events': 'message-summary' }, why: 'event package not supported',
      });
    }
  });

  it('400 without Contact, 406 for an Accept without the body type, 423 / 400 for Expires', () => {
    expect(screenSubscribe({ ...good, hasContact: false })).toMatchObject({ kind: 'reject', status: 400 });
    expect(screenSubscribe({ ...good, accept: 'application/pidf+xml' })).toMatchObject({ kind: 'reject', status: 406 });
    expect(screenSubscribe({ ...good, expires: '10' })).toMatchObject({ kind: 'reject', status: 423, headers: { 'Min-Expires': '60' } });
    expect(screenSubscribe({ ...good, expires: 'x' })).toMatchObject({ kind: 'reject', status: 400 });
  });
});

describe('Subscription-State, NOTIFY failures, mailbox matching', () => {
  it('writes active;expires=N and terminated;reason=R', () => {
    expect(subscriptionStateHeader({ state: 'active', expiresS: 3600 })).toBe('active;expires=3600');
    expect(subscriptionStateHeader({ state: 'active', expiresS: -3 })).toBe('active;expires=0');
    expect(subscriptionStateHeader({ state: 'terminated', reason: 'timeout' })).toBe('terminated;reason=timeout');
  });

  it('counts the seconds left, rounded up', () => {
    expect(remainingSeconds(10_000, 0)).toBe(10);
    expect(remainingSeconds(10_000, 1)).toBe(10);
    expect(remainingSeconds(10_000, 1001)).toBe(9);
    expect(remainingSeconds(10_000, 20_000)).toBe(0);
  });

  it('481, 408 and the other RFC 6665 §4.2.2 statuses end a subscription; 2xx and other failures do not', () => {
    for (const status of [404, 405, 408, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604]) expect(notifyEndsSubscription(status), String(status)).toBe(true);
    for (const status of [200, 202, 400, 403, 486, 500, 503, 603]) expect(notifyEndsSubscription(status), String(status)).toBe(false);
  });

  it('matches mailboxes with the domain case-insensitively and the mailbox exactly', () => {
    expect(sameMailbox({ domain: 'Demo.Local', mailbox: '201' }, { domain: 'demo.local', mailbox: '201' })).toBe(true);
    expect(sameMailbox({ domain: 'demo.local', mailbox: '201' }, { domain: 'demo.local', mailbox: '202' })).toBe(false);
    expect(sameMailbox({ domain: 'demo.local', mailbox: '201' }, { domain: 'other.local', mailbox: '201' })).toBe(false);
    expect(mailboxKey({ domain: 'DEMO.local', mailbox: '201' })).toBe('201@demo.local');
  });
});
