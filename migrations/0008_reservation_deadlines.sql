-- The expiry worker finds due reservations in the reservations read model: open ones by
-- deadline. It used to search the event table (every TokensReserved without a closing event),
-- a scan of the whole log on every pass that grew with it (docs/adr/008-expiry-reads-the-reservations-read-model.md).
CREATE INDEX read_reservations_open_deadline_idx
    ON read_reservations (expires_at) WHERE status = 'open';
