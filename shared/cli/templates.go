package cli

// This file: `sandbox templates`, the templates sandboxes are created from (docs/cli.md,
// "sandbox templates"): the list everyone reads, and the admin commands that add, update and
// retire a registered template.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Templates lists the templates (GET /v1/templates); includeRetired adds the retired ones
// (admins only).
func (c *Client) Templates(ctx context.Context, includeRetired bool) (*apiwire.TemplatesResponse, error) {
	var q url.Values
	if includeRetired {
		q = url.Values{"include_retired": {"true"}}
	}
	return call[apiwire.TemplatesResponse](ctx, c, http.MethodGet, []string{"v1", "templates"}, q, nil)
}

// AddTemplate registers a template (admin).
func (c *Client) AddTemplate(ctx context.Context, in apiwire.AddTemplateRequest) (*apiwire.Template, error) {
	return call[apiwire.Template](ctx, c, http.MethodPost, []string{"v1", "admin", "templates"}, nil, in)
}

// UpdateTemplate changes a template's fields (admin).
func (c *Client) UpdateTemplate(ctx context.Context, name string, in apiwire.UpdateTemplateRequest) (*apiwire.Template, error) {
	return call[apiwire.Template](ctx, c, http.MethodPatch, []string{"v1", "admin", "templates", name}, nil, in)
}

// RetireTemplate retires a template (admin); retiring a retired one changes nothing.
func (c *Client) RetireTemplate(ctx context.Context, name string) (*apiwire.RetireTemplateResponse, error) {
	return call[apiwire.RetireTemplateResponse](ctx, c, http.MethodDelete, []string{"v1", "admin", "templates", name}, nil, nil)
}

// checkTemplate validates a template name with the API's own rule before it becomes a path.
func checkTemplate(name string) error {
	return fromDomain(sandbox.ValidateTemplateName("template", name), "template")
}

func (a *app) templatesCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "templates [--all]",
		Short: "List the templates sandboxes are created from (admins: add, update, retire them)",
		Long: "templates lists the templates `sandbox create --template NAME` takes: the default one (the\n" +
			"deployment's template schema, without rows) and those the admins registered, with whether\n" +
			"a new sandbox gets the template's rows (its seed data) and its default TTL.",
		Example: "  sandbox templates\n  sandbox templates --all --json\n" +
			"  sandbox templates add guild-xp --schema tmpl_guild_xp --copy-rows --ttl 2d --description \"a guild with XP\"",
		Args: groupArgs,
		RunE: a.withAPI(func(ctx context.Context, c *Client) error {
			out, err := c.Templates(ctx, all)
			return printAnswer(a, out, err, func(out *apiwire.TemplatesResponse) error {
				st, w := a.outStyle(), a.env.Stdout
				header := []string{"NAME", "SOURCE SCHEMA", "SEED ROWS", "DEFAULT TTL", "DESCRIPTION"}
				if all {
					header = append(header, "RETIRED")
				}
				rows := make([][]cell, 0, len(out.Templates))
				for _, t := range out.Templates {
					seed := "-"
					if t.CopyRows {
						seed = "copied"
					}
					row := []cell{{text: t.Name, paint: st.bold}, plain(t.SourceSchema), plain(seed), plain(t.DefaultTTL), plain(orDash(t.Description))}
					if all {
						retired := "-"
						if t.RetiredAt != nil {
							retired = formatTime(*t.RetiredAt, a.loc()) + " by " + shortOwner(t.RetiredBy)
						}
						row = append(row, plain(retired))
					}
					rows = append(rows, row)
				}
				writeTable(w, st, "", header, rows)
				fmt.Fprintln(w, "Create a sandbox from one with sandbox create NAME --template TEMPLATE.")
				return nil
			})
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "include the retired templates (admins only)")
	cmd.AddCommand(a.templatesAddCommand(), a.templatesUpdateCommand(), a.templatesRetireCommand())
	return cmd
}

// orDash is s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// templateFlags are the fields add and update set.
type templateFlags struct {
	description, schema string
	copyRows            bool
	ttl                 time.Duration
	defaultTTL          bool
}

func (f *templateFlags) register(cmd *cobra.Command, update bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.description, "description", "", "what the template holds, for the people who pick it")
	fl.StringVar(&f.schema, "schema", "", "the schema whose tables (and rows, with --copy-rows) every sandbox clones")
	fl.BoolVar(&f.copyRows, "copy-rows", false, "copy the schema's rows (the seed rows) into every new sandbox")
	fl.Var(durationFlag{&f.ttl, "ttl"}, "ttl", "TTL of a sandbox created from it without --ttl (default: the deployment's)")
	if update {
		fl.BoolVar(&f.defaultTTL, "default-ttl", false, "go back to the deployment's default TTL")
		cmd.MarkFlagsMutuallyExclusive("ttl", "default-ttl")
	}
}

// printTemplate is the show of add and update: the template's fields for people, under verb.
func (a *app) printTemplate(verb string) func(t *apiwire.Template) error {
	return func(t *apiwire.Template) error {
		st, w := a.outStyle(), a.env.Stdout
		fmt.Fprintf(w, "%s template %s\n", st.green(verb), st.bold(t.Name))
		seed := "no (empty tables)"
		if t.CopyRows {
			seed = "copied into every new sandbox"
		}
		fields := [][2]string{
			{"Source schema", t.SourceSchema},
			{"Seed rows", seed},
			{"Default TTL", t.DefaultTTL},
			{"Description", orDash(t.Description)},
		}
		switch {
		case t.RetiredAt != nil:
			fields = append(fields, [2]string{"Retired", formatTime(*t.RetiredAt, a.loc()) + " by " + shortOwner(t.RetiredBy)})
		case t.UpdatedAt != nil && t.CreatedAt != nil && t.UpdatedAt.After(*t.CreatedAt):
			fields = append(fields, [2]string{"Updated", formatTime(*t.UpdatedAt, a.loc()) + " by " + shortOwner(t.UpdatedBy)})
		case t.CreatedAt != nil:
			fields = append(fields, [2]string{"Created", formatTime(*t.CreatedAt, a.loc()) + " by " + shortOwner(t.CreatedBy)})
		}
		writeFields(w, st, "  ", fields)
		return nil
	}
}

func (a *app) templatesAddCommand() *cobra.Command {
	var f templateFlags
	cmd := &cobra.Command{
		Use:   "add TEMPLATE --schema SCHEMA",
		Short: "Admin: register a template",
		Args:  cobra.ExactArgs(1),
		RunE: a.onArg(checkTemplate, func(ctx context.Context, c *Client, name string) error {
			req := apiwire.AddTemplateRequest{Name: name, Description: f.description, SourceSchema: f.schema, CopyRows: f.copyRows}
			if f.ttl != 0 {
				req.DefaultTTL = sandbox.FormatDuration(f.ttl)
			}
			t, err := c.AddTemplate(ctx, req)
			return printAnswer(a, t, err, a.printTemplate("Added"))
		}),
	}
	f.register(cmd, false)
	_ = cmd.MarkFlagRequired("schema")
	return cmd
}

func (a *app) templatesUpdateCommand() *cobra.Command {
	var f templateFlags
	var req apiwire.UpdateTemplateRequest
	cmd := &cobra.Command{
		Use:   "update TEMPLATE",
		Short: "Admin: change a template (the flags given change, the others stay)",
		Example: "  sandbox templates update guild-xp --description \"XP, 10 guilds\" --default-ttl\n" +
			"  sandbox templates update guild-xp --copy-rows=false",
		Args: cobra.ExactArgs(1),
		RunE: a.onArg(checkTemplate, func(ctx context.Context, c *Client, name string) error {
			t, err := c.UpdateTemplate(ctx, name, req)
			return printAnswer(a, t, err, a.printTemplate("Updated"))
		}, func(cmd *cobra.Command) error {
			// The request, from the flags given: a usage error before any request when none is.
			req = apiwire.UpdateTemplateRequest{}
			set := cmd.Flags().Changed
			if set("description") {
				req.Description = &f.description
			}
			if set("schema") {
				req.SourceSchema = &f.schema
			}
			if set("copy-rows") {
				req.CopyRows = &f.copyRows
			}
			switch {
			case set("ttl"):
				ttl := sandbox.FormatDuration(f.ttl)
				req.DefaultTTL = &ttl
			case set("default-ttl") && f.defaultTTL:
				none := ""
				req.DefaultTTL = &none
			}
			if req == (apiwire.UpdateTemplateRequest{}) {
				return &Error{Code: CodeUsage, Hint: helpHint(cmd),
					Message: cmd.CommandPath() + " needs at least one of --description, --schema, --copy-rows, --ttl, --default-ttl"}
			}
			return nil
		}),
	}
	f.register(cmd, true)
	return cmd
}

func (a *app) templatesRetireCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "retire TEMPLATE",
		Short: "Admin: retire a template: no new sandbox from it; those made from it keep running",
		Args:  cobra.ExactArgs(1),
		RunE: a.onArg(checkTemplate, func(ctx context.Context, c *Client, name string) error {
			res, err := c.RetireTemplate(ctx, name)
			return printAnswer(a, res, err, func(res *apiwire.RetireTemplateResponse) error {
				st, w := a.outStyle(), a.env.Stdout
				if !res.Changed {
					fmt.Fprintf(w, "Template %s was retired already (%s by %s); nothing changed\n", st.bold(res.Template.Name),
						formatTime(*res.Template.RetiredAt, a.loc()), shortOwner(res.Template.RetiredBy))
					return nil
				}
				fmt.Fprintf(w, "%s template %s: no new sandbox is created from it; the sandboxes made from it keep running\n",
					st.green("Retired"), st.bold(res.Template.Name))
				return nil
			})
		}),
	}
}
