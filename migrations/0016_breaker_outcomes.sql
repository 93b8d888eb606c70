-- Calls reported to each circuit breaker, per minute (docs/breakers.md "Failure rate").
-- A success in CLOSED is not an event (checks and reports stay write-free, ADR 005), so the
-- failure rate cannot be read from the log: each control-plane process counts the outcomes
-- it receives in memory and adds them here every EXPIRY_INTERVAL_MS (one upsert per breaker
-- and minute); every process adds to the same row. Rows older than a day are deleted.
CREATE TABLE breaker_outcomes
(
    name      text        NOT NULL,
    minute    timestamptz NOT NULL,
    successes bigint      NOT NULL DEFAULT 0 CHECK (successes >= 0),
    failures  bigint      NOT NULL DEFAULT 0 CHECK (failures >= 0),
    PRIMARY KEY (name, minute)
);

-- "The last five minutes of every breaker" and the cleanup read by minute.
CREATE INDEX breaker_outcomes_minute_idx ON breaker_outcomes (minute);
