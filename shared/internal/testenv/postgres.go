package testenv

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AdminURL returns the URL of the test server's own database, as a superuser. Tests that need a
// database of their own use Postgres instead.
func AdminURL(t testing.TB) string {
	t.Helper()
	return requireEnv(t, databaseURLVar)
}

// Postgres creates a fresh database (sbtest_<random>) on the test server and returns a pool
// connected to it and its URL. The pool is closed and the database dropped, whatever sessions
// remain on it, when the test ends.
func Postgres(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	admin := AdminURL(t)
	name := "sbtest_" + randomHex(8)
	dbURL, err := replaceDatabase(admin, name)
	if err != nil {
		t.Fatalf("testenv: %s: %v", databaseURLVar, err)
	}
	quoted := pgx.Identifier{name}.Sanitize()

	if err := adminExec(t.Context(), admin, "CREATE DATABASE "+quoted); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+quoted+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})

	pool, err := pgxpool.New(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("testenv: connect to %s: %v", name, err)
	}
	t.Cleanup(pool.Close) // runs before the drop above: cleanups run last-in, first-out
	if err := pool.Ping(t.Context()); err != nil {
		t.Fatalf("testenv: connect to %s: %v", name, err)
	}
	return pool, dbURL
}

// replaceDatabase returns serverURL with its database name replaced by name.
func replaceDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("want a postgres:// URL, got scheme %q", u.Scheme)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// adminExec runs one statement on its own connection: CREATE and DROP DATABASE cannot run
// inside a transaction or a pool's prepared-statement cache.
func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	return err
}
