package api

// This file: the template routes (docs/api.md, "Templates"): the list anyone authenticated
// reads, and the registry the admins manage. A registered template's source schema passes
// provision's checks before it is stored (Resources.CheckTemplateSource), and again at every
// creation from it.

import (
	"net/http"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// templateView is a template as the API shows it; the default template's TTL is the
// deployment's.
func (h *Handler) templateView(t sandbox.Template) apiwire.Template {
	ttl := t.DefaultTTL
	if ttl == 0 {
		ttl = h.deps.Sandboxes.Limits().DefaultTTL
	}
	v := apiwire.Template{
		Name: t.Name, Description: t.Description, SourceSchema: t.SourceSchema, CopyRows: t.CopyRows,
		DefaultTTL: sandbox.FormatDuration(ttl), DefaultTTLSeconds: int64(ttl / time.Second), Builtin: t.Builtin,
		CreatedBy: t.CreatedBy, UpdatedBy: t.UpdatedBy, RetiredBy: t.RetiredBy,
	}
	for _, at := range []struct {
		from time.Time
		to   **time.Time
	}{{t.CreatedAt, &v.CreatedAt}, {t.UpdatedAt, &v.UpdatedAt}} {
		if !at.from.IsZero() {
			u := at.from.UTC()
			*at.to = &u
		}
	}
	if t.RetiredAt != nil {
		u := t.RetiredAt.UTC()
		v.RetiredAt = &u
	}
	return v
}

// defaultTemplate is the template "default": the configured schema, without rows.
func (h *Handler) defaultTemplate() sandbox.Template {
	return sandbox.Template{
		Name: sandbox.DefaultTemplate, Builtin: true, SourceSchema: h.deps.Resources.TemplateSchema(),
		Description: "the deployment's template schema (SANDBOX_TEMPLATE_SCHEMA), without rows",
	}
}

// listTemplates answers GET /v1/templates: the default template, then the registered ones
// that are not retired; include_retired=true (admins only) adds the retired ones.
func (h *Handler) listTemplates(w http.ResponseWriter, r *http.Request, c caller) error {
	if err := noRequestBody(r); err != nil {
		return err
	}
	q, err := parseQuery(r, "include_retired")
	if err != nil {
		return err
	}
	retired, err := q.boolean("include_retired")
	if err != nil {
		return err
	}
	if retired && !c.admin {
		return sandbox.Errorf(sandbox.CodeForbidden, "listing retired templates is for admins only")
	}
	registered, err := h.deps.Sandboxes.Templates(r.Context(), retired)
	if err != nil {
		return err
	}
	out := apiwire.TemplatesResponse{Templates: []apiwire.Template{h.templateView(h.defaultTemplate())}}
	for _, t := range registered {
		out.Templates = append(out.Templates, h.templateView(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// templateTTL parses a template's default TTL ("" is the deployment's default).
func templateTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return parseDuration("default_ttl", s)
}

// addTemplate answers POST /v1/admin/templates.
func (h *Handler) addTemplate(w http.ResponseWriter, r *http.Request, c caller) error {
	var req apiwire.AddTemplateRequest
	if _, err := decodeRequest(r, &req); err != nil {
		return err
	}
	switch {
	case req.Name == "":
		return sandbox.InvalidField("name", "\"name\" is required")
	case req.SourceSchema == "":
		return sandbox.InvalidField("source_schema", "\"source_schema\" is required")
	}
	ttl, err := templateTTL(req.DefaultTTL)
	if err != nil {
		return err
	}
	src, err := h.deps.Resources.CheckTemplateSource(r.Context(), req.SourceSchema)
	if err != nil {
		return err
	}
	if err := checkTemplateSize(src, req.CopyRows); err != nil {
		return err
	}
	t, err := h.deps.Sandboxes.AddTemplate(r.Context(), c.principal, controlplane.TemplateInput{
		Name: req.Name, Description: req.Description, SourceSchema: req.SourceSchema, CopyRows: req.CopyRows, DefaultTTL: ttl,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/admin/templates/"+t.Name)
	writeJSON(w, http.StatusCreated, h.templateView(t))
	return nil
}

// updateTemplate answers PATCH /v1/admin/templates/{template}.
func (h *Handler) updateTemplate(w http.ResponseWriter, r *http.Request, c caller) error {
	name, err := templatePath(r)
	if err != nil {
		return err
	}
	var req apiwire.UpdateTemplateRequest
	if _, err := decodeRequest(r, &req); err != nil {
		return err
	}
	if req == (apiwire.UpdateTemplateRequest{}) {
		return sandbox.InvalidField("body", "give at least one of description, source_schema, copy_rows, default_ttl")
	}
	in := controlplane.TemplateUpdate{Description: req.Description, SourceSchema: req.SourceSchema, CopyRows: req.CopyRows}
	if req.DefaultTTL != nil {
		ttl, err := templateTTL(*req.DefaultTTL)
		if err != nil {
			return err
		}
		in.DefaultTTL = &ttl
	}
	if req.SourceSchema != nil || (req.CopyRows != nil && *req.CopyRows) {
		if err := h.checkTemplateChange(r, name, req); err != nil {
			return err
		}
	}
	t, err := h.deps.Sandboxes.UpdateTemplate(r.Context(), c.principal, name, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.templateView(t))
	return nil
}

// templatePath is the template a route's path names: a registered one's name, never the
// default template, which is the configuration's.
func templatePath(r *http.Request) (string, error) {
	name := r.PathValue("template")
	if err := sandbox.ValidateTemplateName("template", name); err != nil {
		return "", err
	}
	if name == sandbox.DefaultTemplate {
		return "", sandbox.InvalidField("template", "the template %q is the deployment's SANDBOX_TEMPLATE_SCHEMA: change the configuration instead", name)
	}
	return name, nil
}

// retireTemplate answers DELETE /v1/admin/templates/{template}: idempotent.
func (h *Handler) retireTemplate(w http.ResponseWriter, r *http.Request, c caller) error {
	name, err := templatePath(r)
	if err != nil {
		return err
	}
	if _, err := decodeRequest(r, nil); err != nil {
		return err
	}
	t, changed, err := h.deps.Sandboxes.RetireTemplate(r.Context(), c.principal, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiwire.RetireTemplateResponse{Template: h.templateView(t), Changed: changed})
	return nil
}

// checkTemplateChange checks the template an update would leave: its source schema
// (CheckTemplateSource, when the update names one) and its size against the disk share, when
// it would copy rows. A template that is not registered is left to UpdateTemplate's answer.
func (h *Handler) checkTemplateChange(r *http.Request, name string, req apiwire.UpdateTemplateRequest) error {
	schema, copyRows := "", false
	all, err := h.deps.Sandboxes.Templates(r.Context(), true)
	if err != nil {
		return err
	}
	for _, t := range all {
		if t.Name == name {
			schema, copyRows = t.SourceSchema, t.CopyRows
		}
	}
	if req.SourceSchema != nil {
		schema = *req.SourceSchema
	}
	if req.CopyRows != nil {
		copyRows = *req.CopyRows
	}
	if schema == "" {
		return nil
	}
	src, err := h.deps.Resources.CheckTemplateSource(r.Context(), schema)
	if err != nil {
		return err
	}
	return checkTemplateSize(src, copyRows)
}

// checkTemplateSize refuses a template that copies the rows of a source schema larger than
// the disk a sandbox's schema may take (sandbox.SchemaSizeLimit): every sandbox made from it
// would start above its share, and the next cleanup run would take its role's password away.
func checkTemplateSize(src provision.TemplateSource, copyRows bool) error {
	if copyRows && src.Bytes > sandbox.SchemaSizeLimit {
		return sandbox.InvalidField("copy_rows",
			"template schema %q takes %d bytes: a sandbox that copies its rows would start above the %d MiB a sandbox's schema may take, and the cleanup would take its role's password away at once; keep fewer rows in it, or register it without copy_rows",
			src.Schema, src.Bytes, sandbox.SchemaSizeLimit>>20)
	}
	return nil
}
