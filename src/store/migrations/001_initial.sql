-- vmaccess initial schema. Runs unchanged on PostgreSQL (>= 13) and PGlite.
-- Applied once, inside a transaction, by src/store/migrate.ts.

-- A tenant: one SIP domain of the hosted PBX. Names are stored lower case (DNS names compare
-- case-insensitively, RFC 3261 §19.1.4), so lookups lower-case the host first.
CREATE TABLE domains (
  id                     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name                   text NOT NULL UNIQUE
                           CONSTRAINT domains_name_lower CHECK (name = lower(name) AND name <> ''),
  access_code_min_length integer NOT NULL DEFAULT 4,
  access_code_max_length integer NOT NULL DEFAULT 10,
  created_at             timestamptz NOT NULL DEFAULT now(),
  -- Fewer than 4 digits is guessable within the lockout budget; the IVR speaks lengths up to 20.
  CONSTRAINT domains_access_code_lengths CHECK (
    access_code_min_length >= 4
    AND access_code_max_length <= 20
    AND access_code_min_length <= access_code_max_length)
);

-- Numbers a caller dials to reach the server: voicemail access numbers (*97, "voicemail") and
-- Auto Attendant numbers. Stored as dialled (Request-URI user part).
CREATE TABLE access_numbers (
  id        integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  domain_id integer NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
  number    text NOT NULL CONSTRAINT access_numbers_number_nonempty CHECK (number <> ''),
  kind      text NOT NULL CONSTRAINT access_numbers_kind CHECK (kind IN ('voicemail', 'auto_attendant')),
  CONSTRAINT access_numbers_number_unique UNIQUE (domain_id, number),
  -- Target of the composite foreign key below (options only for Auto Attendant numbers).
  CONSTRAINT access_numbers_number_kind_unique UNIQUE (domain_id, number, kind)
);

-- Menu options of an Auto Attendant number: digit -> voicemail login or transfer.
CREATE TABLE auto_attendant_options (
  domain_id integer NOT NULL,
  number    text NOT NULL,
  kind      text NOT NULL DEFAULT 'auto_attendant'
              CONSTRAINT auto_attendant_options_kind CHECK (kind = 'auto_attendant'),
  digit     text NOT NULL CONSTRAINT auto_attendant_options_digit CHECK (digit IN
              ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#')),
  action    text NOT NULL CONSTRAINT auto_attendant_options_action CHECK (action IN ('voicemail_login', 'transfer')),
  target    text,
  PRIMARY KEY (domain_id, number, digit),
  FOREIGN KEY (domain_id, number, kind) REFERENCES access_numbers (domain_id, number, kind)
    ON DELETE CASCADE ON UPDATE CASCADE,
  -- A transfer needs somewhere to go; voicemail login takes no target.
  CONSTRAINT auto_attendant_options_target CHECK ((action = 'transfer') = (target IS NOT NULL AND target <> ''))
);

CREATE TABLE users (
  id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  domain_id    integer NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
  extension    text NOT NULL CONSTRAINT users_extension_nonempty CHECK (extension <> ''),
  display_name text NOT NULL,
  role         text NOT NULL CONSTRAINT users_role CHECK (role IN
                 ('basic', 'call_center_agent', 'call_center_supervisor', 'advanced_user',
                  'office_manager', 'site_manager')),
  CONSTRAINT users_extension_unique UNIQUE (domain_id, extension)
);

-- A voicemail box. Personal mailboxes have an owner; shared ones (e.g. "Support") have members.
-- Deleting the owner keeps the mailbox and its messages (owner becomes NULL) for an admin to
-- reassign.
CREATE TABLE mailboxes (
  id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  domain_id     integer NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
  number        text NOT NULL CONSTRAINT mailboxes_number_digits CHECK (number ~ '^[0-9]{1,15}$'),
  owner_user_id integer REFERENCES users (id) ON DELETE SET NULL,
  shared        boolean NOT NULL DEFAULT false,
  display_name  text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT mailboxes_number_unique UNIQUE (domain_id, number),
  CONSTRAINT mailboxes_shared_has_no_owner CHECK (NOT shared OR owner_user_id IS NULL)
);
CREATE INDEX mailboxes_owner_idx ON mailboxes (owner_user_id);

CREATE TABLE mailbox_members (
  mailbox_id integer NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  user_id    integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  PRIMARY KEY (mailbox_id, user_id)
);
CREATE INDEX mailbox_members_user_idx ON mailbox_members (user_id);

-- The current access code of a mailbox, as an argon2id hash (never the code). No row means no
-- code has been set yet: the owner goes through first-time setup.
CREATE TABLE access_code_credentials (
  mailbox_id  integer PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
  hash        text NOT NULL CONSTRAINT access_code_credentials_hash_argon2id CHECK (hash LIKE '$argon2id$%'),
  set_at      timestamptz NOT NULL DEFAULT now(),
  must_change boolean NOT NULL DEFAULT false
);

-- Hashes of previous access codes, so a new code cannot repeat a recent one.
CREATE TABLE access_code_history (
  id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id integer NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  hash       text NOT NULL CONSTRAINT access_code_history_hash_argon2id CHECK (hash LIKE '$argon2id$%'),
  retired_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_code_history_mailbox_idx ON access_code_history (mailbox_id, retired_at DESC, id DESC);

-- Audit trail (CONTRACT "Audit events"). Plain text columns, no foreign keys: an event outlives
-- the mailbox it names, and a failed login may name a mailbox that never existed (as typed).
-- No column ever holds an access code.
CREATE TABLE audit_events (
  id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  domain  text NOT NULL,
  mailbox text NOT NULL CONSTRAINT audit_events_mailbox_length CHECK (char_length(mailbox) <= 64),
  event   text NOT NULL CONSTRAINT audit_events_event CHECK (event IN
            ('login_succeeded', 'login_failed', 'pin_changed', 'pin_set', 'mailbox_locked', 'mailbox_unlocked')),
  channel text NOT NULL CONSTRAINT audit_events_channel CHECK (channel IN ('phone', 'portal', 'admin', 'cli')),
  actor   text NOT NULL,
  call_id text
);
CREATE INDEX audit_events_domain_mailbox_at_idx ON audit_events (domain, mailbox, at);
