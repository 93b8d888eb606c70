-- Edit, then requeue (docs/dlq.md): an operator may correct a dead letter's payload before
-- requeueing it. The entry keeps its captured payload in `payload`; the latest edit is copied
-- here from its `DlqEntryPayloadEdited` event (all NULL: never edited). Requeues send the edit.
ALTER TABLE read_dlq
    ADD COLUMN edited_payload  text,
    ADD COLUMN edited_encoding text CHECK (edited_encoding IN ('json', 'text', 'base64')),
    -- SHA-256 (hex) of the edited bytes; the event also records the captured bytes' hash.
    ADD COLUMN edited_sha256   text,
    ADD COLUMN edited_by       text,
    ADD COLUMN edited_at       timestamptz;
