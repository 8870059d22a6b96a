package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Environment variables the CLI reads (docs/cli.md, Configuration).
const (
	EnvAPIURL   = "SANDBOX_API_URL"
	EnvAPIToken = "SANDBOX_API_TOKEN"
	EnvNoColor  = "NO_COLOR"
	EnvTerm     = "TERM"
)

// defaultTimeout bounds one API request; creating and tearing down take seconds at most.
const defaultTimeout = 2 * time.Minute

// Ticker delivers the ticks of `status --watch`; tests drive it by hand.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

type timeTicker struct{ t *time.Ticker }

func (t timeTicker) C() <-chan time.Time { return t.t.C }
func (t timeTicker) Stop()               { t.t.Stop() }

// Env is everything the CLI takes from its process, so tests run the real commands
// in-process. OSEnv fills it from the operating system.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Lookup reads environment variables.
	Lookup config.Lookup
	// Now is the clock of rendering ("2h ago", the watch header).
	Now func() time.Time
	// Location is the zone times are shown in.
	Location *time.Location
	// NewTicker starts the ticker of `status --watch`.
	NewTicker func(time.Duration) Ticker
	// HTTPClient sends the API requests.
	HTTPClient *http.Client
	// LoadAWSConfig loads the AWS configuration (credential chain, region) for SigV4.
	LoadAWSConfig func(ctx context.Context) (aws.Config, error)

	// strictDecoding makes the client refuse answer fields it does not know (tests).
	strictDecoding bool
	// forwardWork, when set, is the context of `forward`'s entry in flight instead of one
	// Ctrl-C does not cancel: tests cancel it to kill a forwarder mid-entry (forward.go).
	forwardWork context.Context
}

// OSEnv is the Env of a real process.
func OSEnv() Env {
	return Env{
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		Lookup:     os.LookupEnv,
		Now:        time.Now,
		Location:   time.Local,
		NewTicker:  func(d time.Duration) Ticker { return timeTicker{time.NewTicker(d)} },
		HTTPClient: &http.Client{Transport: http.DefaultTransport},
		LoadAWSConfig: func(ctx context.Context) (aws.Config, error) {
			return awsconfig.LoadDefaultConfig(ctx)
		},
	}
}

// app is one run of the CLI: the environment, the global flags and what follows from them.
type app struct {
	env Env

	apiURL  string
	token   string
	json    bool
	timeout time.Duration
	// showVersion is the root's --version.
	showVersion bool
	// helpShown: a bare command group printed its help, so its error needs no hint to it.
	helpShown bool

	client *Client
}

// Run executes the CLI with args (without the program name) and returns the exit code.
// Cancelling ctx (Ctrl-C) interrupts the command; `status --watch` then ends normally.
func Run(ctx context.Context, args []string, env Env) int {
	stdout := &stickyWriter{w: env.Stdout}
	env.Stdout = stdout
	a := &app{env: env}
	root := a.rootCommand()
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil && stdout.err != nil {
		err = &Error{Code: sandbox.CodeInternal, Message: "writing the output failed: " + stdout.err.Error()}
	}
	if err == nil {
		return ExitOK
	}
	if !a.json {
		// A flag error stops parsing early; --json may come after the bad flag.
		a.json = jsonRequested(args)
	}
	e := a.classify(err, cmd)
	a.addAuthHint(e)
	a.reportError(e)
	return ExitCode(e)
}

// stickyWriter keeps the first write error of the commands' output and skips every later
// write: a reader that went away (a closed pipe) fails the command once, in Run, instead of
// each line being written into the void.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	s.err = err
	return n, err
}

// jsonRequested reports whether args ask for --json before any "--".
func jsonRequested(args []string) bool {
	for _, arg := range args {
		switch arg {
		case "--":
			return false
		case "--json", "--json=true":
			return true
		}
	}
	return false
}

// classify gives every error a code. Errors returned by the commands themselves are *Error
// or usageError (see codedRunE), and cobra's are rewritten into *Error as they happen
// (usage.go); anything else would still come from cobra before a command ran and is a usage
// error too. A usage error's hint names the help page of cmd, the command that failed.
func (a *app) classify(err error, cmd *cobra.Command) *Error {
	var e *Error
	var u usageError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &u):
		e = &Error{Code: CodeUsage, Message: u.Error()}
	default:
		msg, _, _ := strings.Cut(err.Error(), "\n")
		e = &Error{Code: CodeUsage, Message: msg}
	}
	if e.Code == CodeUsage && e.Hint == "" && !a.helpShown && cmd != nil {
		e.Hint = helpHint(cmd)
	}
	return e
}

// addAuthHint explains a refused identity by the authentication mode in use.
func (a *app) addAuthHint(e *Error) {
	if e.Hint != "" || a.client == nil || e.Code != sandbox.CodeUnauthenticated {
		return
	}
	switch a.client.auth.(type) {
	case BearerToken:
		e.Hint = "the API does not know this token: check --token or " + EnvAPIToken
	case *SigV4:
		e.Hint = "the request was SigV4-signed; against a local stack pass --token or set " + EnvAPIToken
	}
}

// usageError marks errors of argument and flag parsing.
type usageError struct{ error }

// codedRunE makes a command return only *Error or usageError, so classify can tell cobra's
// errors from the commands' ones; prepareTree applies it to every command of the tree.
func codedRunE(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, argv []string) error {
			err := run(c, argv)
			var e *Error
			var u usageError
			if err == nil || errors.As(err, &e) || errors.As(err, &u) {
				return err
			}
			return asError(err)
		}
	}
}

// reportError writes the error: the --json document on stdout, or a line for people on
// stderr (with the request id and a hint when there are any).
func (a *app) reportError(e *Error) {
	if a.json {
		_ = writeJSONDoc(a.env.Stdout, newErrorDocument(e))
		return
	}
	st := a.errStyle()
	msg := fmt.Sprintf("%s %s", st.red("error:"), printable(e.Message))
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		msg += fmt.Sprintf(" (%s)", e.Field)
	}
	fmt.Fprintf(a.env.Stderr, "%s [%s]\n", msg, e.Code)
	if e.RequestID != "" {
		fmt.Fprintf(a.env.Stderr, "  request id: %s\n", printable(e.RequestID))
	}
	if e.Hint != "" {
		fmt.Fprintf(a.env.Stderr, "  hint: %s\n", printable(e.Hint))
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sandbox",
		Short: "Manage Discord server sandboxes",
		Long: "sandbox manages Discord server sandboxes through the sandbox API: isolated, short-lived\n" +
			"environments (a PostgreSQL schema, a Redis namespace, test guilds) for testing the bot.\n\n" +
			"The API URL comes from --api-url or " + EnvAPIURL + ". With --token or " + EnvAPIToken + " the\n" +
			"requests carry that bearer token (the local stack); otherwise they are signed with SigV4\n" +
			"using the standard AWS credential chain (API Gateway).",
		SilenceUsage:  true,
		SilenceErrors: true,
		// `sandbox completion` is ours (completion.go): the CLI's errors, --json refused.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		// The root is a command group like the others (usage.go), and serves --version.
		Args: groupArgs,
		RunE: func(cmd *cobra.Command, argv []string) error {
			if a.showVersion {
				return a.printVersion()
			}
			return a.runGroup(cmd, argv)
		},
	}
	root.SetFlagErrorFunc(a.flagError)
	root.SetUsageTemplate(groupUsage(root))
	root.Flags().BoolVar(&a.showVersion, "version", false, "print the version of sandbox, as sandbox version does")
	pf := root.PersistentFlags()
	pf.StringVar(&a.apiURL, "api-url", "", "API base URL (default $"+EnvAPIURL+")")
	pf.StringVar(&a.token, "token", "", "bearer token of a local stack (default $"+EnvAPIToken+"); without one, requests are SigV4-signed")
	pf.BoolVar(&a.json, "json", false, "print JSON (documented in docs/cli.md) instead of text, errors included")
	a.timeout = defaultTimeout
	pf.Var(durationFlag{&a.timeout, "timeout"}, "timeout", "bound on each API request, e.g. 30s, 2m")
	root.AddCommand(
		a.createCommand(), a.listCommand(), a.statusCommand(), a.extendCommand(),
		a.destroyCommand(), a.connectCommand(), a.guildsCommand(), a.routeCommand(),
		a.cleanupCommand(),
	)
	root.AddCommand(a.eventsCommand(), a.devCommand())    // events.go, dev.go
	root.AddCommand(a.shareCommand(), a.unshareCommand()) // share.go
	root.AddCommand(a.templatesCommand())                 // templates.go
	root.AddCommand(a.forwardCommand())                   // forward.go
	root.AddCommand(a.versionCommand(), a.completionCommand())
	strictHelp(root)
	a.prepareTree(root)
	return root
}

// lookup reads an environment variable ("" when unset).
func (a *app) lookup(name string) string {
	if a.env.Lookup == nil {
		return ""
	}
	v, _ := a.env.Lookup(name)
	return v
}

// colorsAllowed is the one rule for decoration: never with --json, NO_COLOR or TERM=dumb.
func (a *app) colorsAllowed() bool {
	return !a.json && a.lookup(EnvNoColor) == "" && a.lookup(EnvTerm) != "dumb"
}

// outStyle styles stdout; errStyle styles stderr. Each needs its own stream on a terminal.
func (a *app) outStyle() style { return style{color: a.colorsAllowed() && isTerminal(a.env.Stdout)} }
func (a *app) errStyle() style { return style{color: a.colorsAllowed() && isTerminal(a.env.Stderr)} }

// stdoutIsTerminal reports whether stdout can be redrawn in place.
func (a *app) stdoutIsTerminal() bool { return isTerminal(a.env.Stdout) }

// spinnerWriter is stderr when a spinner may be shown there, nil otherwise.
func (a *app) spinnerWriter() io.Writer {
	if a.colorsAllowed() && isTerminal(a.env.Stderr) {
		return a.env.Stderr
	}
	return nil
}

// canPrompt reports whether a person can answer a question: stdin and stderr are terminals.
func (a *app) canPrompt() bool { return isTerminal(a.env.Stdin) && isTerminal(a.env.Stderr) }

func (a *app) now() time.Time {
	if a.env.Now == nil {
		return time.Now()
	}
	return a.env.Now()
}

func (a *app) loc() *time.Location {
	if a.env.Location == nil {
		return time.Local
	}
	return a.env.Location
}

// onSandbox is the RunE of a command whose one argument is a sandbox's name: it checks the
// name, then the command's own checks (flags), all before any request, then calls run with
// the API client.
func (a *app) onSandbox(run func(ctx context.Context, c *Client, name string) error, checks ...func(cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return a.onArg(checkName, run, checks...)
}

// onArg is onSandbox for a command whose one argument checkArg validates (a sandbox's name,
// a template's, a guild id).
func (a *app) onArg(checkArg func(string) error, run func(ctx context.Context, c *Client, arg string) error, checks ...func(cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, argv []string) error {
		arg := argv[0]
		if err := checkArg(arg); err != nil {
			return err
		}
		for _, check := range checks {
			if err := check(cmd); err != nil {
				return err
			}
		}
		c, err := a.api(cmd.Context())
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, arg)
	}
}

// withAPI is the RunE of a command that calls the API: run gets the client.
func (a *app) withAPI(run func(ctx context.Context, c *Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		c, err := a.api(cmd.Context())
		if err != nil {
			return err
		}
		return run(cmd.Context(), c)
	}
}

// printAnswer shows the answer of an API call: the JSON document with --json, through show
// otherwise. The call's error, if any, is returned as it is.
func printAnswer[T any](a *app, answer T, err error, show func(T) error) error {
	if err != nil {
		return err
	}
	if a.json {
		return writeJSONDoc(a.env.Stdout, answer)
	}
	return show(answer)
}

// api returns the API client, building it on first use from the flags and environment:
// token set → bearer, else SigV4 with the AWS credential chain.
func (a *app) api(ctx context.Context) (*Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	raw := firstNonEmpty(a.apiURL, a.lookup(EnvAPIURL))
	if raw == "" {
		return nil, &Error{Code: CodeConfig, Message: "no API URL: pass --api-url or set " + EnvAPIURL,
			Hint: "export " + EnvAPIURL + "=https://<api-id>.execute-api.<region>.amazonaws.com"}
	}
	u, err := parseAPIURL(raw)
	if err != nil {
		return nil, err
	}
	var auth Authorizer
	if token := firstNonEmpty(a.token, a.lookup(EnvAPIToken)); token != "" {
		if u.Scheme != "https" && !isLoopback(u.Hostname()) {
			return nil, errorf(CodeConfig, "refusing to send the bearer token over plain http to %s: use https or a loopback address", u.Host)
		}
		auth = BearerToken(token)
	} else {
		if a.env.LoadAWSConfig == nil {
			return nil, errorf(CodeConfig, "no AWS configuration loader")
		}
		cfg, err := a.env.LoadAWSConfig(ctx)
		if err != nil {
			return nil, &Error{Code: CodeCredentials, Message: "loading the AWS configuration: " + err.Error()}
		}
		region := firstNonEmpty(RegionFromHost(u.Hostname()), cfg.Region)
		if region == "" {
			return nil, &Error{Code: CodeConfig, Message: "cannot tell the AWS region to sign for: " + u.Host + " is not an execute-api host and no region is configured",
				Hint: "set AWS_REGION, or --token/" + EnvAPIToken + " for a local stack"}
		}
		if cfg.Credentials == nil {
			return nil, &Error{Code: CodeCredentials, Message: "no AWS credentials configured"}
		}
		auth = NewSigV4(cfg.Credentials, region)
	}
	c, err := NewClient(raw, auth, a.env.HTTPClient)
	if err != nil {
		return nil, err
	}
	c.Timeout = a.timeout
	c.strict = a.env.strictDecoding
	a.client = c
	return c, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseDuration parses the value of a duration flag the way the API does (sandbox.ParseDuration:
// "90m", "1h30m", "7d", "7d2h"); the duration must be positive.
func parseDuration(flag, value string) (time.Duration, error) {
	d, err := sandbox.ParseDuration(value)
	switch {
	case err != nil:
		return 0, &Error{Code: CodeUsage, Field: flag,
			Message: fmt.Sprintf("--%s %q is not a duration: use forms like %s", flag, value, sandbox.DurationForms)}
	case d <= 0:
		return 0, &Error{Code: CodeUsage, Field: flag, Message: fmt.Sprintf("--%s must be positive, not %q", flag, value)}
	}
	return d, nil
}

// durationFlag is a duration flag's value: parsed by parseDuration when the flag is set (its
// errors are the CLI's usage errors), shown the way it is typed ("2m", not "2m0s").
type durationFlag struct {
	d    *time.Duration
	name string
}

func (f durationFlag) Set(s string) error {
	d, err := parseDuration(f.name, s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (f durationFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "" // unset: no "(default ...)" in the help
	}
	return sandbox.FormatDuration(*f.d)
}

func (f durationFlag) Type() string { return "duration" }
