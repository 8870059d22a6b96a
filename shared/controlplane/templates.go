package controlplane

// This file: the template registry (sandbox_control.templates): the named templates admins
// add, update and retire, each change audited in its transaction, and the template a creation
// uses.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// TemplateProvisioner provisions a sandbox from a registered template's source schema,
// copying its rows when the template says so, and returns how many rows it copied
// (provision.Provisioner). A Provisioner without it can create sandboxes from the default
// template only.
type TemplateProvisioner interface {
	ProvisionFrom(ctx context.Context, id string, src sandbox.TemplateSource) (rows int64, err error)
}

const templateColumns = `name, description, source_schema, copy_rows, coalesce(default_ttl_seconds, 0),
	created_at, created_by, updated_at, updated_by, retired_at, coalesce(retired_by, '')`

func scanTemplate(row pgx.Row) (sandbox.Template, error) {
	var t sandbox.Template
	var ttl int64
	err := row.Scan(&t.Name, &t.Description, &t.SourceSchema, &t.CopyRows, &ttl,
		&t.CreatedAt, &t.CreatedBy, &t.UpdatedAt, &t.UpdatedBy, &t.RetiredAt, &t.RetiredBy)
	t.DefaultTTL = time.Duration(ttl) * time.Second
	return t, err
}

// TemplateInput is a template to register.
type TemplateInput struct {
	Name         string
	Description  string
	SourceSchema string
	CopyRows     bool
	// DefaultTTL zero: the deployment's SANDBOX_DEFAULT_TTL.
	DefaultTTL time.Duration
}

// TemplateUpdate changes some of a template's fields: nil leaves a field as it is.
type TemplateUpdate struct {
	Description  *string
	SourceSchema *string
	CopyRows     *bool
	// DefaultTTL zero: the deployment's SANDBOX_DEFAULT_TTL.
	DefaultTTL *time.Duration
}

// validateTemplate checks a template's fields; a source schema's catalog checks are
// provision's (CheckTemplateSource), which the API runs before it registers one.
func (m *Manager) validateTemplate(t sandbox.Template) error {
	if err := sandbox.ValidateTemplateName("name", t.Name); err != nil {
		return err
	}
	if t.Name == sandbox.DefaultTemplate {
		return sandbox.InvalidField("name", "the template %q is the deployment's SANDBOX_TEMPLATE_SCHEMA: it is configured, not registered", sandbox.DefaultTemplate)
	}
	if err := sandbox.ValidateTemplateDescription("description", t.Description); err != nil {
		return err
	}
	if err := sandbox.ValidateTemplateSchema("source_schema", t.SourceSchema); err != nil {
		return err
	}
	return m.limits.ValidateTemplateTTL("default_ttl", t.DefaultTTL)
}

// ttlSeconds is a template's default TTL as stored: NULL for the deployment's default.
func ttlSeconds(d time.Duration) any {
	if d == 0 {
		return nil
	}
	return int64(d / time.Second)
}

// templateDetails is what the audit log records of a template.
func templateDetails(t sandbox.Template) map[string]any {
	return map[string]any{"name": t.Name, "description": t.Description, "source_schema": t.SourceSchema,
		"copy_rows": t.CopyRows, "default_ttl_seconds": int64(t.DefaultTTL / time.Second)}
}

// AddTemplate registers a template, with its audit entry. A name taken, retired templates'
// included (names are never reused), is name_taken.
func (m *Manager) AddTemplate(ctx context.Context, actor string, in TemplateInput) (_ sandbox.Template, err error) {
	defer withOp(&err, "add template %q", in.Name)
	t := sandbox.Template{Name: in.Name, Description: in.Description, SourceSchema: in.SourceSchema,
		CopyRows: in.CopyRows, DefaultTTL: in.DefaultTTL}
	if err := m.validateTemplate(t); err != nil {
		return sandbox.Template{}, err
	}
	now := m.now().UTC()
	err = pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		var err error
		t, err = scanTemplate(tx.QueryRow(ctx, `
			INSERT INTO sandbox_control.templates (name, description, source_schema, copy_rows, default_ttl_seconds,
				created_at, created_by, updated_at, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $7)
			RETURNING `+templateColumns,
			t.Name, t.Description, t.SourceSchema, t.CopyRows, ttlSeconds(t.DefaultTTL), now, actor))
		if c, ok := uniqueViolation(err); ok && c == "templates_pkey" {
			return sandbox.Errorf(sandbox.CodeNameTaken, "a template named %q exists already (a retired one keeps its name)", in.Name)
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, ActionTemplateAdd, "", templateDetails(t))
	})
	return t, err
}

// UpdateTemplate changes a template that is not retired, with an audit entry holding the
// template before and after. A retired template is invalid_transition; none, not_found.
func (m *Manager) UpdateTemplate(ctx context.Context, actor, name string, in TemplateUpdate) (_ sandbox.Template, err error) {
	defer withOp(&err, "update template %q", name)
	return m.changeTemplate(ctx, name, func(tx pgx.Tx, before sandbox.Template) (sandbox.Template, error) {
		if before.Retired() {
			return sandbox.Template{}, sandbox.Errorf(sandbox.CodeInvalidTransition, "template %q is retired: it cannot change any more", name)
		}
		after := before
		if in.Description != nil {
			after.Description = *in.Description
		}
		if in.SourceSchema != nil {
			after.SourceSchema = *in.SourceSchema
		}
		if in.CopyRows != nil {
			after.CopyRows = *in.CopyRows
		}
		if in.DefaultTTL != nil {
			after.DefaultTTL = *in.DefaultTTL
		}
		if err := m.validateTemplate(after); err != nil {
			return sandbox.Template{}, err
		}
		out, err := scanTemplate(tx.QueryRow(ctx, `
			UPDATE sandbox_control.templates SET description = $2, source_schema = $3, copy_rows = $4,
				default_ttl_seconds = $5, updated_at = $6, updated_by = $7
			WHERE name = $1 RETURNING `+templateColumns,
			name, after.Description, after.SourceSchema, after.CopyRows, ttlSeconds(after.DefaultTTL), m.now().UTC(), actor))
		if err != nil {
			return out, err
		}
		return out, audit(ctx, tx, actor, ActionTemplateUpdate, "", map[string]any{
			"name": name, "before": templateDetails(before), "after": templateDetails(out)})
	})
}

// RetireTemplate retires a template: no sandbox is created from it any more; the sandboxes
// made from it keep running. Retiring a retired template changes nothing (changed false).
func (m *Manager) RetireTemplate(ctx context.Context, actor, name string) (_ sandbox.Template, changed bool, err error) {
	defer withOp(&err, "retire template %q", name)
	out, err := m.changeTemplate(ctx, name, func(tx pgx.Tx, before sandbox.Template) (sandbox.Template, error) {
		if before.Retired() {
			return before, nil
		}
		out, err := scanTemplate(tx.QueryRow(ctx, `
			UPDATE sandbox_control.templates SET retired_at = $2, retired_by = $3 WHERE name = $1
			RETURNING `+templateColumns, name, m.now().UTC(), actor))
		if err != nil {
			return out, err
		}
		changed = true
		return out, audit(ctx, tx, actor, ActionTemplateRetire, "", templateDetails(out))
	})
	return out, changed, err
}

// changeTemplate validates the name, then, in one transaction, locks the template (lockTemplate)
// and hands it to change, whose result it returns once committed.
func (m *Manager) changeTemplate(ctx context.Context, name string, change func(tx pgx.Tx, before sandbox.Template) (sandbox.Template, error)) (sandbox.Template, error) {
	if err := sandbox.ValidateTemplateName("name", name); err != nil {
		return sandbox.Template{}, err
	}
	var out sandbox.Template
	err := pgx.BeginFunc(ctx, m.db, func(tx pgx.Tx) error {
		before, err := m.lockTemplate(ctx, tx, name)
		if err != nil {
			return err
		}
		out, err = change(tx, before)
		return err
	})
	return out, err
}

// lockTemplate reads a template for update; the default template and unknown names are
// refused.
func (m *Manager) lockTemplate(ctx context.Context, tx pgx.Tx, name string) (sandbox.Template, error) {
	if name == sandbox.DefaultTemplate {
		return sandbox.Template{}, sandbox.InvalidField("name", "the template %q is the deployment's SANDBOX_TEMPLATE_SCHEMA: change the configuration instead", name)
	}
	t, err := scanTemplate(tx.QueryRow(ctx, `SELECT `+templateColumns+` FROM sandbox_control.templates WHERE name = $1 FOR UPDATE`, name))
	if isNoRows(err) {
		return t, sandbox.Errorf(sandbox.CodeNotFound, "no template named %q", name)
	}
	return t, err
}

// Templates lists the registered templates by name, the retired ones only when asked. The
// default template is not among them: it is the configuration's.
func (m *Manager) Templates(ctx context.Context, includeRetired bool) (_ []sandbox.Template, err error) {
	defer withOp(&err, "list templates")
	return queryList(ctx, m.db, func(r pgx.CollectableRow) (sandbox.Template, error) { return scanTemplate(r) },
		`SELECT `+templateColumns+` FROM sandbox_control.templates WHERE $1 OR retired_at IS NULL ORDER BY name`,
		includeRetired)
}

// templateFor returns the template a creation names: the default one for "" or
// DefaultTemplate, otherwise a registered template that is not retired (invalid_input,
// field template, for any other name).
func (m *Manager) templateFor(ctx context.Context, name string) (sandbox.Template, error) {
	if name == "" || name == sandbox.DefaultTemplate {
		return sandbox.Template{Name: sandbox.DefaultTemplate, Builtin: true}, nil
	}
	if err := sandbox.ValidateTemplateName("template", name); err != nil {
		return sandbox.Template{}, err
	}
	t, err := scanTemplate(m.db.QueryRow(ctx, `SELECT `+templateColumns+` FROM sandbox_control.templates WHERE name = $1`, name))
	switch {
	case isNoRows(err):
		return t, sandbox.InvalidField("template", "no template named %q (sandbox templates lists them)", name)
	case err != nil:
		return t, err
	case t.Retired():
		return t, sandbox.InvalidField("template", "template %q is retired since %s", name, t.RetiredAt.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// provisionFrom provisions the sandbox from its template, and returns the rows it copied.
func (m *Manager) provisionFrom(ctx context.Context, id string, t sandbox.Template) (int64, error) {
	if t.Builtin {
		return 0, m.provisioner.Provision(ctx, id)
	}
	tp, ok := m.provisioner.(TemplateProvisioner)
	if !ok {
		return 0, fmt.Errorf("the provisioner cannot clone from template %q", t.Name)
	}
	return tp.ProvisionFrom(ctx, id, sandbox.TemplateSource{Schema: t.SourceSchema, CopyRows: t.CopyRows})
}
