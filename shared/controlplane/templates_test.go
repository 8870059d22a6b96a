package controlplane_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const templateAdmin = "arn:aws:iam::123456789012:user/ops"

// recordingProvisioner records what each creation was provisioned from.
type recordingProvisioner struct {
	mu   sync.Mutex
	from map[string]sandbox.TemplateSource
}

func (p *recordingProvisioner) Provision(_ context.Context, id string) error {
	_, err := p.ProvisionFrom(context.Background(), id, sandbox.TemplateSource{Schema: "configured"})
	return err
}

func (p *recordingProvisioner) ProvisionFrom(_ context.Context, id string, src sandbox.TemplateSource) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.from == nil {
		p.from = map[string]sandbox.TemplateSource{}
	}
	p.from[id] = src
	if src.CopyRows {
		return 42, nil
	}
	return 0, nil
}

func wantCode(t *testing.T, what string, err error, code sandbox.Code, field string) {
	t.Helper()
	var e *sandbox.Error
	if !errors.As(err, &e) || e.Code != code || e.Field != field {
		t.Errorf("%s: %v, want %s (field %q)", what, err, code, field)
	}
}

// The registry: add, update and retire, each with its audit entry in its transaction; names
// follow the sandbox name rule, "default" is the configuration's, a name is never reused, a
// retired template changes no more, and every field is checked.
func TestTemplateRegistry(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{})
	ctx := context.Background()

	added, err := m.AddTemplate(ctx, templateAdmin, controlplane.TemplateInput{
		Name: "guild-xp", Description: "guilds with XP", SourceSchema: "tmpl_xp", CopyRows: true, DefaultTTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if added.Name != "guild-xp" || !added.CopyRows || added.DefaultTTL != 48*time.Hour || added.CreatedBy != templateAdmin ||
		added.UpdatedBy != templateAdmin || added.Retired() || added.CreatedAt.IsZero() {
		t.Errorf("added %+v", added)
	}
	_, err = m.AddTemplate(ctx, templateAdmin, controlplane.TemplateInput{Name: "guild-xp", SourceSchema: "tmpl_other"})
	wantCode(t, "a name taken", err, sandbox.CodeNameTaken, "")

	for _, c := range []struct {
		what, field string
		in          controlplane.TemplateInput
	}{
		{"the default's name", "name", controlplane.TemplateInput{Name: sandbox.DefaultTemplate, SourceSchema: "tmpl_x"}},
		{"a bad name", "name", controlplane.TemplateInput{Name: "Guild_XP", SourceSchema: "tmpl_x"}},
		{"a sandbox's schema", "source_schema", controlplane.TemplateInput{Name: "evil-one", SourceSchema: "sb_abcdefghijklmnop"}},
		{"the control plane", "source_schema", controlplane.TemplateInput{Name: "evil-two", SourceSchema: "sandbox_control"}},
		{"a catalog", "source_schema", controlplane.TemplateInput{Name: "evil-three", SourceSchema: "pg_catalog"}},
		{"a TTL past the maximum", "default_ttl", controlplane.TemplateInput{Name: "too-long", SourceSchema: "tmpl_x", DefaultTTL: 30 * 24 * time.Hour}},
		{"a TTL under the minimum", "default_ttl", controlplane.TemplateInput{Name: "too-short", SourceSchema: "tmpl_x", DefaultTTL: time.Minute}},
		{"a long description", "description", controlplane.TemplateInput{Name: "wordy", SourceSchema: "tmpl_x", Description: strings.Repeat("x", 300)}},
	} {
		_, err := m.AddTemplate(ctx, templateAdmin, c.in)
		wantCode(t, c.what, err, sandbox.CodeInvalidInput, c.field)
	}
	// The database holds the schema rule too, whoever writes the row.
	if _, err := pool.Exec(ctx, `INSERT INTO sandbox_control.templates (name, source_schema, created_by, updated_by)
		VALUES ('sneaky', 'sb_abcdefghijklmnop', 'x', 'x')`); err == nil {
		t.Error("the templates table takes a sandbox's schema as a source")
	}

	desc, ttl := "guilds with XP, more", time.Duration(0)
	updated, err := m.UpdateTemplate(ctx, "arn:aws:iam::123456789012:user/ops2", "guild-xp",
		controlplane.TemplateUpdate{Description: &desc, DefaultTTL: &ttl})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Description != desc || updated.DefaultTTL != 0 || updated.SourceSchema != "tmpl_xp" || !updated.CopyRows ||
		updated.CreatedBy != templateAdmin || updated.UpdatedBy != "arn:aws:iam::123456789012:user/ops2" {
		t.Errorf("updated %+v", updated)
	}
	bad := "sb_abcdefghijklmnop"
	_, err = m.UpdateTemplate(ctx, templateAdmin, "guild-xp", controlplane.TemplateUpdate{SourceSchema: &bad})
	wantCode(t, "update to a sandbox's schema", err, sandbox.CodeInvalidInput, "source_schema")
	_, err = m.UpdateTemplate(ctx, templateAdmin, "no-such", controlplane.TemplateUpdate{Description: &desc})
	wantCode(t, "update of a template that does not exist", err, sandbox.CodeNotFound, "")
	_, err = m.UpdateTemplate(ctx, templateAdmin, sandbox.DefaultTemplate, controlplane.TemplateUpdate{Description: &desc})
	wantCode(t, "update of the default", err, sandbox.CodeInvalidInput, "name")

	retired, changed, err := m.RetireTemplate(ctx, templateAdmin, "guild-xp")
	if err != nil || !changed || !retired.Retired() || retired.RetiredBy != templateAdmin {
		t.Fatalf("retire: %+v %v %v", retired, changed, err)
	}
	again, changed, err := m.RetireTemplate(ctx, templateAdmin, "guild-xp")
	if err != nil || changed || !again.RetiredAt.Equal(*retired.RetiredAt) {
		t.Errorf("retire again: %+v %v %v", again, changed, err)
	}
	_, err = m.UpdateTemplate(ctx, templateAdmin, "guild-xp", controlplane.TemplateUpdate{Description: &desc})
	wantCode(t, "update of a retired template", err, sandbox.CodeInvalidTransition, "")
	_, err = m.AddTemplate(ctx, templateAdmin, controlplane.TemplateInput{Name: "guild-xp", SourceSchema: "tmpl_xp"})
	wantCode(t, "the name of a retired template", err, sandbox.CodeNameTaken, "")
	_, _, err = m.RetireTemplate(ctx, templateAdmin, "no-such")
	wantCode(t, "retire of a template that does not exist", err, sandbox.CodeNotFound, "")

	active, err := m.Templates(ctx, false)
	if err != nil || len(active) != 0 {
		t.Errorf("active templates: %+v %v", active, err)
	}
	all, err := m.Templates(ctx, true)
	if err != nil || len(all) != 1 || all[0].Name != "guild-xp" {
		t.Errorf("all templates: %+v %v", all, err)
	}

	// One audit entry per change, none for refusals or the retire that changed nothing.
	rows, err := pool.Query(ctx, `SELECT action, actor, details FROM sandbox_control.audit_log
		WHERE action LIKE 'template.%' AND sandbox_id IS NULL ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		action, actor string
		details       map[string]any
	}
	var entries []entry
	for rows.Next() {
		var e entry
		var raw []byte
		if err := rows.Scan(&e.action, &e.actor, &raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &e.details); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	if len(entries) != 3 || entries[0].action != controlplane.ActionTemplateAdd || entries[1].action != controlplane.ActionTemplateUpdate ||
		entries[2].action != controlplane.ActionTemplateRetire || entries[1].actor != "arn:aws:iam::123456789012:user/ops2" {
		t.Fatalf("audit entries: %+v", entries)
	}
	if entries[0].details["source_schema"] != "tmpl_xp" || entries[0].details["copy_rows"] != true ||
		entries[1].details["before"].(map[string]any)["description"] != "guilds with XP" ||
		entries[1].details["after"].(map[string]any)["description"] != desc {
		t.Errorf("audit details: %+v", entries)
	}
}

// A creation names its template: the sandbox records it, is provisioned from its source
// schema (with its rows when it says so), takes its default TTL unless given one, and its
// running entry says how many rows were copied. No template is the configured one; an
// unknown or retired template is refused before anything is recorded.
func TestCreateFromTemplate(t *testing.T) {
	prov := &recordingProvisioner{}
	m, pool := newManager(t, controlplane.Options{Provisioner: prov})
	ctx := context.Background()
	if _, err := m.AddTemplate(ctx, templateAdmin, controlplane.TemplateInput{
		Name: "guild-xp", SourceSchema: "tmpl_xp", CopyRows: true, DefaultTTL: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}

	plain := mustCreate(t, m, controlplane.CreateInput{Name: "plain", Owner: alice})
	if plain.Template != sandbox.DefaultTemplate || plain.ExpiresAt.Sub(plain.CreatedAt) != 24*time.Hour ||
		prov.from[plain.ID] != (sandbox.TemplateSource{Schema: "configured"}) {
		t.Errorf("without a template: %+v from %+v", plain, prov.from[plain.ID])
	}
	seeded := mustCreate(t, m, controlplane.CreateInput{Name: "seeded", Owner: alice, Template: "guild-xp"})
	if seeded.Template != "guild-xp" || seeded.ExpiresAt.Sub(seeded.CreatedAt) != 48*time.Hour ||
		prov.from[seeded.ID] != (sandbox.TemplateSource{Schema: "tmpl_xp", CopyRows: true}) {
		t.Errorf("from guild-xp: %+v from %+v", seeded, prov.from[seeded.ID])
	}
	short := mustCreate(t, m, controlplane.CreateInput{Name: "short", Owner: alice, Template: "guild-xp", TTL: 2 * time.Hour})
	if short.ExpiresAt.Sub(short.CreatedAt) != 2*time.Hour {
		t.Errorf("--ttl wins over the template's: %s", short.ExpiresAt.Sub(short.CreatedAt))
	}
	if got, _ := m.Get(ctx, seeded.ID); got.Template != "guild-xp" {
		t.Errorf("the stored sandbox says template %q", got.Template)
	}
	var details []byte
	if err := pool.QueryRow(ctx, `SELECT details FROM sandbox_control.audit_log WHERE sandbox_id = $1 AND action = $2`,
		seeded.ID, controlplane.ActionRunning).Scan(&details); err != nil {
		t.Fatal(err)
	}
	var running map[string]any
	if err := json.Unmarshal(details, &running); err != nil || running["template"] != "guild-xp" || running["seed_rows"] != float64(42) {
		t.Errorf("running entry: %s %v", details, err)
	}

	before := count(t, pool, `SELECT count(*) FROM sandbox_control.sandboxes`)
	_, err := m.Create(ctx, alice, controlplane.CreateInput{Name: "unknown", Owner: alice, Template: "no-such"})
	wantCode(t, "an unknown template", err, sandbox.CodeInvalidInput, "template")
	if _, _, err := m.RetireTemplate(ctx, templateAdmin, "guild-xp"); err != nil {
		t.Fatal(err)
	}
	_, err = m.Create(ctx, alice, controlplane.CreateInput{Name: "retired", Owner: alice, Template: "guild-xp"})
	wantCode(t, "a retired template", err, sandbox.CodeInvalidInput, "template")
	if after := count(t, pool, `SELECT count(*) FROM sandbox_control.sandboxes`); after != before {
		t.Errorf("refused creations recorded %d sandboxes", after-before)
	}
	// The sandboxes made from it live on.
	if got, err := m.Get(ctx, seeded.ID); err != nil || got.Status != sandbox.StatusRunning {
		t.Errorf("a sandbox of the retired template: %+v %v", got, err)
	}
}
