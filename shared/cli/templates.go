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
	var out apiwire.TemplatesResponse
	if _, err := c.do(ctx, http.MethodGet, []string{"v1", "templates"}, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddTemplate registers a template (admin).
func (c *Client) AddTemplate(ctx context.Context, in apiwire.AddTemplateRequest) (*apiwire.Template, error) {
	var out apiwire.Template
	if _, err := c.do(ctx, http.MethodPost, []string{"v1", "admin", "templates"}, nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateTemplate changes a template's fields (admin).
func (c *Client) UpdateTemplate(ctx context.Context, name string, in apiwire.UpdateTemplateRequest) (*apiwire.Template, error) {
	var out apiwire.Template
	if _, err := c.do(ctx, http.MethodPatch, []string{"v1", "admin", "templates", name}, nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RetireTemplate retires a template (admin); retiring a retired one changes nothing.
func (c *Client) RetireTemplate(ctx context.Context, name string) (*apiwire.RetireTemplateResponse, error) {
	var out apiwire.RetireTemplateResponse
	if _, err := c.do(ctx, http.MethodDelete, []string{"v1", "admin", "templates", name}, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.Templates(cmd.Context(), all)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, out)
			}
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
		},
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

// printTemplate writes a template's fields for people.
func (a *app) printTemplate(verb string, t *apiwire.Template) {
	st, w := a.outStyle(), a.env.Stdout
	fmt.Fprintf(w, "%s template %s\n", verb, st.bold(t.Name))
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
}

func (a *app) templatesAddCommand() *cobra.Command {
	var f templateFlags
	cmd := &cobra.Command{
		Use:   "add TEMPLATE --schema SCHEMA",
		Short: "Admin: register a template",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := checkTemplate(argv[0]); err != nil {
				return err
			}
			req := apiwire.AddTemplateRequest{Name: argv[0], Description: f.description, SourceSchema: f.schema, CopyRows: f.copyRows}
			if f.ttl != 0 {
				req.DefaultTTL = sandbox.FormatDuration(f.ttl)
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			t, err := c.AddTemplate(cmd.Context(), req)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, t)
			}
			a.printTemplate(a.outStyle().green("Added"), t)
			return nil
		},
	}
	f.register(cmd, false)
	_ = cmd.MarkFlagRequired("schema")
	return cmd
}

func (a *app) templatesUpdateCommand() *cobra.Command {
	var f templateFlags
	cmd := &cobra.Command{
		Use:   "update TEMPLATE",
		Short: "Admin: change a template (the flags given change, the others stay)",
		Example: "  sandbox templates update guild-xp --description \"XP, 10 guilds\" --default-ttl\n" +
			"  sandbox templates update guild-xp --copy-rows=false",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := checkTemplate(argv[0]); err != nil {
				return err
			}
			var req apiwire.UpdateTemplateRequest
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
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			t, err := c.UpdateTemplate(cmd.Context(), argv[0], req)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, t)
			}
			a.printTemplate(a.outStyle().green("Updated"), t)
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func (a *app) templatesRetireCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "retire TEMPLATE",
		Short: "Admin: retire a template: no new sandbox from it; those made from it keep running",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := checkTemplate(argv[0]); err != nil {
				return err
			}
			c, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.RetireTemplate(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			if a.json {
				return writeJSONDoc(a.env.Stdout, res)
			}
			st, w := a.outStyle(), a.env.Stdout
			if !res.Changed {
				fmt.Fprintf(w, "Template %s was retired already (%s by %s); nothing changed\n", st.bold(res.Template.Name),
					formatTime(*res.Template.RetiredAt, a.loc()), shortOwner(res.Template.RetiredBy))
				return nil
			}
			fmt.Fprintf(w, "%s template %s: no new sandbox is created from it; the sandboxes made from it keep running\n",
				st.green("Retired"), st.bold(res.Template.Name))
			return nil
		},
	}
}
