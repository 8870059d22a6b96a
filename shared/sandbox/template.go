package sandbox

import (
	"errors"
	"regexp"
	"strings"
	"time"
)

// DefaultTemplate names the template a sandbox comes from when its creator names none: the
// deployment's template schema (SANDBOX_TEMPLATE_SCHEMA), without rows. The name is reserved:
// no registered template may take it.
const DefaultTemplate = "default"

// TemplateNamePattern is the rule a template name follows (the rule of a sandbox name).
const TemplateNamePattern = NamePattern

// TemplateDescriptionMax bounds a template's description, in characters.
const TemplateDescriptionMax = 256

// Template is a named template sandboxes are created from: a source schema whose tables every
// sandbox clones, with their rows when CopyRows is set (docs/architecture.md, "Templates").
type Template struct {
	Name         string
	Description  string
	SourceSchema string
	// CopyRows copies the source tables' rows (the seed rows) into every new sandbox.
	CopyRows bool
	// DefaultTTL is the TTL of a sandbox created from it without one; zero: the
	// deployment's SANDBOX_DEFAULT_TTL.
	DefaultTTL time.Duration
	// Builtin marks DefaultTemplate, which is the configuration's and not registered.
	Builtin   bool
	CreatedAt time.Time
	CreatedBy string
	UpdatedAt time.Time
	UpdatedBy string
	// RetiredAt is set once the template is retired: no sandbox is created from it any more.
	RetiredAt *time.Time
	RetiredBy string
}

// Retired reports whether the template may no longer be used.
func (t *Template) Retired() bool { return t.RetiredAt != nil }

// TemplateSource is what provisioning clones a sandbox from.
type TemplateSource struct {
	Schema   string
	CopyRows bool
}

// ValidateTemplateName checks the name of a template to create from or to register; field
// names the input it came from ("template" on a create, "name" on the admin routes).
func ValidateTemplateName(field, name string) error {
	if !nameRE.MatchString(name) {
		return InvalidField(field, "template name %q must match %s (3-32 characters: lowercase letters, digits and '-', starting with a letter)",
			truncate(name, 40), TemplateNamePattern)
	}
	return nil
}

// schemaRE is what a template's source schema may be named: it reaches SQL quoted, but a
// plain name keeps logs and docs unambiguous.
var schemaRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ValidateTemplateSchema checks the name of a schema sandboxes are cloned from (a registered
// template's, or SANDBOX_TEMPLATE_SCHEMA): a plain lowercase identifier that is neither a
// sandbox's schema (sb_...: a sandbox's code defines what is in it), nor the control plane's,
// nor PostgreSQL's own. That the schema exists and that no sandbox owns anything in it is
// checked against the catalog when it is registered and again at every creation
// (provision.CheckTemplateSource).
func ValidateTemplateSchema(field, schema string) error {
	switch {
	case !schemaRE.MatchString(schema):
		return InvalidField(field, "schema %q must be a plain lowercase identifier (%s)", truncate(schema, 70), schemaRE)
	case strings.HasPrefix(schema, "sb_"):
		return InvalidField(field, "schema %q is named like a sandbox's: a sandbox's code defines what is in it, so it can never be a template", schema)
	case schema == "sandbox_control":
		return InvalidField(field, "schema sandbox_control is the control plane's, never a template")
	case strings.HasPrefix(schema, "pg_") || schema == "information_schema":
		return InvalidField(field, "schema %q is PostgreSQL's own, never a template", schema)
	}
	return nil
}

// ValidateTemplateDescription checks a template's description: printable, at most
// TemplateDescriptionMax characters.
func ValidateTemplateDescription(field, d string) error {
	if len([]rune(d)) > TemplateDescriptionMax || !printable(d) {
		return InvalidField(field, "description must be at most %d printable characters", TemplateDescriptionMax)
	}
	return nil
}

// ValidateTemplateTTL checks a template's default TTL against the limits: zero (the
// deployment's default) or a TTL a create would accept.
func (l Limits) ValidateTemplateTTL(field string, ttl time.Duration) error {
	if ttl == 0 {
		return nil
	}
	if _, err := l.ResolveTTL(ttl); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return &Error{Code: e.Code, Field: field, Message: "default " + e.Message}
		}
		return err
	}
	return nil
}
