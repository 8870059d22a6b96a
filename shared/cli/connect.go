package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

func (a *app) connectCommand() *cobra.Command {
	var endSessions bool
	cmd := &cobra.Command{
		Use:   "connect NAME",
		Short: "Print a worker's connection settings as shell exports (rotates the passwords)",
		Long: "connect prints `export KEY=\"value\"` lines on stdout, and only those, so that\n\n" +
			"  eval \"$(sandbox connect NAME)\"\n\n" +
			"sets them in the current shell; comments for people go to stderr. Every call rotates the\n" +
			"sandbox role's password and its Redis user's password: the previous ones stop working,\n" +
			"but what they opened stays open. --end-sessions also ends every database session and Redis\n" +
			"connection of the sandbox's credentials (every worker's, yours included: they connect\n" +
			"again), for credentials that leaked or a collaborator whose share ended.",
		Example: "  eval \"$(sandbox connect alice-feature-x)\"\n  eval \"$(sandbox connect alice-feature-x --end-sessions)\"",
		Args:    cobra.ExactArgs(1),
		RunE: a.onSandbox(func(ctx context.Context, c *Client, name string) error {
			conn, err := c.Connect(ctx, name, apiwire.ConnectRequest{EndSessions: endSessions})
			return printAnswer(a, conn, err, a.printConnection)
		}),
	}
	cmd.Flags().BoolVar(&endSessions, "end-sessions", false, "also end every session the previous credentials opened (database and Redis)")
	return cmd
}

// printConnection writes the exports on stdout, and the comments for people on stderr.
func (a *app) printConnection(conn *apiwire.ConnectResponse) error {
	e := a.env.Stderr
	fmt.Fprintf(e, "# sandbox %s (id %s): worker connection settings; guilds: %s\n", printable(conn.Name), printable(conn.SandboxID), guildList(conn.GuildIDs))
	fmt.Fprintf(e, "# new database password, valid until %s; the previous one no longer works\n",
		formatTime(conn.Database.PasswordExpiresAt, a.loc()))
	if conn.Redis.Username != "" {
		fmt.Fprintf(e, "# new password of Redis user %s, which reaches %s* only; the previous one no longer works\n",
			printable(conn.Redis.Username), printable(conn.Redis.Namespace))
	}
	if ended := conn.SessionsEnded; ended != nil {
		fmt.Fprintf(e, "# ended %s and %s opened with the previous credentials\n",
			plural(ended.DatabaseSessions, "database session", "database sessions"),
			plural(ended.RedisConnections, "Redis connection", "Redis connections"))
	}
	if conn.Redis.Warning != "" {
		fmt.Fprintf(e, "# warning: %s\n", printable(conn.Redis.Warning))
	}
	if conn.Redis.Cluster {
		fmt.Fprintf(e, "# Redis is a cluster: connect with a cluster client (redis-cli -c); %s is one of its nodes\n", printable(conn.Redis.Addr))
	}
	skipped, err := writeExports(a.env.Stdout, conn.Env)
	if err != nil {
		return err
	}
	for _, k := range skipped {
		fmt.Fprintf(e, "# skipped %q: not a shell variable name\n", k)
	}
	if isTerminal(a.env.Stdout) {
		fmt.Fprintf(e, "# to set these in your shell: eval \"$(sandbox connect %s)\"\n", conn.Name)
	}
	return nil
}
