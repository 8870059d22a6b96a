// Command cleanup is the cleanup Lambda function (DESIGN §5): every 15 minutes (an
// EventBridge schedule) it warns owners of sandboxes about to expire, tears down expired,
// failed, stuck and destroy-requested sandboxes, reconciles orphaned resources and records
// the gauges.
//
// Outside Lambda (DESIGN §8) it runs once, or every -interval until SIGINT or SIGTERM, and
// prints each run's report as JSON on stdout (metrics go to stderr there, logs too); -dry-run
// only reports; -invoke FILE handles the scheduled event in FILE once through the Lambda
// handler and prints the response.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/botplatform/discord-sandboxes/shared/cleanup"
	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// maxDBConns sizes the pool: the teardown workers, plus the gauges and orphan queries.
const maxDBConns = cleanup.DefaultConcurrency + 2

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
	lambdakit.SetupLogging(os.Stderr)
	if err := run(f); err != nil {
		slog.Error("cleanup stopped", "error", err)
		os.Exit(1)
	}
}

func run(f flags) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := cleanup.LoadConfig(os.LookupEnv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws configuration: %w", err)
	}
	stores, err := clients.Open(ctx, cfg.Shared, secretsmanager.NewFromConfig(awsCfg), maxDBConns)
	if err != nil {
		return err
	}
	defer stores.Close()
	var publisher cleanup.Publisher
	if cfg.ExpiryWarningTopicARN != "" {
		publisher = cleanup.SNSPublisher{Client: sns.NewFromConfig(awsCfg), TopicARN: cfg.ExpiryWarningTopicARN}
	}
	svc, err := cleanup.NewFromConfig(cfg, stores.DB, stores.Redis, publisher)
	if err != nil {
		return err
	}
	// In Lambda, EMF lines go to stdout; locally stdout carries the reports.
	metricsOut := os.Stderr
	if lambdakit.InLambda() {
		metricsOut = os.Stdout
	}
	emitter, err := metrics.NewEmitter(metricsOut, cfg.Environment)
	if err != nil {
		return err
	}
	job := &cleanup.Job{Service: svc, RemoveOrphans: cfg.RemoveOrphans}
	handler := lambdakit.Wrap("cleanup", emitter, job.Handle)

	switch {
	case lambdakit.InLambda():
		return lambdakit.Start(handler)
	case f.invoke != "":
		return lambdakit.InvokeFile(ctx, handler, f.invoke, os.Stdout)
	}
	for {
		var report cleanup.RunReport
		if f.dryRun {
			report, err = svc.Run(ctx, cleanup.RunOptions{DryRun: true})
		} else {
			report, err = handler(lambdakit.NewLocalContext(ctx), scheduledEvent(time.Now()))
		}
		if jerr := printJSON(report); jerr != nil {
			return jerr
		}
		if f.interval <= 0 {
			return err
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			slog.Error("cleanup run failed; trying again at the next interval", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.interval):
		}
	}
}

// scheduledEvent is the event EventBridge sends on a schedule, for local runs.
func scheduledEvent(at time.Time) events.EventBridgeEvent {
	return events.EventBridgeEvent{
		Version: "0", ID: fmt.Sprintf("local-%d", at.UnixNano()), DetailType: "Scheduled Event", Source: "aws.events",
		Time: at.UTC(), Region: "local", Resources: []string{"local-schedule"}, Detail: json.RawMessage("{}"),
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
