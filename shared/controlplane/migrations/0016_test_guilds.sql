-- Test guilds: the guilds an admin registered as the platform's test guilds, the only ones a
-- sandbox may map. Until now any guild that was not protected could be mapped, so a
-- developer could take any production guild the operator had not listed, and its members'
-- events went to that developer's stream instead of the production bot. A bot serves far
-- more production guilds than anyone can list; its test guilds are few and known.
CREATE TABLE sandbox_control.test_guilds (
    guild_id      text        PRIMARY KEY CHECK (guild_id ~ '^[1-9][0-9]{16,19}$'),
    note          text        NOT NULL DEFAULT '' CHECK (length(note) <= 200),
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by text        NOT NULL
);

-- What is mapped or parked now stays mappable, so no running sandbox loses a guild at the
-- upgrade; an admin reviews the list (sandbox guilds registered) and unregisters what is not
-- a test guild.
INSERT INTO sandbox_control.test_guilds (guild_id, note, registered_by)
SELECT guild_id, 'mapped or parked when test guilds came (migration 0016)', 'migration'
FROM (SELECT guild_id FROM sandbox_control.guild_mappings
      UNION SELECT guild_id FROM sandbox_control.parked_guilds) AS g
WHERE NOT EXISTS (SELECT 1 FROM sandbox_control.protected_guilds p WHERE p.guild_id = g.guild_id);
