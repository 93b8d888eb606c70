-- The services that may send commands over NATS, and the tenants each may act on
-- (docs/adr/016-nats-identities.md). A service's NATS identity (its user JWT, made by
-- `controlplane service add`) lets it publish on `<prefix>.cmd.<name>.>`; the control plane
-- reads <name> from the subject and looks its scope up here. A service without a row may
-- not act at all, so deleting the row revokes its commands (within the cache's few seconds).
CREATE TABLE services (
    name        text PRIMARY KEY
                CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    -- NULL: every tenant; otherwise only these (an empty array: none).
    tenants     text[],
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
