-- Messages, second round (issue 8): a folder per message, message audio in the database for
-- operators who want one place (MESSAGE_AUDIO_STORE=database), and audio bytes that go with the
-- row naming them whichever path removes that row.

-- Where a message is filed. New/saved stays the state (what the lamp counts); the folder is
-- where it lives ('inbox' for everything a caller leaves).
ALTER TABLE messages ADD COLUMN folder text NOT NULL DEFAULT 'inbox'
  CONSTRAINT messages_folder CHECK (folder ~ '^[a-z][a-z0-9_-]{0,31}$');

-- MESSAGE_AUDIO_STORE=database: the WAV bytes, keyed like the files of the file store and
-- written in the transaction that writes the row naming them (messages.audio_key,
-- mailboxes.greeting_key / name_key), so a row and its audio commit or roll back together.
CREATE TABLE message_audio (
  key        text PRIMARY KEY CONSTRAINT message_audio_key CHECK (key ~ '^[0-9a-f]{32}\.wav$'),
  wav        bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Whatever removes a message row — a delete, a reset or recycle, a mailbox or domain removed by
-- cascade — removes its audio bytes in the same transaction. (In the file store these find
-- nothing to delete; its files go after COMMIT.)
CREATE FUNCTION message_audio_forget_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM message_audio WHERE key = OLD.audio_key;
  RETURN NULL;
END
$$;
CREATE TRIGGER messages_forget_audio AFTER DELETE ON messages
  FOR EACH ROW EXECUTE FUNCTION message_audio_forget_message();

-- A greeting or name replaced or cleared (reset, recycle) or its mailbox removed: the old bytes go.
CREATE FUNCTION message_audio_forget_mailbox_media() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM message_audio WHERE key IN (OLD.greeting_key, OLD.name_key);
  ELSE
    IF OLD.greeting_key IS DISTINCT FROM NEW.greeting_key THEN
      DELETE FROM message_audio WHERE key = OLD.greeting_key;
    END IF;
    IF OLD.name_key IS DISTINCT FROM NEW.name_key THEN
      DELETE FROM message_audio WHERE key = OLD.name_key;
    END IF;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER mailboxes_forget_audio AFTER DELETE OR UPDATE OF greeting_key, name_key ON mailboxes
  FOR EACH ROW EXECUTE FUNCTION message_audio_forget_mailbox_media();
