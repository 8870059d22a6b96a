-- Fenced teardown claims (docs/architecture.md, "Cleanup"). A cleanup run or a destroy that
-- tears a sandbox down holds its claim: one row here, with a token drawn from a sequence. Every
-- record write and status change of the teardown (controlplane.Manager's *Claimed methods)
-- checks, in its own transaction and under a row lock, that the token is still the sandbox's
-- current one, so a run that lost its claim (its lease expired and another run took the
-- sandbox over) writes nothing more. A claim whose lease has expired may be taken over; a
-- holder renews its leases while it works and deletes its rows when it is done.
CREATE SEQUENCE sandbox_control.teardown_claim_tokens;

CREATE TABLE sandbox_control.teardown_claims (
    sandbox_id text        PRIMARY KEY REFERENCES sandbox_control.sandboxes (id) ON DELETE CASCADE,
    token      bigint      NOT NULL,
    holder     text        NOT NULL, -- who claimed it: run id, for the logs and operators
    claimed_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
