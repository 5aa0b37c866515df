-- Portal and admin (issue "Admin and portal") and messages (issue "Messages").
--
-- People act with their own credentials: a portal account is a user's own web password
-- (argon2id, separate from the voicemail access code); operators (resellers / superusers, all
-- domains) have their own accounts and API tokens. Sessions live in the store so every server
-- behind a load balancer sees them. Only hashes of passwords, tokens and session ids are kept.

-- The site (or department) a user belongs to: the scope of site managers and advanced users.
ALTER TABLE users ADD COLUMN site text
  CONSTRAINT users_site_nonempty CHECK (site IS NULL OR (site <> '' AND char_length(site) <= 64));

CREATE TABLE portal_accounts (
  user_id       integer PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  password_hash text NOT NULL CONSTRAINT portal_accounts_hash_argon2id CHECK (password_hash LIKE '$argon2id$%'),
  set_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operators (
  id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name          text NOT NULL UNIQUE CONSTRAINT operators_name CHECK (name ~ '^[a-z0-9._-]{1,64}$'),
  password_hash text CONSTRAINT operators_hash_argon2id CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- Bearer tokens for automation (channel admin). The token is shown once; only its SHA-256 is kept.
CREATE TABLE api_tokens (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_hash  text NOT NULL UNIQUE CONSTRAINT api_tokens_hash CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  operator_id integer NOT NULL REFERENCES operators (id) ON DELETE CASCADE,
  label       text NOT NULL CONSTRAINT api_tokens_label CHECK (label <> '' AND char_length(label) <= 100),
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

CREATE TABLE portal_sessions (
  id_hash          text PRIMARY KEY CONSTRAINT portal_sessions_id_hash CHECK (id_hash ~ '^[0-9a-f]{64}$'),
  user_id          integer REFERENCES users (id) ON DELETE CASCADE,
  operator_id      integer REFERENCES operators (id) ON DELETE CASCADE,
  csrf_token       text NOT NULL,
  authenticated_at timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  CONSTRAINT portal_sessions_one_principal CHECK ((user_id IS NULL) <> (operator_id IS NULL))
);
CREATE INDEX portal_sessions_expires_idx ON portal_sessions (expires_at);

-- Messages: metadata here, audio in the message store (audio_key names it there).
CREATE TABLE messages (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id  integer NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  caller      text NOT NULL CONSTRAINT messages_caller CHECK (char_length(caller) <= 128),
  caller_name text CONSTRAINT messages_caller_name CHECK (caller_name IS NULL OR char_length(caller_name) <= 128),
  received_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL CONSTRAINT messages_duration CHECK (duration_ms > 0),
  state       text NOT NULL DEFAULT 'new' CONSTRAINT messages_state CHECK (state IN ('new', 'saved')),
  audio_key   text NOT NULL UNIQUE
);
CREATE INDEX messages_mailbox_idx ON messages (mailbox_id, received_at DESC, id DESC);

-- A recorded greeting and name (message store keys); reset clears them.
ALTER TABLE mailboxes ADD COLUMN greeting_key text;
ALTER TABLE mailboxes ADD COLUMN name_key text;

-- New audit events: an administrator requiring a change, resetting or recycling a mailbox,
-- and deleting a message. Still never a code or a digit in any field.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_event;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_event CHECK (event IN
  ('login_succeeded', 'login_failed', 'pin_changed', 'pin_set', 'mailbox_locked', 'mailbox_unlocked',
   'pin_change_required', 'mailbox_reset', 'mailbox_recycled', 'message_deleted'));
