-- The read models' contiguous watermark (docs/adr/023-contiguous-watermark.md): a point W in
-- commit order such that W and every event before it are applied to the read models. Reads
-- answer it (`X-Read-Position`), a page's live subscription starts after it, and
-- `min_position` reads wait for it, which covers every aggregate.
--
-- The projector applies two batches at once and either may commit first, so the row also
-- holds one range applied AHEAD of the watermark: a later batch that committed while the
-- one before it had not. Every batch writes this row (it is the one row both transactions
-- update, so the second writer waits for the first one's commit and then sees its values):
-- a batch whose range starts at or before W moves W to its end and takes the range ahead
-- in when it joins; one that starts past W becomes the range ahead. Positions are commit
-- keys (transaction id, global position), the order of the events stream.
--
-- NULL watermark: not known (a database migrated while nothing was projected since, or
-- whose checkpoint a process of an earlier version wrote last, below). Readers then answer
-- no position and `min_position` falls back to the event's own aggregate.
ALTER TABLE projection_checkpoints
    ADD COLUMN watermark_tx        xid8,
    ADD COLUMN watermark_position  bigint,
    ADD COLUMN ahead_from_tx       xid8,
    ADD COLUMN ahead_from_position bigint,
    ADD COLUMN ahead_to_tx         xid8,
    ADD COLUMN ahead_to_position   bigint,
    -- Counts the writes of the code that keeps the watermark (the trigger below).
    ADD COLUMN watermark_writes    bigint NOT NULL DEFAULT 0;

-- One step of the watermark: the state (w, ahead), a batch that applied every event in
-- (b_from, b_to] (NULL: no batch), and a floor known applied (NULL: none; the projector
-- passes the end of its batches that have all committed, which mends a range ahead that
-- was lost to a third writer). Pure; the projector's one write statement calls it with
-- the row it has locked, so two batches committing in either order end at the same state.
CREATE FUNCTION projection_watermark_step(
    w_tx xid8, w_pos bigint,
    a_from_tx xid8, a_from_pos bigint, a_to_tx xid8, a_to_pos bigint,
    b_from_tx xid8, b_from_pos bigint, b_to_tx xid8, b_to_pos bigint,
    f_tx xid8, f_pos bigint,
    OUT watermark_tx xid8, OUT watermark_position bigint,
    OUT ahead_from_tx xid8, OUT ahead_from_position bigint,
    OUT ahead_to_tx xid8, OUT ahead_to_position bigint)
    LANGUAGE plpgsql IMMUTABLE AS
$$
BEGIN
    watermark_tx := w_tx;
    watermark_position := w_pos;
    ahead_from_tx := a_from_tx;
    ahead_from_position := a_from_pos;
    ahead_to_tx := a_to_tx;
    ahead_to_position := a_to_pos;
    -- Everything up to the floor is applied.
    IF f_tx IS NOT NULL AND (watermark_tx IS NULL OR (f_tx, f_pos) > (watermark_tx, watermark_position)) THEN
        watermark_tx := f_tx;
        watermark_position := f_pos;
    END IF;
    IF b_to_tx IS NOT NULL THEN
        -- An unknown watermark stands before the first event: only a batch whose range
        -- starts there (a projector's first batch after it started) sets it.
        IF (b_from_tx, b_from_pos) <= (COALESCE(watermark_tx, '0'::xid8), COALESCE(watermark_position, 0)) THEN
            IF watermark_tx IS NULL OR (b_to_tx, b_to_pos) > (watermark_tx, watermark_position) THEN
                watermark_tx := b_to_tx;
                watermark_position := b_to_pos;
            END IF;
        ELSIF ahead_from_tx IS NOT NULL
            AND (b_from_tx, b_from_pos) <= (ahead_to_tx, ahead_to_position)
            AND (ahead_from_tx, ahead_from_position) <= (b_to_tx, b_to_pos) THEN
            -- Touches the range ahead: one range.
            IF (b_from_tx, b_from_pos) < (ahead_from_tx, ahead_from_position) THEN
                ahead_from_tx := b_from_tx;
                ahead_from_position := b_from_pos;
            END IF;
            IF (b_to_tx, b_to_pos) > (ahead_to_tx, ahead_to_position) THEN
                ahead_to_tx := b_to_tx;
                ahead_to_position := b_to_pos;
            END IF;
        ELSE
            -- Apart from it (or none yet): the newest range is kept. An older one lost here
            -- is applied all the same; the floor of a later batch moves the watermark past it.
            ahead_from_tx := b_from_tx;
            ahead_from_position := b_from_pos;
            ahead_to_tx := b_to_tx;
            ahead_to_position := b_to_pos;
        END IF;
    END IF;
    -- The range ahead joins the watermark: take it in.
    IF ahead_from_tx IS NOT NULL AND watermark_tx IS NOT NULL
        AND (ahead_from_tx, ahead_from_position) <= (watermark_tx, watermark_position) THEN
        IF (ahead_to_tx, ahead_to_position) > (watermark_tx, watermark_position) THEN
            watermark_tx := ahead_to_tx;
            watermark_position := ahead_to_position;
        END IF;
        ahead_from_tx := NULL;
        ahead_from_position := NULL;
        ahead_to_tx := NULL;
        ahead_to_position := NULL;
    END IF;
END
$$;

-- A process of an earlier version (during a rolling update) moves the checkpoint without
-- keeping the watermark. Its batches are applied all the same, but a watermark it leaves
-- where it was would make `min_position` reads wait for nothing: such a write (one that
-- does not count itself in `watermark_writes`) makes the watermark unknown, until the
-- first batch of a current projector sets it again.
CREATE FUNCTION projection_checkpoints_forget_watermark() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF NEW.watermark_writes = OLD.watermark_writes THEN
        NEW.watermark_tx := NULL;
        NEW.watermark_position := NULL;
        NEW.ahead_from_tx := NULL;
        NEW.ahead_from_position := NULL;
        NEW.ahead_to_tx := NULL;
        NEW.ahead_to_position := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER projection_checkpoints_forget_watermark
    BEFORE UPDATE ON projection_checkpoints
    FOR EACH ROW EXECUTE FUNCTION projection_checkpoints_forget_watermark();
