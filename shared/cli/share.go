package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Share lets principal act on a sandbox with role, or changes the role of its share
// (POST /v1/sandboxes/{name}/shares). created is true when the share is new.
func (c *Client) Share(ctx context.Context, name, principal string, role sandbox.ShareRole) (res *apiwire.ShareResponse, created bool, err error) {
	out, status, err := callStatus[apiwire.ShareResponse](ctx, c, http.MethodPost, []string{"v1", "sandboxes", name, "shares"}, nil,
		apiwire.ShareRequest{Principal: principal, Role: role})
	if err != nil {
		return nil, false, err
	}
	return out, status == http.StatusCreated, nil
}

// Unshare ends principal's share of a sandbox (DELETE /v1/sandboxes/{name}/shares).
func (c *Client) Unshare(ctx context.Context, name, principal string) (*apiwire.UnshareResponse, error) {
	return call[apiwire.UnshareResponse](ctx, c, http.MethodDelete, []string{"v1", "sandboxes", name, "shares"}, url.Values{"principal": {principal}}, nil)
}

// Shares lists who a sandbox is shared with (GET /v1/sandboxes/{name}/shares).
func (c *Client) Shares(ctx context.Context, name string) (*apiwire.SharesResponse, error) {
	return call[apiwire.SharesResponse](ctx, c, http.MethodGet, []string{"v1", "sandboxes", name, "shares"}, nil, nil)
}

// roleRights says what a role may do, for people.
var roleRights = map[sandbox.ShareRole]string{
	sandbox.ShareViewer:    "status, events and route; nothing that changes the sandbox",
	sandbox.ShareDeveloper: "also connect (which rotates the one set of worker credentials everyone shares), extend, guilds and events rewind",
}

func (a *app) shareCommand() *cobra.Command {
	var with, role string
	var r sandbox.ShareRole // role, parsed before any request
	cmd := &cobra.Command{
		Use:   "share NAME [--with PRINCIPAL [--role viewer|developer]]",
		Short: "Share a sandbox with another principal as a viewer or developer; without --with, list its shares",
		Long: "share lets another principal act on your sandbox: a viewer reads it (status, events),\n" +
			"a developer also connects, extends, maps guilds and rewinds its events. Only the owner and\n" +
			"admins share, unshare and destroy. Sharing again changes the role; a share ends when the\n" +
			"sandbox is destroyed, or with sandbox unshare.\n\n" +
			"PRINCIPAL is an IAM principal ARN as the API sees its callers (an IAM user, an assumed-role\n" +
			"session, or with API_OWNER_KEY=role the role), or a principal of a local stack's tokens.\n\n" +
			"Developers share the sandbox's one set of worker credentials: each connect rotates them\n" +
			"for everyone, and the audit log records who connected.",
		Example: "  sandbox share alice-feature-x --with arn:aws:iam::123456789012:user/bob --role developer\n" +
			"  sandbox share alice-feature-x",
		Args: cobra.ExactArgs(1),
		RunE: a.onSandbox(func(ctx context.Context, c *Client, name string) error {
			if with == "" {
				return a.listShares(ctx, c, name)
			}
			res, created, err := c.Share(ctx, name, with, r)
			return printAnswer(a, res, err, func(res *apiwire.ShareResponse) error {
				st, w := a.outStyle(), a.env.Stdout
				who := res.Share.Principal
				switch {
				case created:
					fmt.Fprintf(w, "%s sandbox %s with %s as a %s\n", st.green("Shared"), st.bold(name), who, res.Share.Role)
				case res.Changed:
					fmt.Fprintf(w, "%s the role of %s on sandbox %s from %s to %s\n", st.green("Changed"), who, st.bold(name), res.PreviousRole, res.Share.Role)
				default:
					fmt.Fprintf(w, "Sandbox %s was already shared with %s as a %s\n", st.bold(name), who, res.Share.Role)
				}
				fmt.Fprintf(w, "  a %s may: %s\n", res.Share.Role, roleRights[res.Share.Role])
				a.printRevocation(name, who, res.Revoked, res.Warning)
				return nil
			})
		}, func(cmd *cobra.Command) error {
			switch {
			case with == "" && cmd.Flags().Changed("role"):
				return &Error{Code: CodeUsage, Field: "role", Hint: helpHint(cmd),
					Message: "--role needs --with: the principal to share the sandbox with"}
			case with != "":
				var err error
				if r, err = sandbox.ParseShareRole(role); err != nil {
					return &Error{Code: CodeUsage, Field: "role", Hint: helpHint(cmd),
						Message: fmt.Sprintf("--role %q is neither viewer nor developer", role)}
				}
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&with, "with", "", "the principal to share the sandbox with (an IAM principal ARN, or a local stack's principal)")
	f.StringVar(&role, "role", string(sandbox.ShareViewer), "viewer (reads) or developer (also connects, extends, maps guilds, rewinds)")
	return cmd
}

// listShares prints who a sandbox is shared with.
func (a *app) listShares(ctx context.Context, c *Client, name string) error {
	out, err := c.Shares(ctx, name)
	return printAnswer(a, out, err, func(out *apiwire.SharesResponse) error {
		st, w := a.outStyle(), a.env.Stdout
		if len(out.Shares) == 0 {
			fmt.Fprintf(w, "Sandbox %s is shared with nobody: share it with sandbox share %s --with PRINCIPAL [--role viewer|developer]\n", st.bold(name), name)
			return nil
		}
		rows := make([][]cell, 0, len(out.Shares))
		for _, s := range out.Shares {
			rows = append(rows, []cell{plain(s.Principal), plain(string(s.Role)), plain(formatTime(s.UpdatedAt, a.loc())), plain(shortOwner(s.CreatedBy))})
		}
		writeTable(w, st, "", []string{"PRINCIPAL", "ROLE", "SINCE", "SHARED BY"}, rows)
		fmt.Fprintf(w, "Sandbox %s (owner %s) is shared with %s.\n", name, shortOwner(out.Owner), plural(len(out.Shares), "principal", "principals"))
		return nil
	})
}

func (a *app) unshareCommand() *cobra.Command {
	var with string
	cmd := &cobra.Command{
		Use:   "unshare NAME --with PRINCIPAL",
		Short: "End a principal's share of a sandbox (from its next request on)",
		Long: "unshare ends a principal's share: its next request is refused. A developer who had\n" +
			"connected holds the sandbox's worker credentials and may have sessions open with them, so\n" +
			"the API also replaces the credentials and ends every session (your workers' too: they\n" +
			"connect again). Making a developer a viewer (sandbox share --role viewer) does the same.",
		Example: "  sandbox unshare alice-feature-x --with arn:aws:iam::123456789012:user/bob",
		Args:    cobra.ExactArgs(1),
		RunE: a.onSandbox(func(ctx context.Context, c *Client, name string) error {
			res, err := c.Unshare(ctx, name, with)
			return printAnswer(a, res, err, func(res *apiwire.UnshareResponse) error {
				st := a.outStyle()
				fmt.Fprintf(a.env.Stdout, "%s sandbox %s with %s (was a %s): its next request is refused\n",
					st.green("Unshared"), st.bold(name), res.Removed.Principal, res.Removed.Role)
				a.printRevocation(name, res.Removed.Principal, res.Revoked, res.Warning)
				return nil
			})
		}),
	}
	cmd.Flags().StringVar(&with, "with", "", "the principal whose share ends (required)")
	_ = cmd.MarkFlagRequired("with")
	return cmd
}

// printRevocation says what ending a developer's access did to the sandbox's credentials.
func (a *app) printRevocation(name, who string, rev *apiwire.Revocation, warning string) {
	w := a.env.Stdout
	if rev != nil {
		fmt.Fprintf(w, "  %s had connected: the worker credentials are replaced, and every session of them is ended (%s, %s);\n"+
			"  every worker connects again with sandbox connect %s\n", who,
			plural(rev.SessionsEnded.DatabaseSessions, "database session", "database sessions"),
			plural(rev.SessionsEnded.RedisConnections, "Redis connection", "Redis connections"), name)
	}
	if warning != "" {
		fmt.Fprintf(a.env.Stderr, "warning: %s\n", printable(warning))
	}
}

// sharedMark is how tables mark a sandbox shared with the caller: its role, "-" otherwise.
func sharedMark(sb *apiwire.Sandbox) string {
	if sb.SharedRole == "" {
		return "-"
	}
	return string(sb.SharedRole)
}
