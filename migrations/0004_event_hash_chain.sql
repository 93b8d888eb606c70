-- The audit hash chain: every event stores SHA-256 over its own content and the hash of
-- the previous event of the same aggregate, so editing, removing or reordering a stored
-- event is detected by recomputing the chain (`controlplane audit verify`,
-- GET /audit/verify). The exact byte layout is in docs/audit.md; the Rust verifier in
-- streams/src/audit.rs recomputes it independently of these functions.

ALTER TABLE events ADD COLUMN hash bytea;

-- One field of the hashed message: its UTF-8 length as 4 bytes big-endian, then its bytes.
-- Length prefixes make the concatenation unambiguous whatever the fields contain.
CREATE FUNCTION event_hash_field(value text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT AS
$$
SELECT int4send(octet_length(convert_to(value, 'UTF8'))) || convert_to(value, 'UTF8')
$$;

-- The chain hash of one event. `prev` is the previous event's hash, or 32 zero bytes for
-- the first event of an aggregate. recorded_at enters as microseconds since the Unix
-- epoch; payload and metadata as their stored JSON text.
CREATE FUNCTION event_hash(prev bytea, global_position bigint, aggregate_type text,
                           aggregate_id text, sequence bigint, event_type text,
                           event_version text, recorded_at timestamptz, payload text,
                           metadata text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT AS
$$
SELECT sha256(prev
    || event_hash_field(global_position::text)
    || event_hash_field(aggregate_type)
    || event_hash_field(aggregate_id)
    || event_hash_field(sequence::text)
    || event_hash_field(event_type)
    || event_hash_field(event_version)
    || event_hash_field((extract(epoch FROM recorded_at) * 1000000)::bigint::text)
    || event_hash_field(payload)
    || event_hash_field(metadata))
$$;

-- Fills `hash` on insert. Column defaults (global_position, recorded_at) are already set
-- when a BEFORE trigger runs. The previous event is visible: either committed (the writer
-- read it before deciding) or inserted earlier in the same transaction.
CREATE FUNCTION events_chain_hash() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    prev bytea;
BEGIN
    IF NEW.sequence > 1 THEN
        SELECT e.hash INTO prev
          FROM events e
         WHERE e.aggregate_type = NEW.aggregate_type
           AND e.aggregate_id = NEW.aggregate_id
           AND e.sequence = NEW.sequence - 1;
    END IF;
    NEW.hash := event_hash(coalesce(prev, decode(repeat('00', 32), 'hex')), NEW.global_position,
                           NEW.aggregate_type, NEW.aggregate_id, NEW.sequence, NEW.event_type,
                           NEW.event_version, NEW.recorded_at, NEW.payload::text,
                           NEW.metadata::text);
    RETURN NEW;
END;
$$;

-- Chain the events stored before this migration, aggregate by aggregate.
DO
$$
    DECLARE
        r         record;
        prev      bytea;
        last_type text;
        last_id   text;
    BEGIN
        FOR r IN SELECT * FROM events ORDER BY aggregate_type, aggregate_id, sequence
            LOOP
                IF last_type IS DISTINCT FROM r.aggregate_type OR last_id IS DISTINCT FROM r.aggregate_id THEN
                    prev := decode(repeat('00', 32), 'hex');
                END IF;
                prev := event_hash(prev, r.global_position, r.aggregate_type, r.aggregate_id,
                                   r.sequence, r.event_type, r.event_version, r.recorded_at,
                                   r.payload::text, r.metadata::text);
                UPDATE events SET hash = prev
                 WHERE aggregate_type = r.aggregate_type
                   AND aggregate_id = r.aggregate_id
                   AND sequence = r.sequence;
                last_type := r.aggregate_type;
                last_id := r.aggregate_id;
            END LOOP;
    END;
$$;

ALTER TABLE events ALTER COLUMN hash SET NOT NULL;

CREATE TRIGGER events_chain_hash
    BEFORE INSERT ON events
    FOR EACH ROW
EXECUTE FUNCTION events_chain_hash();

-- The log is append-only: the application never updates or deletes an event. This stops
-- accidents; a superuser can still disable it, which is what the hash chain is for.
CREATE FUNCTION events_are_append_only() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP;
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW
EXECUTE FUNCTION events_are_append_only();
