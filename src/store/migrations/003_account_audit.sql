-- Account changes made with the command line are audited (channel cli, actor cli:<os user>):
-- a user created, a portal password set (which also ends that user's sessions), an operator
-- created or given a password, an API token created or revoked. Never a password or a token in
-- any field. Operators and tokens belong to no domain: their rows are kept under domain '*'
-- with the operator's name as the mailbox.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_event;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_event CHECK (event IN
  ('login_succeeded', 'login_failed', 'pin_changed', 'pin_set', 'mailbox_locked', 'mailbox_unlocked',
   'pin_change_required', 'mailbox_reset', 'mailbox_recycled', 'message_deleted',
   'user_created', 'portal_password_set', 'operator_set', 'api_token_created', 'api_token_revoked'));

-- The audit API filters by domain and time (since/until) in SQL.
CREATE INDEX audit_events_domain_at_idx ON audit_events (domain, at, id);
