package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

func (a *app) destroyCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "destroy NAME",
		Short: "Destroy a sandbox: its guild mappings, Redis keys, schema and role",
		Long: "destroy tears a sandbox down and shows the teardown record. On a terminal it asks for\n" +
			"confirmation; elsewhere it needs --yes.",
		Args: cobra.ExactArgs(1),
		RunE: a.onSandbox(func(ctx context.Context, c *Client, name string) error {
			if !yes {
				sb, err := c.Get(ctx, name)
				if err != nil {
					return err
				}
				question := fmt.Sprintf("Destroy sandbox %s (%s, owner %s, guilds: %s)? Its schema, role and Redis data are deleted. [y/N] ",
					sb.Name, sb.Status, shortOwner(sb.Owner), guildList(sb.Guilds))
				ok, err := a.confirm(ctx, question)
				if err != nil {
					return err
				}
				if !ok {
					return errorf(CodeAborted, "not destroyed: the answer was not yes")
				}
			}
			res, completed, err := c.Destroy(ctx, name)
			return printAnswer(a, res, err, func(res *apiwire.DestroyResponse) error { return a.printDestroyed(res, completed) })
		}, func(*cobra.Command) error {
			if !yes && !a.canPrompt() {
				return &Error{Code: CodeConfirmationRequired,
					Message: "destroy needs confirmation: pass --yes (stdin is not a terminal, so nobody can be asked)"}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// confirm asks question on stderr and reads the answer from stdin; only "y" or "yes" agree.
// Ctrl-C while waiting interrupts.
func (a *app) confirm(ctx context.Context, question string) (bool, error) {
	fmt.Fprint(a.env.Stderr, question)
	answer := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			line = ""
		}
		answer <- line
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(a.env.Stderr)
		return false, errorf(CodeInterrupted, "interrupted at the confirmation")
	case line := <-answer:
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return true, nil
		}
		return false, nil
	}
}

// printDestroyed shows the answer of a destroy: completed says the teardown ran to its end in
// the request (200 rather than 202).
func (a *app) printDestroyed(res *apiwire.DestroyResponse, completed bool) error {
	st, w := a.outStyle(), a.env.Stdout
	sb := &res.Sandbox
	switch {
	case completed && res.Changed:
		fmt.Fprintf(w, "%s sandbox %s (id %s)\n", st.green("Destroyed"), st.bold(sb.Name), sb.ID)
	case completed && sb.Status == statusDestroyed:
		// Already destroyed, or destroying until this request resumed the teardown.
		at := ""
		if sb.DestroyedAt != nil {
			at = " since " + formatTime(*sb.DestroyedAt, a.loc())
		}
		fmt.Fprintf(w, "Sandbox %s (id %s) is destroyed%s\n", st.bold(sb.Name), sb.ID, at)
	default:
		fmt.Fprintf(w, "Sandbox %s (id %s) is %s: the teardown did not finish in this request; the scheduled cleanup resumes it\n",
			st.bold(sb.Name), sb.ID, st.status(sb.Status))
	}
	// A database error may quote the names of the sandbox's objects, which its code chose.
	if res.TeardownError != "" {
		fmt.Fprintf(w, "%s %s\n", st.red("teardown error:"), printable(res.TeardownError))
	}
	if hasRecord(sb.Teardown) {
		fmt.Fprintln(w, "Teardown record:")
		writeRecord(w, st, "  ", sb.Teardown)
	}
	return nil
}
