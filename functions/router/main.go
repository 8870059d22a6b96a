// Command router is the router Lambda function (DESIGN §4): it routes each Discord gateway
// event of the ingress SQS queue to a sandbox's stream or to the production queue.
//
// Outside Lambda (DESIGN §8) it polls INGRESS_QUEUE_URL, on SQS_ENDPOINT when set (any
// SQS-compatible server), and stops cleanly on SIGINT or SIGTERM; with -invoke FILE it handles
// the SQS event in FILE once and prints the response.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
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
	lambdakit.SetupLogging(os.Stderr)
	if err := run(*invoke); err != nil {
		slog.Error("router stopped", "error", err)
		os.Exit(1)
	}
}

func run(eventFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := routing.LoadConfig(os.LookupEnv)
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
	queues := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		if cfg.SQSEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.SQSEndpoint)
			if o.Region == "" {
				o.Region = localRegion
			}
		}
	})
	emitter, err := metrics.NewEmitter(os.Stdout, cfg.Environment)
	if err != nil {
		return err
	}
	router, err := routing.NewFromConfig(cfg, stores.DB, stores.Redis, queues)
	if err != nil {
		return err
	}
	return sqsadapter.Run(ctx, router, emitter, queues, sqsadapter.Local{
		EventFile: eventFile, IngressQueueURL: cfg.IngressQueueURL,
	})
}
