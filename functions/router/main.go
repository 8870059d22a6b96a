// Command router is the router Lambda function (docs/architecture.md, "Routing"): it routes
// each Discord gateway event of the ingress SQS queue to a sandbox's stream or to the
// production queue.
//
// Outside Lambda (docs/architecture.md, "Local mode") it polls INGRESS_QUEUE_URL, on SQS_ENDPOINT when set (any
// SQS-compatible server), and stops cleanly on SIGINT or SIGTERM; with -invoke FILE it handles
// the SQS event in FILE once and prints the response.
//
// It is a composition root: configuration, clients, the schema check, the control plane's
// route queries, the router, then its SQS adapter, served by lambdakit.Serve. Its database
// user needs no DDL: only what the migrate step grants the router's role (docs/deploy.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/routing/sqsadapter"
)

// maxDBConns sizes the pool: one batch runs at a time and sends one route query.
const maxDBConns = 4

// localRegion is the region given to an SQS-compatible local endpoint that needs one.
const localRegion = "us-east-1"

func main() {
	invoke := flag.String("invoke", "", "handle the SQS event in this JSON `file` once, print the response and exit")
	flag.Parse()
	lambdakit.Main("router", func(ctx context.Context, logger *slog.Logger) error { return run(ctx, *invoke, logger) })
}

func run(ctx context.Context, invokeFile string, logger *slog.Logger) error {
	cfg, err := routing.LoadConfig(os.LookupEnv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	// The router reads routes only: it never opens the sandboxes' worker database.
	stores, awsCfg, err := clients.OpenInAWS(ctx, cfg.Shared, config.WorkerDatabase{}, maxDBConns, controlplane.CheckSchemas)
	if err != nil {
		return err
	}
	defer stores.Close()
	queues := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		if cfg.SQSEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.SQSEndpoint)
			if o.Region == "" {
				o.Region = localRegion
			}
		}
	})

	// Routes come from the control plane (with the configured protected guilds) through the
	// Redis route cache; the Manager also publishes the route changes their writer left
	// pending. Events go to the sandbox streams, in the sandboxes' own Redis when they have one
	// (WORKER_REDIS_ADDR), or to the production queue.
	cache := routecache.New(stores.Redis, cfg.RouteCacheTTL, cfg.RouteCacheNegativeTTL)
	manager := controlplane.NewManager(stores.DB, controlplane.Options{
		Limits: cfg.Limits, ProtectedGuilds: cfg.ProtectedGuilds, Routes: cache, Logger: logger,
	})
	if cfg.DeadLetterQueueURL == "" {
		logger.Warn("ROUTER_DEAD_LETTER_QUEUE_URL is not set: poison messages are batch item failures " +
			"until the ingress queue's redrive policy moves them to its dead-letter queue")
	}
	router, err := routing.New(cfg.RouterOptions(routing.Options{
		Store: manager, Publisher: manager, Cache: cache, Redis: stores.WorkerRedis, Production: queues, Logger: logger,
	}))
	if err != nil {
		return err
	}
	emitter, err := metrics.NewEmitter(os.Stdout, cfg.Environment, metrics.WithLogger(logger))
	if err != nil {
		return err
	}

	handler := lambdakit.Wrap(sqsadapter.FunctionName, emitter, sqsadapter.Handler(router), lambdakit.WithLogger(logger))
	return lambdakit.Serve(ctx, handler, lambdakit.Local{
		InvokeFile: invokeFile,
		Run:        sqsadapter.Poll(queues, cfg.IngressQueueURL, handler, logger),
	})
}
