-- The circuit breakers' read model: one row per breaker, copied from its latest event
-- (every breaker event carries the state and failure count after it) by the projector
-- (projections/src/breakers.rs) in the same transaction as the projection checkpoint, and
-- rebuilt by `controlplane replay`. `GET /governance/status` lists open breakers from it.
CREATE TABLE read_breakers
(
    name          text PRIMARY KEY,
    state         text        NOT NULL,
    failures      bigint      NOT NULL,
    -- Set while OPEN: when a trial call may go through.
    next_retry    timestamptz,
    last_position bigint      NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE INDEX read_breakers_state_idx ON read_breakers (state);
