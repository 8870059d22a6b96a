package config

import (
	"maps"
	"strings"
	"testing"
	"time"
)

func TestLoadSharedDefaults(t *testing.T) {
	r := NewReader(MapLookup(map[string]string{"DATABASE_URL": "postgres://x", "REDIS_ADDR": "127.0.0.1:6379"}))
	c := LoadShared(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if c.Environment != "dev" || c.Limits.DefaultTTL != 24*time.Hour || c.Limits.MaxLifetime != 168*time.Hour ||
		c.Limits.OwnerQuota != 5 || c.Limits.DBReservedConnections != 100 || c.TemplateSchema != "sandbox_template" {
		t.Fatalf("%+v", c)
	}
}

func TestLoadSharedReportsEveryProblem(t *testing.T) {
	r := NewReader(MapLookup(map[string]string{
		"SANDBOX_DEFAULT_TTL":             "forever",
		"SANDBOX_OWNER_QUOTA":             "-3",
		"SANDBOX_DB_RESERVED_CONNECTIONS": "-2",
		"REDIS_TLS":                       "maybe",
		"SANDBOX_PROTECTED_GUILDS":        "80351110224678912, nope",
		"SANDBOX_TEMPLATE_SCHEMA":         "sb_evil",
		"LOG_LEVEL":                       "chatty",
	}))
	LoadShared(r)
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"SANDBOX_DEFAULT_TTL", "SANDBOX_OWNER_QUOTA", "SANDBOX_DB_RESERVED_CONNECTIONS", "REDIS_TLS", "SANDBOX_PROTECTED_GUILDS", "SANDBOX_TEMPLATE_SCHEMA", "LOG_LEVEL", "DATABASE_URL", "REDIS_ADDR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

// apartCase is a configuration and whether it puts the sandboxes apart, or the error it
// gets (a substring).
type apartCase struct {
	env   map[string]string
	apart bool
	err   string
}

// checkApart loads each case's configuration (over base) with load, which reports whether the
// sandboxes are apart, and checks the answer or the error.
func checkApart(t *testing.T, base map[string]string, cases []apartCase, load func(r *Reader) bool) {
	t.Helper()
	for _, tc := range cases {
		env := maps.Clone(base)
		maps.Copy(env, tc.env)
		r := NewReader(MapLookup(env))
		apart := load(r)
		err := r.Err()
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%v: %v; want an error saying %q", tc.env, err, tc.err)
		case tc.err == "" && (err != nil || apart != tc.apart):
			t.Errorf("%v: apart %v, %v; want apart %v", tc.env, apart, err, tc.apart)
		}
	}
}

// The worker database is apart only when named, and by one of its two settings.
func TestLoadWorkerDatabase(t *testing.T) {
	checkApart(t, map[string]string{}, []apartCase{
		{env: map[string]string{}},
		{env: map[string]string{"WORKER_DATABASE_URL": "postgres://w@h/workers"}, apart: true},
		{env: map[string]string{"WORKER_DATABASE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:w"}, apart: true},
		{env: map[string]string{"WORKER_DATABASE_URL": "postgres://w@h/workers", "WORKER_DATABASE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:w"}, err: "not both"},
		{env: map[string]string{"WORKER_DATABASE_SECRET_ARN": "workers"}, err: "WORKER_DATABASE_SECRET_ARN"},
	}, func(r *Reader) bool { return LoadWorkerDatabase(r).Apart() })
}

// The sandboxes have a Redis of their own only when it is named, and never the route cache's.
func TestLoadSharedWorkerRedis(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://x", "REDIS_ADDR": "redis.internal:6379"}
	checkApart(t, base, []apartCase{
		{env: map[string]string{}},
		{env: map[string]string{"WORKER_REDIS_ADDR": "sandboxes.internal:6379"}, apart: true},
		{env: map[string]string{"WORKER_REDIS_ADDR": "sandboxes.internal:6379", "WORKER_REDIS_CLUSTER": "true"}, apart: true},
		{env: map[string]string{"WORKER_REDIS_ADDR": "REDIS.internal:6379"}, err: "WORKER_REDIS_ADDR"},
		{env: map[string]string{"WORKER_REDIS_CLUSTER": "true"}, err: "WORKER_REDIS_CLUSTER"},
	}, func(r *Reader) bool { return LoadShared(r).WorkerRedisApart() })
}
