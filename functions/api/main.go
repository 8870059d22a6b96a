// Command api is the sandbox management API (DESIGN §6): in Lambda it serves API Gateway
// HTTP API payload-2.0 events; outside it serves the same handler on a loopback port behind
// bearer tokens, or with -invoke runs it once on an event file and prints the response (§8).
// It is a composition root: configuration, clients, the control plane, then shared/api.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
)

// maxConns sizes the pool: one invocation at a time, a few concurrent health checks.
const maxConns = 4

func main() {
	invoke := flag.String("invoke", "", "invoke the Lambda handler once with the payload-2.0 event in this JSON file and print the response")
	flag.Parse()
	if err := run(*invoke); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func run(invokeFile string) error {
	logger := lambdakit.SetupLogging(os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := api.LoadConfig(os.LookupEnv)
	if err != nil {
		return err
	}
	var secrets clients.SecretGetter
	if cfg.DatabaseSecretARN != "" || cfg.RedisPasswordSecretARN != "" {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return err
		}
		secrets = secretsmanager.NewFromConfig(awsCfg)
	}
	stores, err := clients.Open(ctx, cfg.Shared, secrets, maxConns)
	if err != nil {
		return err
	}
	defer stores.Close()

	resources := provision.New(stores.DB, stores.Redis, cfg.TemplateSchema, provision.WithRedisAccess(cfg.RedisAccess))
	routes := routecache.New(stores.Redis, 0, 0)
	// List cursors are signed; every instance of the deployment derives the same key.
	cursorKey, cursorKeySource, err := api.CursorKey(cfg, stores.DB.Config().ConnConfig.Password)
	if err != nil {
		return err
	}
	logger.Info("list cursors are signed", "key", cursorKeySource)
	manager := controlplane.NewManager(stores.DB, controlplane.Options{
		Limits: cfg.Limits, ProtectedGuilds: cfg.ProtectedGuilds,
		Provisioner: resources, Routes: routes, Logger: logger, CursorKey: cursorKey,
	})
	// EMF lines go to stdout, where CloudWatch picks them up; -invoke prints its response
	// there, so its metrics go to stderr.
	emf := os.Stdout
	if invokeFile != "" {
		emf = os.Stderr
	}
	emitter, err := metrics.NewEmitter(emf, cfg.Environment)
	if err != nil {
		return err
	}
	// Destroy runs the same teardown as the scheduled cleanup, with the same teardown settings
	// (cfg.Teardown), and the admin routes run cleanup on demand; the API publishes no expiry
	// warnings (nil publisher).
	teardown, err := cleanup.NewFromConfig(cleanup.Config{Shared: cfg.Shared, Teardown: cfg.Teardown}, stores.DB, stores.Redis, nil)
	if err != nil {
		return err
	}
	handler, err := api.New(cfg, api.Deps{
		Sandboxes: manager, Resources: resources, Routes: routes,
		Teardown: teardown, Cleanup: cleanup.Admin{Service: teardown},
		DB: stores.DB, Redis: stores.Redis, Logger: logger,
	})
	if err != nil {
		return err
	}
	return api.Run(ctx, cfg, handler, emitter, invokeFile)
}
