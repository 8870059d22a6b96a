package clients_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
)

func TestURLFromSecret(t *testing.T) {
	cases := map[string]string{
		`{"username":"app","password":"p@ss/word","host":"db.example","port":5432,"dbname":"sandboxes","engine":"postgres"}`: "postgres://app:p%40ss%2Fword@db.example:5432/sandboxes?sslmode=require",
		`{"username":"app","password":"x","host":"db.example","port":"6432"}`:                                                "postgres://app:x@db.example:6432/postgres?sslmode=require",
	}
	for in, want := range cases {
		got, err := clients.URLFromSecret(in)
		if err != nil || got != want {
			t.Errorf("urlFromSecret(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`not json`, `{"username":"app"}`, `{"password":"x","host":"h"}`} {
		if _, err := clients.URLFromSecret(bad); err == nil {
			t.Errorf("urlFromSecret(%s) accepted", bad)
		}
	}
}

type fakeSecrets map[string]string

func (f fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	v, ok := f[*in.SecretId]
	if !ok {
		return nil, errors.New("ResourceNotFoundException")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: &v}, nil
}

func TestDatabaseURLPrefersTheURL(t *testing.T) {
	got, err := clients.DatabaseURL(context.Background(), config.Shared{DatabaseURL: "postgres://x@h/db"}, nil)
	if err != nil || got != "postgres://x@h/db" {
		t.Fatal(got, err)
	}
	_, err = clients.DatabaseURL(context.Background(), config.Shared{DatabaseSecretARN: "arn:missing"}, fakeSecrets{})
	if err == nil || !strings.Contains(err.Error(), "arn:missing") {
		t.Fatalf("missing secret: %v", err)
	}
}

// Open connects and changes nothing: the functions' cold start runs no DDL (the migrate step
// does), so a database user without DDL rights can open it.
func TestOpenConnectsWithoutMigrating(t *testing.T) {
	_, dbURL := testenv.Postgres(t)
	addr := testenv.RedisAddr(t)
	user, password := testenv.RedisCredentials(t)
	ctx := context.Background()
	s, err := clients.Open(ctx, config.Shared{DatabaseURL: dbURL, RedisAddr: addr, RedisCluster: testenv.RedisCluster(), RedisUsername: user, RedisPassword: password}, config.WorkerDatabase{}, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var schemas int
	if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname IN ('sandbox_control', 'sandbox_template')`).Scan(&schemas); err != nil || schemas != 0 {
		t.Fatalf("Open created %d control-plane schemas (%v): migrations belong to the migrate step", schemas, err)
	}
	if err := controlplane.CheckSchema(ctx, s.DB); !errors.Is(err, controlplane.ErrSchemaOutdated) {
		t.Fatalf("CheckSchema on a database Open left alone: %v, want ErrSchemaOutdated", err)
	}
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := clients.Open(ctx, config.Shared{DatabaseURL: "postgres://nobody@127.0.0.1:1/x?connect_timeout=1", RedisAddr: addr}, config.WorkerDatabase{}, nil, 1); err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
}

// With the sandboxes apart, Open opens the worker database's pool beside the control
// plane's, and a worker database it cannot reach fails the start, naming it. Without, the
// worker database is the control plane's own pool.
func TestOpenOpensAnApartWorkerDatabase(t *testing.T) {
	_, dbURL := testenv.Postgres(t)
	_, workerURL := testenv.WorkerPostgres(t)
	addr := testenv.RedisAddr(t)
	ctx := context.Background()
	shared := config.Shared{DatabaseURL: dbURL, RedisAddr: addr, RedisCluster: testenv.RedisCluster()}
	s, err := clients.Open(ctx, shared, config.WorkerDatabase{}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s.WorkersApart() || s.WorkerDB != s.DB {
		t.Errorf("without a worker database: WorkerDB is not DB")
	}
	s.Close()

	s, err = clients.Open(ctx, shared, config.WorkerDatabase{URL: workerURL}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	var control, workers string
	if err := s.DB.QueryRow(ctx, "SELECT current_database()").Scan(&control); err != nil {
		t.Fatal(err)
	}
	if err := s.WorkerDB.QueryRow(ctx, "SELECT current_database()").Scan(&workers); err != nil {
		t.Fatal(err)
	}
	if !s.WorkersApart() || !strings.HasSuffix(dbURL, "/"+control+"?sslmode=disable") || !strings.HasSuffix(workerURL, "/"+workers+"?sslmode=disable") {
		t.Errorf("apart %v: DB on %s, WorkerDB on %s; want %s and %s", s.WorkersApart(), control, workers, dbURL, workerURL)
	}
	s.Close()
	if err := s.WorkerDB.Ping(ctx); err == nil {
		t.Error("Close left the worker database's pool open")
	}

	_, err = clients.Open(ctx, shared, config.WorkerDatabase{URL: dbURL}, nil, 1)
	if err == nil || !strings.Contains(err.Error(), "the control plane's own") {
		t.Errorf("Open with the control database as the worker database: %v", err)
	}
	_, err = clients.Open(ctx, shared, config.WorkerDatabase{URL: "postgres://nobody@127.0.0.1:1/x?connect_timeout=1"}, nil, 1)
	if err == nil || !strings.HasPrefix(err.Error(), "worker database: ") {
		t.Errorf("Open with an unreachable worker database: %v", err)
	}
	_, err = clients.Open(ctx, shared, config.WorkerDatabase{SecretARN: "arn:missing"}, fakeSecrets{}, 1)
	if err == nil || !strings.Contains(err.Error(), "arn:missing") {
		t.Errorf("Open with a missing worker database secret: %v", err)
	}
}

// A statement on a connection the server or the network has closed, which pgx already knew
// was gone (the pool hands out such a connection after a cut), fails as unavailable: the API
// answers it 503, not 500.
func TestAStatementOnAClosedConnectionIsUnavailable(t *testing.T) {
	_, dbURL := testenv.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "SELECT 1")
	if err == nil || !clients.IsUnavailable(err) {
		t.Errorf("a statement on a closed connection: %v; want an error IsUnavailable reports", err)
	}
}

// WORKER_REDIS_ADDR gives the sandboxes' keys a Redis client of their own, on that server, as
// the functions' user; unset, the sandboxes' client is the route cache's.
func TestOpenOpensTheSandboxesOwnRedis(t *testing.T) {
	_, dbURL := testenv.Postgres(t)
	user, password := testenv.RedisCredentials(t)
	ctx := context.Background()
	shared := config.Shared{DatabaseURL: dbURL, RedisAddr: testenv.RedisAddr(t), RedisCluster: testenv.RedisCluster(),
		RedisUsername: user, RedisPassword: password}
	s, err := clients.Open(ctx, shared, config.WorkerDatabase{}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s.RedisApart() || s.WorkerRedis != s.Redis {
		t.Errorf("without WORKER_REDIS_ADDR: WorkerRedis is not Redis")
	}
	s.Close()

	shared.WorkerRedisAddr = testenv.WorkerRedisAddr(t)
	s, err = clients.Open(ctx, shared, config.WorkerDatabase{}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	worker, ok := s.WorkerRedis.(*redis.Client)
	if !s.RedisApart() || !ok || worker.Options().Addr != shared.WorkerRedisAddr {
		t.Fatalf("apart %v: WorkerRedis %T; want a client of %s", s.RedisApart(), s.WorkerRedis, shared.WorkerRedisAddr)
	}
	who, err := s.WorkerRedis.Do(ctx, "ACL", "WHOAMI").Text()
	if err != nil || who != user {
		t.Errorf("the sandboxes' Redis answers ACL WHOAMI %q (%v); want the functions' user %s", who, err, user)
	}
	s.Close()
	if err := s.WorkerRedis.Ping(ctx).Err(); err == nil {
		t.Error("Close left the sandboxes' Redis client open")
	}

	// From a secret, the password serves both servers and is read once.
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redis"
	secrets := &countingSecrets{fakeSecrets: fakeSecrets{arn: password}}
	shared.RedisPassword, shared.RedisPasswordSecretARN = "", arn
	s, err = clients.Open(ctx, shared, config.WorkerDatabase{}, secrets, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, rdb := range []redis.UniversalClient{s.Redis, s.WorkerRedis} {
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Errorf("with the password from its secret: %v", err)
		}
	}
	if secrets.calls != 1 {
		t.Errorf("Open read the Redis password's secret %d times, want once", secrets.calls)
	}
}

// countingSecrets is fakeSecrets that counts its reads.
type countingSecrets struct {
	fakeSecrets
	calls int
}

func (c *countingSecrets) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.calls++
	return c.fakeSecrets.GetSecretValue(ctx, in, opts...)
}
