-- This database's deployment id, made once. The events stream carries it in its
-- description (streams/src/setup.rs): a process whose database has another id refuses to
-- publish to, project from or fan out that stream, so two databases can never mix their
-- events in one stream (docs/operations.md, "One stream, one database").
CREATE TABLE deployment
(
    -- At most one row.
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO deployment DEFAULT VALUES;
