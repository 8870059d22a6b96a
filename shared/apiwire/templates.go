package apiwire

import "time"

// Template is a template sandboxes are created from (docs/api.md, "Templates").
type Template struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// SourceSchema is the schema whose tables every sandbox clones.
	SourceSchema string `json:"source_schema"`
	// CopyRows: the source tables' rows (the seed rows) are copied into every new sandbox.
	CopyRows bool `json:"copy_rows"`
	// DefaultTTL is the TTL of a sandbox created from it without one (a duration such as
	// "2d"); DefaultTTLSeconds is the same in seconds.
	DefaultTTL        string `json:"default_ttl"`
	DefaultTTLSeconds int64  `json:"default_ttl_seconds"`
	// Builtin marks the template "default": the deployment's SANDBOX_TEMPLATE_SCHEMA,
	// configured, not registered; the fields below are absent for it.
	Builtin   bool       `json:"builtin"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	UpdatedBy string     `json:"updated_by,omitempty"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	RetiredBy string     `json:"retired_by,omitempty"`
}

// TemplatesResponse is the answer of GET /v1/templates.
type TemplatesResponse struct {
	Templates []Template `json:"templates"`
}

// AddTemplateRequest is the body of POST /v1/admin/templates.
type AddTemplateRequest struct {
	Name         string `json:"name"`
	Description  string `json:"description,omitempty"`
	SourceSchema string `json:"source_schema"`
	CopyRows     bool   `json:"copy_rows,omitempty"`
	// DefaultTTL absent: the deployment's SANDBOX_DEFAULT_TTL.
	DefaultTTL string `json:"default_ttl,omitempty"`
}

// UpdateTemplateRequest is the body of PATCH /v1/admin/templates/{template}: the fields
// given change, the others stay. DefaultTTL "" goes back to the deployment's default.
type UpdateTemplateRequest struct {
	Description  *string `json:"description,omitempty"`
	SourceSchema *string `json:"source_schema,omitempty"`
	CopyRows     *bool   `json:"copy_rows,omitempty"`
	DefaultTTL   *string `json:"default_ttl,omitempty"`
}

// RetireTemplateResponse is the answer of DELETE /v1/admin/templates/{template}.
type RetireTemplateResponse struct {
	Template Template `json:"template"`
	// Changed is false when the template was retired already.
	Changed bool `json:"changed"`
}
