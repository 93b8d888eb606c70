-- The hash-chain trigger of 0004, computing the same bytes without calling the SQL
-- functions `event_hash`/`event_hash_field`: a LANGUAGE sql function called from PL/pgSQL
-- is parsed and planned again on every call, and a profile of the reservation benchmark
-- showed that trigger at a third of PostgreSQL's CPU (docs/benchmarks/reservations.md).
-- Here the whole message is one PL/pgSQL expression over built-in functions, planned once
-- per session. The layout is unchanged (docs/audit.md): each field as its UTF-8 length, 4
-- bytes big-endian, then its bytes; the functions of 0004 stay for anyone calling them.

CREATE OR REPLACE FUNCTION events_chain_hash() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    prev      bytea;
    position  bytea := convert_to(NEW.global_position::text, 'UTF8');
    agg_type  bytea := convert_to(NEW.aggregate_type, 'UTF8');
    agg_id    bytea := convert_to(NEW.aggregate_id, 'UTF8');
    seq       bytea := convert_to(NEW.sequence::text, 'UTF8');
    ev_type   bytea := convert_to(NEW.event_type, 'UTF8');
    ev_ver    bytea := convert_to(NEW.event_version, 'UTF8');
    rec_at    bytea := convert_to(((extract(epoch FROM NEW.recorded_at) * 1000000)::bigint)::text, 'UTF8');
    body      bytea := convert_to(NEW.payload::text, 'UTF8');
    meta      bytea := convert_to(NEW.metadata::text, 'UTF8');
BEGIN
    IF NEW.sequence > 1 THEN
        SELECT e.hash INTO prev
          FROM events e
         WHERE e.aggregate_type = NEW.aggregate_type
           AND e.aggregate_id = NEW.aggregate_id
           AND e.sequence = NEW.sequence - 1;
    END IF;
    NEW.hash := sha256(coalesce(prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
        || int4send(length(position)) || position
        || int4send(length(agg_type)) || agg_type
        || int4send(length(agg_id)) || agg_id
        || int4send(length(seq)) || seq
        || int4send(length(ev_type)) || ev_type
        || int4send(length(ev_ver)) || ev_ver
        || int4send(length(rec_at)) || rec_at
        || int4send(length(body)) || body
        || int4send(length(meta)) || meta);
    RETURN NEW;
END;
$$;
