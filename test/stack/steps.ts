/**
 * The stack check: every sipp scenario of the embedded e2e tests, in one order that holds on a
 * freshly seeded demo tenant (`vmaccess demo` on an empty store), so the same scenarios prove an
 * external target — the drachtio-server + FreeSWITCH stack — as prove the embedded engine.
 *
 * Each step is one sipp call that must pass (exit 0). Where the runner can read the target's
 * store (its own server, or STACK_DATABASE_URL) it also checks the audit rows of that call —
 * sipp alone cannot tell a refused login from an accepted one in every scenario.
 *
 * `needs` marks what a step requires besides SIP; the runner skips such a step, saying why,
 * when it does not have it:
 *   untrusted   a second local address the target does NOT trust (STACK_UNTRUSTED_ADDRESS)
 *   store       write access to the target's store (must_change is set there)
 *   admin       `vmaccess unlock` on the target (STACK_VMACCESS_CLI, e.g. "docker compose exec -T vmaccess node bin/vmaccess.js")
 *   ringing     the target answers after ANSWER_DELAY_MS ≥ 1000 (STACK_ANSWER_DELAY=1)
 */
export type StackNeed = 'untrusted' | 'store' | 'admin' | 'ringing';

export interface StackStep {
  readonly name: string;
  readonly scenario: string;
  readonly service: string;
  readonly caller: string;
  readonly domain?: string;
  readonly transport?: 'u1' | 't1';
  readonly keys?: Readonly<Record<string, string>>;
  readonly untrusted?: boolean;
  readonly needs?: readonly StackNeed[];
  /** Before the call: set must_change on a mailbox (needs store). */
  readonly before?: { readonly mustChange: string } | { readonly unlock: string };
  /** Audit rows of this call: [mailbox, event] in order (checked when the store is readable). */
  readonly audit?: ReadonlyArray<readonly [string, string]>;
  /**
   * A second sipp call made while this one runs (started `afterMs` into it, default 2000 — a
   * subscription is in place by then), which must pass too: what changes the counts a
   * message-summary subscriber is waiting to hear about.
   */
  readonly alongside?: { readonly scenario: string; readonly service: string; readonly caller: string; readonly afterMs?: number };
  /** After the call: how many messages [domain's mailbox, count] holds (checked when the store is readable). */
  readonly messages?: readonly [string, number];
}

const OK = (mailbox: string): Array<[string, string]> => [[mailbox, 'login_succeeded']];
const FAILED3 = (mailbox: string): Array<[string, string]> => [[mailbox, 'login_failed'], [mailbox, 'login_failed'], [mailbox, 'login_failed']];

export const STACK_STEPS: readonly StackStep[] = [
  // Signalling answers ------------------------------------------------------------------------
  { name: 'OPTIONS → 200 with Allow', scenario: 'options.xml', service: '*97', caller: '201' },
  // Message waiting (RFC 3842): 201 of the fresh demo tenant has no messages yet.
  { name: 'MWI: SUBSCRIBE to 201 → NOTIFY Voice-Message 0/0 → unsubscribe → terminated', scenario: 'mwi-subscribe.xml', service: '201', caller: '201', keys: { voice: '0/0' } },
  // Messages (issue 8's "done when"): a caller leaves one at vm-201 while 201's phone is
  // subscribed, which hears 1/0; 201 dials *97, 1, deletes it with 7, and the phone hears 0/0.
  {
    name: 'a message left at vm-201 (sipp, 7 s of speech) → the subscribed phone gets NOTIFY 1/0',
    scenario: 'mwi-subscribe-change.xml', service: '201', caller: '201', keys: { voice: '0/0', after: '1/0' },
    alongside: { scenario: 'deposit-message.xml', service: 'vm-201', caller: '5551234' }, messages: ['201', 1],
  },
  {
    name: '201: *97, 4826, 1, 7 deletes the message → the subscribed phone gets NOTIFY 0/0',
    scenario: 'mwi-subscribe-change.xml', service: '201', caller: '201', keys: { voice: '1/0', after: '0/0' },
    alongside: { scenario: 'listen-delete-201.xml', service: '*97', caller: '201' }, messages: ['201', 0],
  },
  { name: 'unknown number → 404', scenario: 'unknown-number.xml', service: '5555', caller: '201', audit: [] },
  { name: 'AA number of another domain → 404', scenario: 'unknown-number.xml', service: '15550100', caller: '201', domain: 'other.local', audit: [] },
  { name: 'no G.711 in the offer → 488', scenario: 'no-common-codec.xml', service: '*97', caller: '201', audit: [] },
  { name: 'malformed INVITE → 400', scenario: 'malformed-content-length.xml', service: '*97', caller: '201' },
  { name: 'CANCEL after 180 → 200 + 487', scenario: 'cancel-before-answer.xml', service: '*97', caller: '201', needs: ['ringing'], audit: [] },
  // Hang-ups at every point (no state change) ------------------------------------------------
  { name: 'caller hangs up mid-prompt', scenario: 'caller-hangs-up-mid-prompt.xml', service: '*97', caller: '201', audit: [] },
  { name: 'caller hangs up during code entry', scenario: 'hangup-during-code-entry.xml', service: '*97', caller: '201', audit: [] },
  { name: 'caller hangs up while the code is checked', scenario: 'hangup-while-verifying.xml', service: '*97', caller: '201' },
  { name: 'caller hangs up after a wrong code (voicemail key, 202)', scenario: 'hangup-in-main-menu.xml', service: 'voicemail', caller: '202', audit: [['202', 'login_failed']] },
  { name: 'caller hangs up in the main menu (TCP)', scenario: 'hangup-in-main-menu.xml', service: '*97', caller: '201', transport: 't1', audit: OK('201') },
  { name: 'caller hangs up while choosing a new code', scenario: 'hangup-during-new-code.xml', service: '*97', caller: '201', audit: OK('201') },
  { name: 'AA: invalid option, caller hangs up', scenario: 'aa-hangup-after-invalid-option.xml', service: '15550100', caller: '299', audit: [] },
  // Ways in ----------------------------------------------------------------------------------
  { name: '*97 as 202', scenario: 'login-202-goodbye.xml', service: '*97', caller: '202', audit: OK('202') },
  { name: 'voicemail key as 202', scenario: 'login-202-goodbye.xml', service: 'voicemail', caller: '202', audit: OK('202') },
  { name: '*97 as 202 over TCP', scenario: 'login-202-goodbye.xml', service: '*97', caller: '202', transport: 't1', audit: OK('202') },
  { name: 'caller without a mailbox: account 202 + 7391', scenario: 'account-login-goodbye.xml', service: '*97', caller: '299', audit: OK('202') },
  { name: 'AA 15550100 → 9 → 202 → 7391', scenario: 'aa-voicemail-login-goodbye.xml', service: '15550100', caller: '299', audit: OK('202') },
  { name: 'AA +15550100 → 9 → 202 → 7391', scenario: 'aa-voicemail-login-goodbye.xml', service: '+15550100', caller: '299', audit: OK('202') },
  { name: 'AA invalid option, then 9 → 202', scenario: 'aa-invalid-option-then-login.xml', service: '15550100', caller: '201', audit: OK('202') },
  { name: 'AA 0 → REFER accepted → BYE', scenario: 'aa-transfer-accepted.xml', service: '15550100', caller: '299', audit: [] },
  { name: 'AA 0 → REFER declined (603) → menu → 9 → 202', scenario: 'aa-transfer-declined.xml', service: '15550100', caller: '299', audit: OK('202') },
  { name: 'AA 0 → REFER not allowed (405) → menu → 9 → 202', scenario: 'aa-transfer-not-allowed.xml', service: '+15550100', caller: '299', audit: OK('202') },
  { name: 'P-Asserted-Identity 201 from a trusted peer', scenario: 'asserted-login-goodbye.xml', service: '*97', caller: '299', keys: { asserted: '201' }, audit: OK('201') },
  { name: 'P-Asserted-Identity ignored from an untrusted peer: account number asked', scenario: 'asserted-account-login-goodbye.xml', service: '*97', caller: '201', keys: { asserted: '201' }, untrusted: true, needs: ['untrusted'], audit: OK('201') },
  { name: 'untrusted peer typing only the code: taken as an account number', scenario: 'asserted-code-only.xml', service: '*97', caller: '201', keys: { asserted: '201' }, untrusted: true, needs: ['untrusted'], audit: [['4826', 'login_failed']] },
  { name: 'mailbox without a code (203) from outside: login incorrect ×3', scenario: 'account-203-three-times.xml', service: '*97', caller: '299', audit: FAILED3('203') },
  { name: 'first-time setup: 203 chooses 2580', scenario: 'first-code-goodbye.xml', service: '*97', caller: '203', audit: [['203', 'pin_set']] },
  { name: '203 logs in with 2580', scenario: 'login-2580-goodbye.xml', service: '*97', caller: '203', audit: OK('203') },
  { name: 'tenants: 4826 does not open other.local 201', scenario: 'login-wrong-code-three-times.xml', service: '*97', caller: '201', domain: 'other.local', audit: FAILED3('201') },
  { name: 'tenants: other.local 201 opens with 1357', scenario: 'login-1357-goodbye.xml', service: '*97', caller: '201', domain: 'other.local', audit: OK('201') },
  { name: 'shared mailbox 290 with 6042', scenario: 'account-290-login-goodbye.xml', service: '*97', caller: '299', audit: OK('290') },
  // Digits and media -------------------------------------------------------------------------
  { name: 'keys by SIP INFO (application/dtmf-relay)', scenario: 'info-login-goodbye.xml', service: '*97', caller: '201', audit: OK('201') },
  { name: 'keys by SIP INFO (application/dtmf)', scenario: 'info-dtmf-login-goodbye.xml', service: '*97', caller: '201', audit: OK('201') },
  { name: 're-INVITE hold/unhold mid-IVR', scenario: 'reinvite-hold-unhold-login.xml', service: '*97', caller: '201', audit: OK('201') },
  // The walking skeleton: change, new code works, old code refused ---------------------------
  { name: '201: 4826 → 9595', scenario: 'login-change-goodbye.xml', service: '*97', caller: '201', audit: [['201', 'login_succeeded'], ['201', 'pin_changed']] },
  { name: '201 logs in with 9595', scenario: 'login-new-code-goodbye.xml', service: '*97', caller: '201', audit: OK('201') },
  { name: '201: 4826 refused three times', scenario: 'login-wrong-code-three-times.xml', service: '*97', caller: '201', audit: FAILED3('201') },
  // Rules ------------------------------------------------------------------------------------
  { name: 'must_change: 202 is taken into the change (3579)', scenario: 'login-forced-change-goodbye.xml', service: '*97', caller: '202', needs: ['store'], before: { mustChange: '202' }, audit: [['202', 'login_succeeded'], ['202', 'pin_changed']] },
  { name: 'policy refusals, then 6158', scenario: 'change-refused-then-valid.xml', service: '*97', caller: '202', needs: ['store'], audit: [['202', 'login_succeeded'], ['202', 'pin_changed']] },
  // Lockout ----------------------------------------------------------------------------------
  { name: 'lockout: 204 wrong ×3 (1)', scenario: 'login-wrong-code-three-times.xml', service: '*97', caller: '204', needs: ['admin'], audit: FAILED3('204') },
  { name: 'lockout: 204 wrong ×3 (2)', scenario: 'login-wrong-code-three-times.xml', service: '*97', caller: '204', needs: ['admin'], audit: FAILED3('204') },
  { name: 'lockout: 204 wrong ×3 (3)', scenario: 'login-wrong-code-three-times.xml', service: '*97', caller: '204', needs: ['admin'], audit: FAILED3('204') },
  { name: 'lockout: the tenth failure locks 204, the right code is refused', scenario: 'lockout-wrong-wrong-right.xml', service: '*97', caller: '204', needs: ['admin'], audit: [['204', 'login_failed'], ['204', 'mailbox_locked'], ['204', 'login_failed'], ['204', 'login_failed']] },
  { name: 'after vmaccess unlock, 204 logs in with 5150', scenario: 'login-5150-goodbye.xml', service: '*97', caller: '204', needs: ['admin'], before: { unlock: '204' }, audit: OK('204') },
];
