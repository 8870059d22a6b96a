-- The worker database (WORKER_DATABASE_URL, docs/deploy.md): where the sandboxes' schemas and
-- roles live when they live apart from the control plane, on a server of their own. Of the
-- control plane's schema it holds only what provisioning and teardown take there: the lock
-- on the database's ACL (provision.LockDatabaseACL; the control database has it from 0015).
-- No sandbox's role has any right on the schema. The default template follows, from the
-- control database's own migration (0002).
CREATE SCHEMA IF NOT EXISTS sandbox_control;
REVOKE ALL ON SCHEMA sandbox_control FROM PUBLIC;

CREATE TABLE sandbox_control.database_acl_lock ();
