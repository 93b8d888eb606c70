-- Redrive jobs that pause and resume, and what happened to each entry (docs/dlq.md).

-- A paused job keeps its cursor; no worker claims it until it is resumed. Cancelled and
-- completed stay final.
ALTER TABLE dlq_redrive_jobs DROP CONSTRAINT dlq_redrive_jobs_state_check;
ALTER TABLE dlq_redrive_jobs ADD CONSTRAINT dlq_redrive_jobs_state_check
    CHECK (state IN ('running', 'paused', 'cancelled', 'completed'));
-- Who paused, resumed or cancelled the job last (NULL: nobody since it started).
ALTER TABLE dlq_redrive_jobs ADD COLUMN state_changed_by text;

-- One row per entry a job handled: moved (requeued, with the message id), skipped (resolved
-- by someone else first) or failed (the requeue failed; the entry stays open), and why.
-- Written in the same statement as the job's counters and cursor, so the two agree; an
-- entry handled again after a crash (its step was never recorded) has one row.
CREATE TABLE dlq_redrive_results
(
    job_id     uuid        NOT NULL REFERENCES dlq_redrive_jobs (id) ON DELETE CASCADE,
    -- The order the job handled its entries in; pages go on after it.
    n          bigint GENERATED ALWAYS AS IDENTITY,
    entry_id   text        NOT NULL,
    outcome    text        NOT NULL CHECK (outcome IN ('moved', 'skipped', 'failed')),
    reason     text,
    message_id text,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, entry_id)
);

CREATE INDEX dlq_redrive_results_job_n_idx ON dlq_redrive_results (job_id, n);
