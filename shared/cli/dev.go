package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Environment variables of `sandbox dev` (docs/cli.md, dev send); scripts/dev.sh writes the
// first two into its env file too.
const (
	EnvSQSEndpoint  = "SQS_ENDPOINT"
	EnvIngressQueue = "INGRESS_QUEUE_URL"
	EnvDevDir       = "SANDBOX_DEV_DIR"
)

// devEnvPath is where scripts/dev.sh writes the local stack's settings, under the repository
// (or under $SANDBOX_DEV_DIR as "env").
var devEnvPath = filepath.Join(".run", "dev", "env")

// devEnvLine is a line of that file the CLI reads: export NAME='value'.
var devEnvLine = regexp.MustCompile(`^export ([A-Z_][A-Z0-9_]*)='([^']*)'$`)

// dispatchType is the shape of a gateway dispatch type, as --type takes it.
var dispatchType = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// devCredentials are what the CLI signs local requests with when the stack's file gives none:
// moto takes any, and the developer's own AWS credentials are never sent to a local endpoint.
const devCredentials = "sandbox-dev"

// discordEpochMillis is the start of Discord's snowflake clock (2015-01-01T00:00:00Z).
const discordEpochMillis = 1420070400000

func (a *app) devCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Local development: feed the local stack (make dev) with gateway events",
	}
	cmd.AddCommand(a.devSendCommand())
	return cmd
}

// devSent is the --json document of `dev send`.
type devSent struct {
	MessageID string `json:"message_id"`
	QueueURL  string `json:"queue_url"`
	Bytes     int    `json:"bytes"`
	// Payload is what was sent, when it is JSON (the payload of a file as it is in the file).
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (a *app) devSendCommand() *cobra.Command {
	var guild, typ, queueURL string
	cmd := &cobra.Command{
		Use:   "send [FILE|-]",
		Short: "Put a gateway dispatch on the local ingress queue, as Discord's ingress service does",
		Long: "send puts one gateway dispatch payload on the ingress queue of the local stack that\n" +
			"`make dev` runs, where the router picks it up as it would in AWS: FILE (or - for stdin) is\n" +
			"sent as it is; without one, --guild (and --type, MESSAGE_CREATE by default) make a minimal\n" +
			"dispatch {\"op\":0,\"t\":TYPE,\"s\":N,\"d\":{\"guild_id\":GUILD,...}}.\n\n" +
			"It talks to the SQS-compatible endpoint of the local stack: $" + EnvSQSEndpoint + " and\n" +
			"$" + EnvIngressQueue + ", or the file scripts/dev.sh writes (.run/dev/env of the repository,\n" +
			"or $" + EnvDevDir + "/env). It refuses to run without a local endpoint, and sends to a\n" +
			"queue in AWS only when --queue-url names it (then with the standard AWS credentials).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var payload []byte
			var what string
			switch {
			case len(argv) == 1 && (guild != "" || cmd.Flags().Changed("type")):
				field := "guild"
				if guild == "" {
					field = "type"
				}
				return &Error{Code: CodeUsage, Field: field,
					Message: "a FILE is sent as it is: --guild and --type only make a payload when there is no FILE"}
			case len(argv) == 1:
				var err error
				if payload, what, err = a.readPayload(argv[0]); err != nil {
					return err
				}
			case guild == "":
				return &Error{Code: CodeUsage, Field: "guild",
					Message: "give the payload as FILE (or - for stdin), or --guild GUILD_ID [--type TYPE] for a minimal dispatch"}
			default:
				if err := checkGuild(guild); err != nil {
					return err
				}
				if !dispatchType.MatchString(typ) {
					return &Error{Code: CodeUsage, Field: "type",
						Message: fmt.Sprintf("--type %q is not a gateway event type like MESSAGE_CREATE", typ)}
				}
				payload, what = minimalDispatch(typ, guild, a.now()), typ+" of guild "+guild
			}
			target, err := a.devTarget(cmd.Context(), queueURL)
			if err != nil {
				return err
			}
			id, err := target.send(cmd.Context(), a.timeout, payload)
			if err != nil {
				return err
			}
			out := devSent{MessageID: id, QueueURL: target.queueURL, Bytes: len(payload)}
			if json.Valid(payload) {
				out.Payload = payload
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, out)
			}
			st, w := a.outStyle(), a.env.Stdout
			fmt.Fprintf(w, "%s %s (%d bytes) to %s: message %s\n", st.green("Sent"), what, len(payload), target.queueURL, id)
			if guild != "" {
				fmt.Fprintf(w, "  %s\n", printable(string(payload)))
				fmt.Fprintf(w, "Where the router sends it: sandbox route %s\n", guild)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&guild, "guild", "", "without FILE: the guild of the minimal dispatch")
	f.StringVar(&typ, "type", "MESSAGE_CREATE", "without FILE: the event type of the minimal dispatch")
	f.StringVar(&queueURL, "queue-url", "", "the queue to send to; the only way to send to a queue in AWS (default $"+EnvIngressQueue+")")
	return cmd
}

// maxPayloadBytes is the largest SQS message.
const maxPayloadBytes = 1 << 20

// readPayload reads FILE, or stdin for "-"; an empty payload is refused (SQS takes none), and
// one larger than an SQS message.
func (a *app) readPayload(arg string) ([]byte, string, error) {
	what, in := arg, io.Reader(a.env.Stdin)
	if arg == "-" {
		what = "the payload on stdin"
	} else {
		f, err := os.Open(arg)
		if err != nil {
			return nil, "", &Error{Code: CodeUsage, Message: fmt.Sprintf("cannot read %s: %v", arg, errors.Unwrap(err))}
		}
		defer func() { _ = f.Close() }()
		in = f
	}
	payload, err := io.ReadAll(io.LimitReader(in, maxPayloadBytes+1))
	switch {
	case err != nil:
		return nil, "", &Error{Code: CodeUsage, Message: fmt.Sprintf("reading %s: %v", what, err)}
	case len(payload) == 0:
		return nil, "", &Error{Code: CodeUsage, Message: what + " is empty: there is nothing to send"}
	case len(payload) > maxPayloadBytes:
		return nil, "", &Error{Code: CodeUsage, Message: fmt.Sprintf("%s is larger than an SQS message (%d bytes)", what, maxPayloadBytes)}
	}
	return payload, what, nil
}

// minimalDispatch is the smallest dispatch of type typ for guild that routes like Discord's:
// d.guild_id, and for the guild's own events (GUILD_CREATE, _UPDATE, _DELETE) d.id, where the
// gateway puts the guild; a message gets a channel, an author and content. s and the ids follow
// the clock, so that successive payloads differ and come in order.
func minimalDispatch(typ, guild string, now time.Time) []byte {
	ms := now.UnixMilli()
	snowflake := strconv.FormatInt((ms-discordEpochMillis)<<22, 10)
	d := map[string]any{"guild_id": guild, "id": snowflake}
	switch {
	case typ == "GUILD_CREATE" || typ == "GUILD_UPDATE" || typ == "GUILD_DELETE":
		d["id"] = guild
		d["name"] = "sandbox dev guild"
	case strings.HasPrefix(typ, "MESSAGE_"):
		d["channel_id"] = "1300000000000000101"
		d["author"] = map[string]any{"id": "1200000000000000042", "username": "sandbox-dev", "bot": false}
		d["content"] = "sent by sandbox dev send at " + now.UTC().Format(time.RFC3339Nano)
		d["timestamp"] = now.UTC().Format("2006-01-02T15:04:05.000000+00:00")
	}
	body, _ := json.Marshal(struct {
		Op int            `json:"op"`
		T  string         `json:"t"`
		S  int64          `json:"s"`
		D  map[string]any `json:"d"`
	}{0, typ, ms, d})
	return body
}

// devTarget is where `dev send` sends, and how.
type devTarget struct {
	queueURL string
	client   *sqs.Client
	// endpoint is the SQS endpoint of a local stack ("" for AWS's own), and file the stack's
	// env file it came from, if any: both for messages.
	endpoint, file string
}

// devTarget resolves the queue and the endpoint: a queue named by --queue-url is sent to as
// named (AWS's endpoint and credentials for a queue in AWS); otherwise only a local endpoint,
// from the environment or the local stack's env file, is used, and never for a queue in AWS.
func (a *app) devTarget(ctx context.Context, explicitQueue string) (*devTarget, error) {
	fileVars, file := a.readDevEnv()
	endpoint := firstNonEmpty(a.lookup(EnvSQSEndpoint), fileVars[EnvSQSEndpoint])
	t := &devTarget{queueURL: firstNonEmpty(explicitQueue, a.lookup(EnvIngressQueue), fileVars[EnvIngressQueue]), file: file}
	notLocal := &Error{Code: CodeConfig,
		Hint: "start the local stack with `make dev` (it writes " + devEnvPath + "), or name a queue with --queue-url"}
	if explicitQueue != "" {
		u, err := url.Parse(explicitQueue)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, &Error{Code: CodeUsage, Field: "queue-url", Message: fmt.Sprintf("--queue-url %q is not an http(s) queue URL", explicitQueue)}
		}
		if awsHost(u.Hostname()) {
			return t, a.awsQueueClient(ctx, t, u.Hostname())
		}
		endpoint = firstNonEmpty(endpoint, u.Scheme+"://"+u.Host)
	}
	switch {
	case endpoint == "":
		where := "its env file " + devEnvPath + " (here or in a parent directory up to the repository's root)"
		if dir := a.lookup(EnvDevDir); dir != "" {
			where = "its env file " + filepath.Join(dir, "env") + " ($" + EnvDevDir + ")"
		}
		notLocal.Message = "no local SQS endpoint: dev send talks to the stack `make dev` runs, and found neither $" + EnvSQSEndpoint +
			" nor " + firstNonEmpty(file, where)
		return nil, notLocal
	case awsHost(hostOf(endpoint)):
		notLocal.Message = fmt.Sprintf("%s %s is AWS's: dev send sends only to a local endpoint unless --queue-url names the queue", EnvSQSEndpoint, endpoint)
		return nil, notLocal
	case t.queueURL == "":
		notLocal.Message = "no ingress queue: set $" + EnvIngressQueue + " or pass --queue-url"
		return nil, notLocal
	case awsHost(hostOf(t.queueURL)):
		notLocal.Message = fmt.Sprintf("%s %s is a queue in AWS: pass it as --queue-url to send there on purpose", EnvIngressQueue, t.queueURL)
		return nil, notLocal
	}
	region := firstNonEmpty(fileVars["AWS_REGION"], "us-east-1")
	key, secret := firstNonEmpty(fileVars["AWS_ACCESS_KEY_ID"], devCredentials), firstNonEmpty(fileVars["AWS_SECRET_ACCESS_KEY"], devCredentials)
	t.endpoint = endpoint
	t.client = sqs.New(sqs.Options{
		Region: region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""),
	})
	return t, nil
}

// awsQueueClient readies t to send to a queue in AWS, in the region its host names, with the
// standard credential chain.
func (a *app) awsQueueClient(ctx context.Context, t *devTarget, host string) error {
	if a.env.LoadAWSConfig == nil {
		return errorf(CodeConfig, "no AWS configuration loader")
	}
	cfg, err := a.env.LoadAWSConfig(ctx)
	if err != nil {
		return &Error{Code: CodeCredentials, Message: "loading the AWS configuration: " + err.Error()}
	}
	region := firstNonEmpty(regionOfQueueHost(host), cfg.Region)
	if region == "" {
		return &Error{Code: CodeConfig, Message: "cannot tell the region of queue " + t.queueURL, Hint: "set AWS_REGION"}
	}
	t.client = sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.Region = region })
	return nil
}

// send sends the payload as one message and returns its id.
func (t *devTarget) send(ctx context.Context, timeout time.Duration, payload []byte) (string, error) {
	sendCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out, err := t.client.SendMessage(sendCtx, &sqs.SendMessageInput{QueueUrl: aws.String(t.queueURL), MessageBody: aws.String(string(payload))})
	if err == nil {
		return aws.ToString(out.MessageId), nil
	}
	var api interface {
		ErrorCode() string
		ErrorMessage() string
	}
	switch {
	case ctx.Err() != nil:
		return "", &Error{Code: CodeInterrupted, Message: "interrupted before the queue answered"}
	case errors.As(err, &api) && strings.Contains(api.ErrorCode(), "NonExistentQueue"), errors.As(err, &api) && api.ErrorCode() == "QueueDoesNotExist":
		return "", &Error{Code: sandbox.CodeNotFound, Message: fmt.Sprintf("queue %s does not exist", t.queueURL)}
	case errors.As(err, &api):
		return "", &Error{Code: sandbox.CodeInternal, Message: fmt.Sprintf("the queue refused the message: %s: %s", api.ErrorCode(), api.ErrorMessage())}
	}
	e := &Error{Code: CodeUnreachable, Message: fmt.Sprintf("cannot reach the queue %s: %v", t.queueURL, err)}
	if sendCtx.Err() != nil {
		e.Message = fmt.Sprintf("the queue %s did not answer within %s", t.queueURL, sandbox.FormatDuration(timeout))
	}
	if t.endpoint != "" {
		e.Hint = "is the local stack running (make dev)?"
		if t.file != "" {
			e.Hint += " " + t.file + " may be left over from one that stopped"
		}
	}
	return "", e
}

// readDevEnv reads the local stack's env file: $SANDBOX_DEV_DIR/env, else .run/dev/env in the
// working directory or a parent of it, up to the repository's root (the first with a go.mod).
// It returns no values and "" when there is none.
func (a *app) readDevEnv() (map[string]string, string) {
	var path string
	if dir := a.lookup(EnvDevDir); dir != "" {
		path = filepath.Join(dir, "env")
	} else if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, devEnvPath)); err == nil {
				path = filepath.Join(dir, devEnvPath)
				break
			}
			_, err := os.Stat(filepath.Join(dir, "go.mod"))
			parent := filepath.Dir(dir)
			if err == nil || parent == dir {
				break
			}
			dir = parent
		}
	}
	f, err := os.Open(path)
	if path == "" || err != nil {
		return map[string]string{}, ""
	}
	defer func() { _ = f.Close() }()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := devEnvLine.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			vars[m[1]] = m[2]
		}
	}
	return vars, path
}

// awsHost reports whether host is one of AWS's own service hosts.
func awsHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, suffix := range []string{"amazonaws.com", "amazonaws.com.cn", "api.aws"} {
		if host == suffix || strings.HasSuffix(host, "."+suffix) {
			return true
		}
	}
	return false
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// regionOfQueueHost reads the region of an SQS host: sqs.<region>.amazonaws.com (or
// sqs-fips., .amazonaws.com.cn, .api.aws), or the legacy <region>.queue.amazonaws.com.
func regionOfQueueHost(host string) string {
	labels := strings.Split(strings.ToLower(host), ".")
	switch {
	case len(labels) >= 3 && (labels[0] == "sqs" || labels[0] == "sqs-fips"):
		return labels[1]
	case len(labels) >= 3 && labels[1] == "queue":
		return labels[0]
	}
	return ""
}
