-- The dead-letter queue's read model and its redrive jobs (docs/dlq.md).

-- Read model: one row per dead-letter entry, copied from its events by the projector
-- (projections/src/dlq.rs) in the same transaction as the projection checkpoint, and
-- rebuilt by `controlplane replay`. The payload is the exact text the entry keeps:
-- JSON text, plain text, or base64 of the bytes (`encoding`).
CREATE TABLE read_dlq
(
    id               text PRIMARY KEY,
    original_subject text        NOT NULL,
    payload          text        NOT NULL,
    encoding         text        NOT NULL CHECK (encoding IN ('json', 'text', 'base64')),
    -- {"Name": ["value", ...]}
    headers          jsonb       NOT NULL DEFAULT '{}',
    -- The latest failure, and the deliveries over every failure of the entry.
    error            text        NOT NULL,
    attempts         bigint      NOT NULL,
    -- Where the message sat in JetStream (NULL for an explicit capture without it).
    stream           text,
    consumer         text,
    stream_seq       bigint,
    created_at       timestamptz NOT NULL,
    resolved         boolean     NOT NULL DEFAULT false,
    resolved_at      timestamptz,
    resolved_by      text,
    note             text,
    requeue_count    integer     NOT NULL DEFAULT 0,
    -- [{"action","actor","at","note"?,"error"?,"source"?,"message_id"?}, ...]
    history          jsonb       NOT NULL DEFAULT '[]',
    last_position    bigint      NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- Lists are "open (or resolved) entries, oldest first" (GET /dlq, redrive jobs).
CREATE INDEX read_dlq_resolved_created_idx ON read_dlq (resolved, created_at, id);
CREATE INDEX read_dlq_subject_idx ON read_dlq (original_subject);

-- Redrive jobs: requeue every matching open entry, oldest first, at a rate. Write-side
-- state (not an event-sourced aggregate): a job is a process that issues resolve commands,
-- each of which is an event of its entry. The row survives a restart; a worker holds the
-- job through a lease, so after a crash another process (or the restarted one) resumes it
-- after the cursor.
CREATE TABLE dlq_redrive_jobs
(
    id              uuid PRIMARY KEY,
    -- {"subject"?, "error_contains"?, "since"?}
    filter          jsonb            NOT NULL,
    rate_per_second double precision NOT NULL CHECK (rate_per_second > 0),
    -- Only entries created up to here are moved, so a job ends even while new ones arrive.
    created_before  timestamptz      NOT NULL,
    state           text             NOT NULL CHECK (state IN ('running', 'cancelled', 'completed')),
    moved           bigint           NOT NULL DEFAULT 0,
    failed          bigint           NOT NULL DEFAULT 0,
    -- Entries resolved by someone else before the job reached them.
    skipped         bigint           NOT NULL DEFAULT 0,
    last_error      text,
    -- The last entry handled, in (created_at, id) order.
    cursor_created  timestamptz,
    cursor_id       text,
    created_by      text             NOT NULL,
    created_at      timestamptz      NOT NULL DEFAULT now(),
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    lease_owner     text,
    lease_until     timestamptz
);

CREATE INDEX dlq_redrive_jobs_running_idx ON dlq_redrive_jobs (created_at) WHERE state = 'running';
