-- The event store: postgres-es's `events` and `snapshots` tables, exactly as that crate
-- expects them (its INSERT names its columns), plus three columns with defaults that let
-- later readers follow the log in commit order.

CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    -- A total order of insertion. Not commit order: a transaction that started earlier can
    -- commit later, so readers pair it with transaction_id (see docs/adr/002).
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    -- The writing transaction; readers only take rows whose transaction is older than every
    -- transaction still running (pg_snapshot_xmin), so no late commit is ever skipped.
    transaction_id  xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz                  NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_global_position_idx ON events (global_position);
CREATE INDEX events_commit_order_idx ON events (transaction_id, global_position);

-- Commands name reservations by id alone; this finds the budget a reservation belongs to
-- straight from the source of truth.
CREATE INDEX events_budget_reservation_idx ON events ((payload ->> 'reservation_id'))
    WHERE aggregate_type = 'Budget';

-- Only needed when snapshotting is used.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Wakes tailers (publisher, projections) as soon as events commit; once per statement so a
-- batch insert sends one notification. A missed notification is covered by polling.
CREATE FUNCTION notify_events_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('events_appended', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_appended
    AFTER INSERT ON events
    FOR EACH STATEMENT
EXECUTE FUNCTION notify_events_appended();
