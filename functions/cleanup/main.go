// Command cleanup is the cleanup Lambda function (docs/architecture.md, "Cleanup"): every 15
// minutes (an EventBridge schedule) it warns owners of sandboxes about to expire, tears down
// expired, failed, stuck and destroy-requested sandboxes, reconciles orphaned resources and
// records the gauges.
//
// Outside Lambda (docs/architecture.md, "Local mode") it runs once, or every -interval until
// SIGINT or SIGTERM, and prints each run's report as JSON on stdout (metrics go to stderr
// there, logs too); -dry-run only reports; -invoke FILE handles the scheduled event in FILE
// once through the Lambda handler and prints the response. Locally a run that found nothing
// to do logs only at debug.
//
// It is a composition root: configuration, clients, the schema check, the control plane, the
// cleanup service and its job, then the schedule's adapter, served by lambdakit.Serve.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/cleanup/scheduleadapter"
	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
)

// dbPoolSize is one connection per teardown worker, plus one each for the gauges and the orphan
// queries.
const dbPoolSize = cleanup.DefaultConcurrency + 2

type flags struct {
	interval time.Duration
	dryRun   bool
	invoke   string
}

func main() {
	var f flags
	flag.DurationVar(&f.interval, "interval", 0, "outside Lambda: run every `interval` (e.g. 1m) until interrupted; 0 runs once")
	flag.BoolVar(&f.dryRun, "dry-run", false, "outside Lambda: report candidates, due warnings and orphans, change nothing")
	flag.StringVar(&f.invoke, "invoke", "", "handle the scheduled event in this JSON `file` once, print the response and exit")
	flag.Parse()
	lambdakit.Main("cleanup", func(ctx context.Context, logger *slog.Logger) error { return run(ctx, f, logger) })
}

func run(ctx context.Context, f flags, logger *slog.Logger) error {
	cfg, err := cleanup.LoadConfig(os.LookupEnv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	stores, awsCfg, err := clients.OpenInAWS(ctx, cfg.Shared, cfg.Workers, dbPoolSize, controlplane.CheckSchemas)
	if err != nil {
		return err
	}
	defer stores.Close()

	// The sandboxes' schemas and roles live in the worker database, their keys, streams and
	// Redis users in the worker Redis (the control plane's own unless WORKER_DATABASE_URL and
	// WORKER_REDIS_ADDR say otherwise).
	resources := provision.New(stores.WorkerDB, stores.WorkerRedis, cfg.TemplateSchema, provision.WithRedisAccess(cfg.RedisAccess))
	manager := controlplane.NewManager(stores.DB, controlplane.Options{
		Limits: cfg.Limits, ProtectedGuilds: cfg.ProtectedGuilds,
		Provisioner: resources, WorkerServer: stores.WorkerDB, Routes: routecache.New(stores.Redis, 0, 0),
	})
	var publisher cleanup.Publisher // nil: expiry warnings are logged
	if cfg.ExpiryWarningTopicARN != "" {
		publisher = cleanup.SNSPublisher{Client: sns.NewFromConfig(awsCfg), TopicARN: cfg.ExpiryWarningTopicARN}
	}
	svc, err := cleanup.New(cfg.ServiceOptions(cleanup.Options{
		Manager: manager, Resources: resources, Redis: stores.Redis, WorkerRedis: stores.WorkerRedis, Publisher: publisher, Logger: logger,
	}))
	if err != nil {
		return err
	}
	job := &cleanup.Job{Service: svc, RemoveOrphans: cfg.RemoveOrphans}
	// In Lambda, EMF lines go to stdout; locally stdout carries the reports.
	metricsOut := os.Stderr
	if lambdakit.InLambda() {
		metricsOut = os.Stdout
	}
	emitter, err := metrics.NewEmitter(metricsOut, cfg.Environment, metrics.WithLogger(logger))
	if err != nil {
		return err
	}

	handler := lambdakit.Wrap(scheduleadapter.FunctionName, emitter, scheduleadapter.Handler(job, logger), lambdakit.WithLogger(logger))
	return lambdakit.Serve(ctx, handler, lambdakit.Local{
		InvokeFile: f.invoke,
		Run: func(ctx context.Context) error {
			// Locally the wrapper's "invocation finished" goes to debug: the loop is the schedule,
			// there is no request to find, and the run's own summary ("cleanup run finished", at
			// info when the run did something, at debug when it was idle) carries its duration.
			// In Lambda the line stays at info: one per invocation, with its request id, that
			// shows the schedule ran (RB-SB-009).
			wrapLog := lambdakit.WithLogger(slog.New(infoAsDebug{logger.Handler()}))
			return runLocally(ctx, f, svc, logger, lambdakit.WrapRun(scheduleadapter.FunctionName, emitter, job.Run, wrapLog))
		},
	})
}

// runLocally runs cleanup once, or every f.interval until ctx ends, calling the job directly
// (no event: the schedule is this loop) and printing each run's report on stdout. A failed
// run is logged and retried at the next interval; with no interval its error is the result.
func runLocally(ctx context.Context, f flags, svc *cleanup.Service, logger *slog.Logger, runJob func(context.Context) (cleanup.RunReport, error)) error {
	for {
		var report cleanup.RunReport
		var err error
		if f.dryRun {
			report, err = svc.Run(ctx, cleanup.RunOptions{DryRun: true})
		} else {
			report, err = runJob(ctx)
		}
		if jerr := printJSON(report); jerr != nil {
			return jerr
		}
		if f.interval <= 0 {
			return err
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("cleanup run failed; trying again at the next interval", logkey.Error, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.interval):
		}
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// infoAsDebug logs the info records of its handler at debug, and the others as they are.
type infoAsDebug struct{ slog.Handler }

func (h infoAsDebug) Enabled(ctx context.Context, level slog.Level) bool {
	if level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	return h.Handler.Enabled(ctx, level)
}

func (h infoAsDebug) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h infoAsDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	return infoAsDebug{h.Handler.WithAttrs(attrs)}
}

func (h infoAsDebug) WithGroup(name string) slog.Handler {
	return infoAsDebug{h.Handler.WithGroup(name)}
}
