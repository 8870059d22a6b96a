-- Orphan reconciliation (DESIGN §5). The catalog keeps no creation time for a schema or a role,
-- and Redis none for a key, so a resource named like a sandbox that has no row in
-- sandbox_control.sandboxes is aged from the first time cleanup saw it: it is reported as an
-- orphan only once it has been seen for longer than the grace period (CLEANUP_ORPHAN_GRACE).
-- Rows are removed as soon as the resource is gone or gains a sandbox row.
CREATE TABLE sandbox_control.orphan_sightings (
    resource_type text        NOT NULL, -- cleanup.ResourceType
    name          text        NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (resource_type, name)
);
