// Package testenv connects integration tests to the throwaway PostgreSQL, Redis and SQS servers
// that scripts/services.sh starts, and isolates every test from the others that share them.
//
// go test runs packages in parallel against the same servers, so each caller gets its own
// PostgreSQL database and its own Redis logical database, removed when the test ends. When the
// services are not running the test fails rather than skips: a skipped integration test would
// hide missing coverage.
//
// Code under test connects with the rights production has: PostgreSQL as the non-superuser
// control user (CREATEROLE, owner of the test's database), or as the router's role (no DDL,
// only what the migrate step grants it: RouterURL), Redis as the functions' ACL user.
// The superuser and Redis's default user serve the harness alone (creating databases,
// emptying and leasing logical databases) and the assertions that need to see everything.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"
)

// Environment variables written by scripts/services.sh.
const (
	databaseURLVar      = "SANDBOX_TEST_DATABASE_URL"
	routerURLVar        = "SANDBOX_TEST_ROUTER_DATABASE_URL"
	adminDatabaseURLVar = "SANDBOX_TEST_ADMIN_DATABASE_URL"
	// The sandboxes' own PostgreSQL server (pg-workers): the control user and its superuser.
	workerURLVar       = "SANDBOX_TEST_WORKER_DATABASE_URL"
	workerAdminURLVar  = "SANDBOX_TEST_WORKER_ADMIN_DATABASE_URL"
	pgLogVar           = "SANDBOX_TEST_PG_LOG"
	redisAddrVar       = "SANDBOX_TEST_REDIS_ADDR"
	workerRedisAddrVar = "SANDBOX_TEST_WORKER_REDIS_ADDR"
	redisAdminPassVar  = "SANDBOX_TEST_REDIS_ADMIN_PASSWORD"
	redisUserVar       = "SANDBOX_TEST_REDIS_USERNAME"
	redisPassVar       = "SANDBOX_TEST_REDIS_PASSWORD"
	sqsEndpointVar     = "SANDBOX_TEST_SQS_ENDPOINT"
)

const howToRun = "run the tests through `make test` or `scripts/with-services.sh go test ./...`"

// cleanupTimeout bounds teardown, which runs after the test's own context is cancelled.
const cleanupTimeout = 30 * time.Second

func requireEnv(t testing.TB, name string) string {
	t.Helper()
	value := os.Getenv(name)
	if value == "" {
		t.Fatalf("testenv: %s is not set; integration tests need the throwaway services: %s", name, howToRun)
	}
	return value
}

// randomHex returns n random bytes as lowercase hex, safe in SQL identifiers and Redis keys.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}

// WaitUntil polls cond until it holds, for a state another session, goroutine or server
// reaches on its own; past 30 s it fails the test, naming what it waited for. It forces no
// interleaving: a test uses it to see one reached, not to wait for time to pass.
func WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for this, in vain: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
