-- The event pipeline's state in PostgreSQL: where the publisher is in the log, and the
-- read models the projections keep (see docs/adr/003-append-returns-position.md and
-- streams/ and projections/ for the code that writes them).

-- One row per JetStream stream the publisher feeds. The position is a point in commit
-- order: (transaction_id, global_position) of the last event JetStream acknowledged.
-- Everything at or before it is on the stream; a re-publish after a crash between the
-- acknowledgement and this update is dropped by JetStream's duplicate window.
CREATE TABLE publisher_checkpoints
(
    stream          text PRIMARY KEY,
    last_tx         xid8        NOT NULL DEFAULT '0'::xid8,
    last_position   bigint      NOT NULL DEFAULT 0,
    published       bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- How far each projection has applied each aggregate: its last applied sequence. An event
-- at or below it is a redelivery and changes nothing; an event beyond version + 1 means
-- earlier ones are missing, and the projector reads them from `events` first. Kept for
-- every aggregate type (even those no read model uses yet) so `min_position` reads can
-- ask "has the event at position N been applied?" the same way for all of them.
CREATE TABLE projection_versions
(
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    version        bigint NOT NULL,
    last_position  bigint NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- The projector's place in the JetStream stream and in the log, for lag and for humans.
CREATE TABLE projection_checkpoints
(
    name          text PRIMARY KEY,
    stream_seq    bigint      NOT NULL DEFAULT 0,
    last_tx       xid8        NOT NULL DEFAULT '0'::xid8,
    last_position bigint      NOT NULL DEFAULT 0,
    applied       bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Read model: one row per budget, the totals copied from its latest event.
-- `total` stays NULL while no limit was set (a denial can create the row first).
CREATE TABLE read_budgets
(
    aggregate_id  text PRIMARY KEY,
    tenant_id     text        NOT NULL,
    project_id    text        NOT NULL,
    total         bigint,
    used          bigint      NOT NULL DEFAULT 0,
    reserved      bigint      NOT NULL DEFAULT 0,
    last_position bigint      NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- Read model: every reservation and how it ended.
CREATE TABLE read_reservations
(
    reservation_id  uuid PRIMARY KEY,
    aggregate_id    text        NOT NULL,
    tenant_id       text        NOT NULL,
    project_id      text        NOT NULL,
    task_id         text        NOT NULL,
    model           text        NOT NULL,
    allocated       bigint      NOT NULL,
    expires_at      timestamptz NOT NULL,
    -- open, committed, released or expired
    status          text        NOT NULL CHECK (status IN ('open', 'committed', 'released', 'expired')),
    actual_tokens   bigint,
    overage         bigint,
    late            boolean     NOT NULL DEFAULT false,
    reserved_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    last_position   bigint      NOT NULL
);

-- The state endpoint counts a budget's open reservations.
CREATE INDEX read_reservations_open_idx ON read_reservations (aggregate_id) WHERE status = 'open';
