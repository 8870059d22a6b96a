// Command api is the sandbox management API (docs/api.md): in Lambda it serves API Gateway
// HTTP API payload-2.0 events; outside it serves the same handler on a loopback port behind
// bearer tokens, or with -invoke runs it once on an event file and prints the response
// (docs/architecture.md, "Local mode").
//
// It also hosts the migrate step of a deployment (docs/deploy.md): -migrate applies the
// control plane's migrations (and, with -router-role, grants the router's database role its
// privileges), prints the report as JSON and exits; in Lambda the direct invocation
// {"migrate": true, "router_role": "..."} does the same.
//
// It is a composition root: configuration, clients, the schema check, the control plane,
// the cleanup service, then shared/api, served by lambdakit.Serve.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
)

// maxConns sizes the pool: one invocation at a time, a few concurrent health checks.
const maxConns = 4

type flags struct {
	invoke     string
	migrate    bool
	routerRole string
}

func main() {
	var f flags
	flag.StringVar(&f.invoke, "invoke", "", "invoke the Lambda handler once with the payload-2.0 event in this JSON `file` and print the response")
	flag.BoolVar(&f.migrate, "migrate", false, "run the migrate step: apply the control plane's migrations, print the report as JSON and exit")
	flag.StringVar(&f.routerRole, "router-role", "", "with -migrate: grant this database `role` the router's privileges (docs/deploy.md)")
	flag.Parse()
	lambdakit.Main("api", func(ctx context.Context, logger *slog.Logger) error { return run(ctx, f, logger) })
}

func run(ctx context.Context, f flags, logger *slog.Logger) error {
	if f.routerRole != "" && !f.migrate {
		return errors.New("-router-role goes with -migrate")
	}
	cfg, err := api.LoadConfig(os.LookupEnv)
	if err != nil {
		return err
	}
	var secrets clients.SecretGetter
	if cfg.DatabaseSecretARN != "" || cfg.Workers.SecretARN != "" || cfg.RedisPasswordSecretARN != "" {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return err
		}
		secrets = secretsmanager.NewFromConfig(awsCfg)
	}
	stores, err := clients.Open(ctx, cfg.Shared, cfg.Workers, secrets, maxConns)
	if err != nil {
		return err
	}
	defer stores.Close()

	migrate := func(ctx context.Context, req controlplane.MigrateRequest) (controlplane.MigrateReport, error) {
		return controlplane.MigrateStep(ctx, stores.DB, stores.WorkerDB, req)
	}
	if f.migrate {
		report, err := migrate(ctx, controlplane.MigrateRequest{Migrate: true, RouterRole: f.routerRole})
		if jerr := printJSON(report); jerr != nil {
			return jerr
		}
		return err
	}
	// The schema must be the one this build needs. In Lambda an outdated one does not stop the
	// cold start, because the migrate step reaches this very function as an invocation: API
	// events fail with the schema's error until it has run (api.Function).
	schema := controlplane.NewSchemaGate(stores.DB, stores.WorkerDB)
	if err := schema.Check(ctx); err != nil {
		if !lambdakit.InLambda() || !errors.Is(err, controlplane.ErrSchemaOutdated) {
			return err
		}
		logger.Error("API requests fail until the migrate step runs", logkey.Error, err)
	}

	// The sandboxes' schemas and roles live in the worker database, their keys, streams and
	// Redis users in the worker Redis: the control plane's own unless they live apart
	// (WORKER_DATABASE_URL, WORKER_REDIS_ADDR). The route cache stays with the control plane.
	resources := provision.New(stores.WorkerDB, stores.WorkerRedis, cfg.TemplateSchema, provision.WithRedisAccess(cfg.RedisAccess))
	routes := routecache.New(stores.Redis, 0, 0)
	// List cursors are signed; every instance of the deployment derives the same key.
	cursorKey, cursorKeySource, err := api.CursorKey(cfg, stores.DB.Config().ConnConfig.Password)
	if err != nil {
		return err
	}
	logger.Info("list cursors are signed", "key", cursorKeySource)
	manager := controlplane.NewManager(stores.DB, controlplane.Options{
		Limits: cfg.Limits, ProtectedGuilds: cfg.ProtectedGuilds,
		Provisioner: resources, WorkerServer: stores.WorkerDB, Routes: routes, Logger: logger, CursorKey: cursorKey,
	})
	// Destroy runs the same teardown as the scheduled cleanup, with the same teardown settings
	// (cfg.Teardown), on this Manager and Provisioner, and the admin routes run cleanup on
	// demand; the API publishes no expiry warnings (no Publisher: they are logged).
	teardown, err := cleanup.New(cleanup.Config{Lifecycle: cfg.Lifecycle}.ServiceOptions(cleanup.Options{
		Manager: manager, Resources: resources, Redis: stores.Redis, WorkerRedis: stores.WorkerRedis, Logger: logger,
	}))
	if err != nil {
		return err
	}
	deps := api.Deps{
		Sandboxes: manager, Resources: resources, Routes: routes,
		Teardown: teardown, Cleanup: cleanup.Admin{Service: teardown},
		DB: stores.DB, WorkerDB: stores.WorkerDB, Redis: stores.Redis, WorkerRedis: stores.WorkerRedis, Logger: logger,
	}
	if stores.RedisApart() {
		// Sandbox users left on the route cache's server by a move: the health check warns.
		deps.LeftBehind = provision.New(stores.WorkerDB, stores.Redis, cfg.TemplateSchema, provision.WithRedisAccess(cfg.RedisAccess))
	}
	handler, err := api.New(cfg, deps)
	if err != nil {
		return err
	}
	// EMF lines go to stdout, where CloudWatch picks them up; -invoke prints its response
	// there, so its metrics go to stderr.
	emf := os.Stdout
	if f.invoke != "" {
		emf = os.Stderr
	}
	emitter, err := metrics.NewEmitter(emf, cfg.Environment, metrics.WithLogger(logger))
	if err != nil {
		return err
	}

	fn := api.Function{API: handler, Schema: schema, Migrate: migrate}
	return lambdakit.Serve(ctx, lambdakit.Wrap("api", emitter, fn.Handle, lambdakit.WithLogger(logger)), lambdakit.Local{
		InvokeFile: f.invoke,
		Run: func(ctx context.Context) error {
			return api.ServeLocal(ctx, cfg, handler, emitter)
		},
	})
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
