-- Budget usage over time, for the dashboard's usage chart (`GET /budget/usage`): one row
-- per budget and minute in which something happened to it, holding the budget's totals
-- after the last event of that minute. Written by the projector in the same statement as
-- `read_budgets` (projections/src/apply.rs) and rebuilt from the log by `controlplane
-- replay`. Minutes without a row carry the row before them forward.
CREATE TABLE read_budget_usage
(
    aggregate_id  text        NOT NULL,
    minute        timestamptz NOT NULL,
    -- NULL while no limit is set.
    total         bigint,
    used          bigint      NOT NULL,
    reserved      bigint      NOT NULL,
    -- The last event folded into this minute (a later batch of the same minute replaces
    -- the row only with a later position).
    last_position bigint      NOT NULL,
    PRIMARY KEY (aggregate_id, minute)
);
