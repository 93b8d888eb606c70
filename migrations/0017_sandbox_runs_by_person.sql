-- "Your recent runs" on the dashboard's sandbox page (GET /sandbox/runs, docs/sandbox.md):
-- a person's own SandboxRun events, newest first. The person is in the payload (`who`, the
-- user the sandbox verified), not in the metadata (the sandbox service reported the run).
-- A small partial index: only SandboxRun events, by person and position.
CREATE INDEX events_sandbox_run_who_idx
    ON events ((payload ->> 'who'), global_position)
    WHERE aggregate_type = 'SandboxRun';
