// Package clients builds the connections every function needs, once per execution
// environment: the PostgreSQL pool (from DATABASE_URL, or from a Secrets Manager secret in
// the RDS JSON shape so that credentials never sit in environment variables), the pool of the
// sandboxes' own database when they live apart (WORKER_DATABASE_URL or its secret), the Redis
// client (a cluster client when REDIS_CLUSTER is set), and the client of the sandboxes' own Redis
// when they have one (WORKER_REDIS_ADDR). It changes nothing in the stores:
// migrations are a step of their own (controlplane.MigrateStep), and each function checks the
// schema after opening them (controlplane.CheckSchema).
package clients

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// SecretGetter is the part of the Secrets Manager client this package uses.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// rdsSecret is the JSON shape of an RDS-managed or RDS-style database secret.
type rdsSecret struct {
	Username string          `json:"username"`
	Password string          `json:"password"`
	Host     string          `json:"host"`
	Port     json.RawMessage `json:"port"` // a number in RDS secrets, sometimes a string
	DBName   string          `json:"dbname"`
}

// DatabaseURL returns DATABASE_URL when set, else the URL built from the secret.
func DatabaseURL(ctx context.Context, cfg config.Shared, sm SecretGetter) (string, error) {
	return databaseURL(ctx, cfg.DatabaseURL, cfg.DatabaseSecretARN, "DATABASE_SECRET_ARN", sm)
}

// WorkerDatabaseURL returns WORKER_DATABASE_URL when set, else the URL built from its secret,
// and "" when the sandboxes live in the control plane's database.
func WorkerDatabaseURL(ctx context.Context, w config.WorkerDatabase, sm SecretGetter) (string, error) {
	if !w.Apart() {
		return "", nil
	}
	return databaseURL(ctx, w.URL, w.SecretARN, "WORKER_DATABASE_SECRET_ARN", sm)
}

func databaseURL(ctx context.Context, dbURL, secretARN, secretVar string, sm SecretGetter) (string, error) {
	if dbURL != "" {
		return dbURL, nil
	}
	if sm == nil {
		return "", fmt.Errorf("clients: %s is set but no Secrets Manager client was given", secretVar)
	}
	raw, err := secretString(ctx, sm, secretARN)
	if err != nil {
		return "", err
	}
	return urlFromSecret(raw)
}

func urlFromSecret(raw string) (string, error) {
	var s rdsSecret
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return "", fmt.Errorf("clients: database secret is not RDS-shaped JSON: %w", err)
	}
	port := "5432"
	if len(s.Port) > 0 {
		var n int
		var str string
		switch {
		case json.Unmarshal(s.Port, &n) == nil:
			port = strconv.Itoa(n)
		case json.Unmarshal(s.Port, &str) == nil && str != "":
			port = str
		}
	}
	if s.Username == "" || s.Password == "" || s.Host == "" {
		return "", fmt.Errorf("clients: database secret lacks username, password or host")
	}
	if s.DBName == "" {
		s.DBName = "postgres"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(s.Username, s.Password),
		Host:     net.JoinHostPort(s.Host, port),
		Path:     "/" + s.DBName,
		RawQuery: "sslmode=require",
	}
	return u.String(), nil
}

func secretString(ctx context.Context, sm SecretGetter, arn string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn})
	if err != nil {
		return "", fmt.Errorf("clients: read secret %s: %w", arn, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("clients: secret %s has no string value", arn)
	}
	return *out.SecretString, nil
}

// Postgres opens a pool sized for a Lambda execution environment (one invocation at a time,
// a few concurrent queries within it), whose sessions resolve names in the catalog alone
// (sandbox.ControlSearchPath), and checks it answers.
func Postgres(ctx context.Context, dbURL string, maxConns int32) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("clients: database URL: %w", err)
	}
	if maxConns > 0 {
		pc.MaxConns = maxConns
	}
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.ConnConfig.ConnectTimeout = 5 * time.Second
	pc.ConnConfig.RuntimeParams["search_path"] = sandbox.ControlSearchPath
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("clients: open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("clients: database unreachable: %w", err)
	}
	return pool, nil
}

// Redis returns a client for REDIS_ADDR: a cluster client when REDIS_CLUSTER is set.
func Redis(ctx context.Context, cfg config.Shared, sm SecretGetter) (redis.UniversalClient, error) {
	password, err := redisPassword(ctx, cfg, sm)
	if err != nil {
		return nil, err
	}
	return redisClient(cfg, cfg.RedisAddr, cfg.RedisCluster, password), nil
}

// redisPassword is the functions' Redis password: REDIS_PASSWORD, or the secret
// REDIS_PASSWORD_SECRET_ARN names (read once, for both servers when the sandboxes have their own).
func redisPassword(ctx context.Context, cfg config.Shared, sm SecretGetter) (string, error) {
	if cfg.RedisPasswordSecretARN == "" {
		return cfg.RedisPassword, nil
	}
	if sm == nil {
		return "", fmt.Errorf("clients: REDIS_PASSWORD_SECRET_ARN is set but no Secrets Manager client was given")
	}
	return secretString(ctx, sm, cfg.RedisPasswordSecretARN)
}

// redisClient is a client for the server at addr as the functions' user, with their TLS
// setting: the control plane's Redis or the sandboxes' own.
func redisClient(cfg config.Shared, addr string, cluster bool, password string) redis.UniversalClient {
	var tlsConfig *tls.Config
	if cfg.RedisTLS {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	opts := &redis.UniversalOptions{
		Addrs:         []string{addr},
		Username:      cfg.RedisUsername,
		Password:      password,
		TLSConfig:     tlsConfig,
		DialTimeout:   3 * time.Second,
		ReadTimeout:   2 * time.Second,
		WriteTimeout:  2 * time.Second,
		IsClusterMode: cluster,
		// A caller's deadline (the router's ROUTER_REDIS_TIMEOUT, a Lambda invocation's end)
		// also bounds the socket reads and writes, not only the waits between retries: without
		// it a Redis that never answers holds a call for ReadTimeout on every retry.
		ContextTimeoutEnabled: true,
	}
	return redis.NewUniversalClient(opts)
}

// Stores are the connections of one execution environment.
type Stores struct {
	// DB is the control plane's database.
	DB *pgxpool.Pool
	// WorkerDB is the database of the sandboxes' schemas and roles: a pool of its own when
	// they live apart (config.WorkerDatabase), else DB itself.
	WorkerDB *pgxpool.Pool
	// Redis holds the route cache and what else the control plane keeps in Redis.
	Redis redis.UniversalClient
	// WorkerRedis holds the sandboxes' namespaces, streams, usage counters and ACL users: a
	// client of its own when they live apart (WORKER_REDIS_ADDR), else Redis itself.
	WorkerRedis redis.UniversalClient
}

// RedisApart reports whether the sandboxes have a Redis server apart from the route cache's.
func (s *Stores) RedisApart() bool { return s.WorkerRedis != s.Redis }

// WorkersApart reports whether the sandboxes live in a database apart from the control plane's.
func (s *Stores) WorkersApart() bool { return s.WorkerDB != s.DB }

// Close releases them.
func (s *Stores) Close() {
	if s.DB != nil {
		s.DB.Close()
	}
	if s.WorkerDB != nil && s.WorkersApart() {
		s.WorkerDB.Close()
	}
	if s.WorkerRedis != nil && s.RedisApart() {
		_ = s.WorkerRedis.Close()
	}
	if s.Redis != nil {
		_ = s.Redis.Close()
	}
}

// Open connects to PostgreSQL and Redis, and to the sandboxes' own database when workers
// says they live apart (the router passes none: it reads routes only). It runs no DDL, so a
// function's database user needs no more rights than its queries (the router's role,
// docs/deploy.md). Redis being down does not fail Open: the router degrades to PostgreSQL,
// and health checks report it.
func Open(ctx context.Context, cfg config.Shared, workers config.WorkerDatabase, sm SecretGetter, maxConns int32) (*Stores, error) {
	dbURL, err := DatabaseURL(ctx, cfg, sm)
	if err != nil {
		return nil, err
	}
	workerURL, err := WorkerDatabaseURL(ctx, workers, sm)
	if err != nil {
		return nil, err
	}
	s := &Stores{}
	if s.DB, err = Postgres(ctx, dbURL, maxConns); err != nil {
		return nil, err
	}
	s.WorkerDB = s.DB
	if workerURL != "" {
		if s.WorkerDB, err = Postgres(ctx, workerURL, maxConns); err != nil {
			s.DB.Close()
			return nil, fmt.Errorf("worker database: %w", err)
		}
		if sameDatabase(s.DB, s.WorkerDB) {
			s.Close()
			return nil, errors.New("clients: the worker database is the control plane's own: leave WORKER_DATABASE_URL and WORKER_DATABASE_SECRET_ARN unset for that")
		}
	}
	password, err := redisPassword(ctx, cfg, sm)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Redis = redisClient(cfg, cfg.RedisAddr, cfg.RedisCluster, password)
	s.WorkerRedis = s.Redis
	if cfg.WorkerRedisApart() {
		s.WorkerRedis = redisClient(cfg, cfg.WorkerRedisAddr, cfg.WorkerRedisCluster, password)
	}
	return s, nil
}

// sameDatabase reports whether two pools reach one database of one server (by address).
func sameDatabase(a, b *pgxpool.Pool) bool {
	ca, cb := a.Config().ConnConfig, b.Config().ConnConfig
	return ca.Host == cb.Host && ca.Port == cb.Port && ca.Database == cb.Database
}

// SchemaCheck tells whether the databases are ready for the code (controlplane.CheckSchemas):
// the control plane's, and the workers' when it is another (else workerDB is db).
type SchemaCheck func(ctx context.Context, db, workerDB *pgxpool.Pool) error

// OpenInAWS loads the AWS configuration (the default credential chain and region), opens the
// stores with the Secrets Manager client it makes and runs check on the databases: the first
// steps of a function that talks to AWS services besides its secrets (the router's queues,
// cleanup's topic). It returns the configuration for those clients. When the check fails the
// stores are closed and its error returned.
func OpenInAWS(ctx context.Context, cfg config.Shared, workers config.WorkerDatabase, maxConns int32, check SchemaCheck) (*Stores, aws.Config, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, aws.Config{}, fmt.Errorf("aws configuration: %w", err)
	}
	stores, err := Open(ctx, cfg, workers, secretsmanager.NewFromConfig(awsCfg), maxConns)
	if err != nil {
		return nil, aws.Config{}, err
	}
	if err := check(ctx, stores.DB, stores.WorkerDB); err != nil {
		stores.Close()
		return nil, aws.Config{}, err
	}
	return stores, awsCfg, nil
}
