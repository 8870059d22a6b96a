package controlplane

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// TeardownLockClass is the first key of the session advisory locks a teardown takes on its
// sandbox ("sbtd"; the second is hashtext(id)).
const TeardownLockClass int32 = 0x73627464

// TeardownLocksApplicationName is the application_name of a TeardownLocks session, for
// operators (and tests) to find it in pg_stat_activity.
const TeardownLocksApplicationName = "sandbox-cleanup-claims"

// TeardownLocks holds session advisory locks on teardowns (TeardownLockClass) on a
// connection of its own, outside the pool: closing it (or the process dying) releases every
// lock at once, and no pooled connection ever carries a lock to its next user. pgx
// connections are not safe for concurrent use, hence the mutex; each call is one short
// statement.
//
// The locks are only a fast pre-filter: they vanish with the session (a connection killed
// while the process lives on), so a second holder may then pass them. What makes a teardown
// exclusive is its claim (ClaimTeardown): a fencing token that every write checks.
type TeardownLocks struct {
	mu   sync.Mutex
	conn *pgx.Conn
}

// OpenTeardownLocks opens a session for teardown locks with the pool's connection settings.
// Close it when done.
func (m *Manager) OpenTeardownLocks(ctx context.Context) (_ *TeardownLocks, err error) {
	defer withOp(&err, "open the teardown locks session")
	cfg := m.db.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = TeardownLocksApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open the teardown locks session: %w", err)
	}
	return &TeardownLocks{conn: conn}, nil
}

// TryLock locks a sandbox's teardown without waiting; false means another session holds it.
// A hash collision between two ids only makes one wait for a later run.
func (l *TeardownLocks) TryLock(ctx context.Context, id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ok bool
	err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, TeardownLockClass, id).Scan(&ok)
	return ok, err
}

// Unlock releases a lock TryLock took, even when ctx is done.
func (l *TeardownLocks) Unlock(ctx context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext($2))`, TeardownLockClass, id)
	return err
}

// Close ends the session, releasing every lock it holds.
func (l *TeardownLocks) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.conn.Close(context.Background())
}
