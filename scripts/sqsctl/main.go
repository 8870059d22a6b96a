// Command sqsctl manages the SQS queues of a local stack (moto_server or any SQS-compatible
// endpoint) for scripts/dev.sh, scripts/demo.sh and the runbook's local procedures, so that
// none of them needs the aws CLI:
//
//	sqsctl setup   -prefix discord-sandboxes-dev      create ingress, its dead-letter queue and production
//	sqsctl send    -queue URL [FILE...]                send each file (or stdin) as one message
//	sqsctl receive -queue URL [-min N] [-timeout D]    print message bodies, one per line (-json: with attributes)
//	sqsctl count   -queue URL                          print visible and in-flight counts
//	sqsctl purge   -queue URL                          delete every message
//	sqsctl redrive -from URL -to URL                   move every message (local start-message-move-task)
//
// The endpoint is -endpoint or $SQS_ENDPOINT; credentials and region come from the usual AWS
// environment variables.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const usage = `usage: sqsctl COMMAND [flags]

commands:
  setup   -prefix NAME [-max-receive N] [-visibility D]
          create NAME-ingress-dlq, NAME-ingress (redrive to the DLQ) and NAME-production,
          and print their URLs as shell exports
  send    -queue URL [FILE...]      send each file (stdin when none or "-") as one message
  receive -queue URL [-min N] [-max N] [-timeout D] [-keep] [-json]
          print message bodies, one per line, until at least -min arrived or -timeout passed;
          received messages are deleted unless -keep; -json prints each message as one JSON
          object instead: {"id", "body", "attributes": {name: value}} (binary values base64)
  count   -queue URL                print "visible N in_flight N"
  purge   -queue URL                delete every message
  redrive -from URL -to URL         move every message (what start-message-move-task does)

global flag: -endpoint URL (default $SQS_ENDPOINT)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "sqsctl %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("sqsctl "+cmd, flag.ContinueOnError)
	endpoint := fs.String("endpoint", os.Getenv("SQS_ENDPOINT"), "SQS endpoint URL")
	queue := fs.String("queue", "", "queue URL")
	var action func(c *sqs.Client) error
	switch cmd {
	case "setup":
		prefix := fs.String("prefix", "", "queue name prefix, e.g. discord-sandboxes-dev")
		maxReceive := fs.Int("max-receive", 3, "receives before a message moves to the dead-letter queue")
		visibility := fs.Duration("visibility", 10*time.Second, "visibility timeout of the ingress queue")
		action = func(c *sqs.Client) error { return setup(ctx, c, *prefix, *maxReceive, *visibility, stdout) }
	case "send":
		action = func(c *sqs.Client) error { return send(ctx, c, *queue, fs.Args(), stdin, stdout) }
	case "receive":
		atLeast := fs.Int("min", 1, "wait until at least this many messages arrived")
		atMost := fs.Int("max", 100, "stop after this many messages")
		timeout := fs.Duration("timeout", 10*time.Second, "give up waiting for -min messages after this long")
		keep := fs.Bool("keep", false, "leave the messages in the queue (they become visible again later)")
		asJSON := fs.Bool("json", false, "print each message as a JSON object with its id, body and message attributes")
		action = func(c *sqs.Client) error {
			return receive(ctx, c, *queue, *atLeast, *atMost, *timeout, *keep, *asJSON, stdout)
		}
	case "count":
		action = func(c *sqs.Client) error { return count(ctx, c, *queue, stdout) }
	case "purge":
		action = func(c *sqs.Client) error {
			_, err := c.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: queue})
			return err
		}
	case "redrive":
		from := fs.String("from", "", "source queue URL (the dead-letter queue)")
		to := fs.String("to", "", "destination queue URL")
		action = func(c *sqs.Client) error { return redrive(ctx, c, *from, *to, stdout) }
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command (run sqsctl help)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoint == "" {
		return errors.New("no endpoint: set SQS_ENDPOINT or pass -endpoint")
	}
	needsQueue := cmd == "send" || cmd == "receive" || cmd == "count" || cmd == "purge"
	if needsQueue && *queue == "" {
		return errors.New("-queue URL is required")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = endpoint })
	return action(client)
}

// setup creates the three queues of the stack, named as Terraform names them, idempotently.
func setup(ctx context.Context, c *sqs.Client, prefix string, maxReceive int, visibility time.Duration, w io.Writer) error {
	if prefix == "" {
		return errors.New("-prefix is required")
	}
	dlqURL, err := createQueue(ctx, c, prefix+"-ingress-dlq", map[string]string{"MessageRetentionPeriod": "1209600"})
	if err != nil {
		return err
	}
	dlqAttrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &dlqURL, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("reading the dead-letter queue's ARN: %w", err)
	}
	redrive, err := json.Marshal(map[string]string{
		"deadLetterTargetArn": dlqAttrs.Attributes[string(types.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     strconv.Itoa(maxReceive),
	})
	if err != nil {
		return err
	}
	ingressURL, err := createQueue(ctx, c, prefix+"-ingress", map[string]string{
		"VisibilityTimeout": strconv.Itoa(int(visibility.Seconds())),
		"RedrivePolicy":     string(redrive),
	})
	if err != nil {
		return err
	}
	productionURL, err := createQueue(ctx, c, prefix+"-production", nil)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "export INGRESS_QUEUE_URL='%s'\nexport INGRESS_DLQ_URL='%s'\nexport PRODUCTION_QUEUE_URL='%s'\n",
		ingressURL, dlqURL, productionURL)
	return err
}

func createQueue(ctx context.Context, c *sqs.Client, name string, attrs map[string]string) (string, error) {
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &name, Attributes: attrs})
	if err != nil {
		return "", fmt.Errorf("creating queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// send sends each file's content as one message and prints the message ids.
func send(ctx context.Context, c *sqs.Client, queue string, files []string, stdin io.Reader, w io.Writer) error {
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, f := range files {
		var body []byte
		var err error
		if f == "-" {
			body, err = io.ReadAll(stdin)
		} else {
			body, err = os.ReadFile(f)
		}
		if err != nil {
			return err
		}
		out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &queue, MessageBody: aws.String(string(body))})
		if err != nil {
			return fmt.Errorf("sending %s: %w", f, err)
		}
		if _, err := fmt.Fprintln(w, aws.ToString(out.MessageId)); err != nil {
			return err
		}
	}
	return nil
}

// receive prints message bodies, one per line (newlines inside a body are escaped by
// compacting JSON bodies; other bodies are printed as they are), or with asJSON one JSON
// object per message, until at least atLeast messages arrived or timeout passed. Fewer than
// atLeast messages is an error.
func receive(ctx context.Context, c *sqs.Client, queue string, atLeast, atMost int, timeout time.Duration, keep, asJSON bool, w io.Writer) error {
	deadline := time.Now().Add(timeout)
	got := 0
	for got < atMost {
		wait := int32(1)
		if got >= atLeast || !time.Now().Before(deadline) {
			wait = 0 // enough, or out of time: take what is there and stop
		}
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &queue, MaxNumberOfMessages: int32(min(10, atMost-got)), WaitTimeSeconds: wait,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			return err
		}
		for _, m := range out.Messages {
			show := printBody
			if asJSON {
				show = func(w io.Writer, _ string) error { return printMessage(w, m) }
			}
			if err := show(w, aws.ToString(m.Body)); err != nil {
				return err
			}
			got++
			if !keep {
				if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &queue, ReceiptHandle: m.ReceiptHandle}); err != nil {
					return err
				}
			}
		}
		if len(out.Messages) == 0 && wait == 0 {
			break
		}
	}
	if got < atLeast {
		return fmt.Errorf("%d message(s) arrived within %s, expected at least %d", got, timeout, atLeast)
	}
	return nil
}

func printBody(w io.Writer, body string) error {
	var line bytes.Buffer
	if json.Compact(&line, []byte(body)) != nil {
		line.Reset()
		line.WriteString(strings.ReplaceAll(body, "\n", `\n`))
	}
	_, err := fmt.Fprintln(w, line.String())
	return err
}

// printMessage prints m as one JSON line: its id, its body, and its message attributes by
// name (string and number values as they are, binary values base64).
func printMessage(w io.Writer, m types.Message) error {
	attrs := make(map[string]string, len(m.MessageAttributes))
	for name, a := range m.MessageAttributes {
		if a.BinaryValue != nil {
			attrs[name] = base64.StdEncoding.EncodeToString(a.BinaryValue)
			continue
		}
		attrs[name] = aws.ToString(a.StringValue)
	}
	line, err := json.Marshal(struct {
		ID         string            `json:"id"`
		Body       string            `json:"body"`
		Attributes map[string]string `json:"attributes"`
	}{aws.ToString(m.MessageId), aws.ToString(m.Body), attrs})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(line))
	return err
}

func count(ctx context.Context, c *sqs.Client, queue string, w io.Writer) error {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &queue,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "visible %s in_flight %s\n",
		out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)],
		out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return err
}

// redrive moves every message of from to to: send first, then delete, so a failure leaves a
// duplicate rather than a loss.
func redrive(ctx context.Context, c *sqs.Client, from, to string, w io.Writer) error {
	if from == "" || to == "" {
		return errors.New("-from and -to are required")
	}
	moved := 0
	for {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &from, MaxNumberOfMessages: 10, WaitTimeSeconds: 0,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			return err
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{
				QueueUrl: &to, MessageBody: m.Body, MessageAttributes: m.MessageAttributes,
			}); err != nil {
				return fmt.Errorf("after moving %d: %w", moved, err)
			}
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &from, ReceiptHandle: m.ReceiptHandle}); err != nil {
				return fmt.Errorf("after moving %d: %w", moved, err)
			}
			moved++
		}
	}
	_, err := fmt.Fprintf(w, "moved %d message(s)\n", moved)
	return err
}
