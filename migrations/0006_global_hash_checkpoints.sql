-- The publisher's running hash over the whole log in commit order, with periodic
-- checkpoints (docs/audit.md). The per-aggregate chain (0004) catches an edited event; the
-- running hash also pins the order and the number of events across aggregates, and its
-- checkpoints let an auditor verify the global log against values recorded as it grew.
--
--   running_0 = 32 zero bytes
--   running_n = event_hash(running_{n-1}, <event n's fields>)   (0004's function)
--
-- where event n is the n-th event in commit order (transaction_id, global_position), the
-- order the publisher reads and publishes in.

-- The publisher's running hash and how many events it covers, moved in the same UPDATE
-- as its position, so a publisher taking over continues the same chain.
ALTER TABLE publisher_checkpoints
    ADD COLUMN running_hash bytea  NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),
    ADD COLUMN hashed       bigint NOT NULL DEFAULT 0;

-- Every N events or T seconds the publisher records its running hash here, in the
-- transaction that moves its checkpoint. Rows are never updated; `controlplane audit
-- verify` recomputes the running hash from `events` and compares it with each row.
CREATE TABLE global_hash_checkpoints
(
    stream        text        NOT NULL,
    -- Events covered: the running hash after the event_count-th event in commit order.
    event_count   bigint      NOT NULL CHECK (event_count > 0),
    -- That event's place in the log.
    last_tx       xid8        NOT NULL,
    last_position bigint      NOT NULL,
    running_hash  bytea       NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, event_count)
);

-- A publisher that already moved carries on from the running hash over what it published,
-- and that state becomes the first checkpoint.
DO
$$
    DECLARE
        c       record;
        r       record;
        running bytea;
        n       bigint;
    BEGIN
        FOR c IN SELECT * FROM publisher_checkpoints WHERE last_position > 0
            LOOP
                running := decode(repeat('00', 32), 'hex');
                n := 0;
                FOR r IN SELECT * FROM events
                          WHERE (transaction_id, global_position) <= (c.last_tx, c.last_position)
                          ORDER BY transaction_id, global_position
                    LOOP
                        running := event_hash(running, r.global_position, r.aggregate_type,
                                              r.aggregate_id, r.sequence, r.event_type,
                                              r.event_version, r.recorded_at, r.payload::text,
                                              r.metadata::text);
                        n := n + 1;
                    END LOOP;
                UPDATE publisher_checkpoints SET running_hash = running, hashed = n
                 WHERE stream = c.stream;
                IF n > 0 THEN
                    INSERT INTO global_hash_checkpoints (stream, event_count, last_tx, last_position, running_hash)
                    VALUES (c.stream, n, c.last_tx, c.last_position, running);
                END IF;
            END LOOP;
    END;
$$;
