-- Exact routing (docs/streams.md, "Route changes"): parked test guilds, and the durable record
-- of route changes that the route cache has not heard of yet.

-- A guild whose sandbox was torn down stays a test guild: its events are dropped, never sent
-- to production, until its former owner or an admin releases it or it is mapped again.
CREATE TABLE sandbox_control.parked_guilds (
    guild_id   text        PRIMARY KEY CHECK (guild_id ~ '^[1-9][0-9]{16,19}$'),
    sandbox_id text        NOT NULL REFERENCES sandbox_control.sandboxes (id),
    owner      text        NOT NULL,
    reason     text        NOT NULL, -- the teardown reason: expired, destroy_requested, ...
    parked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parked_guilds_owner ON sandbox_control.parked_guilds (owner);

-- Every committed change to what a guild's route is (its mapping, its sandbox's status or
-- expiry, its protection, its parking) leaves a row here, written by the triggers below in the
-- same transaction as the change, so no code path can forget one. Whoever publishes route
-- changes (controlplane.Manager.PublishRouteChanges: the API after each change, the router
-- every second, every cleanup run) bumps the Redis route generation, deletes the guilds'
-- cache entries and only then deletes the rows: a change whose publication failed (Redis
-- down) is published by the next one that succeeds.
CREATE TABLE sandbox_control.route_changes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id   text        NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION sandbox_control.note_route_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF TG_TABLE_NAME = 'sandboxes' THEN
        INSERT INTO sandbox_control.route_changes (guild_id)
            SELECT m.guild_id FROM sandbox_control.guild_mappings m WHERE m.sandbox_id = NEW.id;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO sandbox_control.route_changes (guild_id) VALUES (OLD.guild_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO sandbox_control.route_changes (guild_id) VALUES (NEW.guild_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER guild_mappings_route_change AFTER INSERT OR UPDATE OR DELETE ON sandbox_control.guild_mappings
    FOR EACH ROW EXECUTE FUNCTION sandbox_control.note_route_change();
CREATE TRIGGER protected_guilds_route_change AFTER INSERT OR UPDATE OR DELETE ON sandbox_control.protected_guilds
    FOR EACH ROW EXECUTE FUNCTION sandbox_control.note_route_change();
CREATE TRIGGER parked_guilds_route_change AFTER INSERT OR UPDATE OR DELETE ON sandbox_control.parked_guilds
    FOR EACH ROW EXECUTE FUNCTION sandbox_control.note_route_change();
CREATE TRIGGER sandboxes_route_change AFTER UPDATE OF status, expires_at ON sandbox_control.sandboxes
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
    EXECUTE FUNCTION sandbox_control.note_route_change();
