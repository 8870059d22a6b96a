-- Locks of the control plane, in its own schema: no sandbox's role has any right on
-- sandbox_control, so none can take them. Advisory locks served before; their keys are
-- numbers that any session of the database may take, a sandbox's own among them, and a
-- sandbox that held the control plane's keys kept every creation and other owners' teardowns
-- waiting for as long as it lived.

-- One row per owner, added by the owner's first creation ('owner:' || owner): its lock makes
-- the quota check and the insert of a creation atomic.
CREATE TABLE sandbox_control.locks (
    name text PRIMARY KEY
);

-- A table only to be locked (provision.LockDatabaseACL): the statements that rewrite the
-- database's ACL (GRANT CONNECT ON DATABASE, DROP OWNED BY) fail with "tuple concurrently
-- updated" when two sessions run them at once. A lock on a table, unlike a row lock, makes
-- the session that waited for it read the catalogs as the other left them.
CREATE TABLE sandbox_control.database_acl_lock ();
