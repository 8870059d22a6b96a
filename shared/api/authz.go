package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The API's one authorization mechanism (docs/api.md, "Identity and authorization"): every
// route declares the least a caller must be to use it, in routeAccess next to the route
// table, and the handler enforces it. A route of the admins is checked before it runs; a
// sandbox route (one with {name}) once the named sandbox is known, in address, where the
// caller's role on it is read: its owner, a developer or a viewer it is shared with, or
// nothing. An admin passes every route. One rule rests on data the route cannot see before
// it writes: mapping a guild parked by another owner's sandbox (create, addGuild) needs an
// admin, and the control plane decides it inside the mapping's transaction, told c.admin.

// access is the least a caller must be to use a route. The sandbox roles are ordered:
// viewer < developer < owner, and an admin is above them all.
type access int

const (
	// accessUndeclared is a route that declared nothing: New refuses it, and address refuses
	// every request of a sandbox route without a sandbox role.
	accessUndeclared access = iota
	// accessAnyCaller is every authenticated caller; the route narrows what it answers
	// itself (list: another owner's sandboxes need an admin; release: the guild's former
	// owner or an admin).
	accessAnyCaller
	accessViewer
	accessDeveloper
	accessOwner
	accessAdmin
)

// String is the access as docs/api.md's route table writes it.
func (a access) String() string {
	switch a {
	case accessAnyCaller:
		return "any caller"
	case accessViewer:
		return "viewer"
	case accessDeveloper:
		return "developer"
	case accessOwner:
		return "owner"
	case accessAdmin:
		return "admin"
	}
	return "undeclared"
}

// onSandbox reports whether a is a role on a sandbox, which a sandbox route declares.
func (a access) onSandbox() bool { return a >= accessViewer && a <= accessOwner }

// shareAccess is what a share lets its principal do.
func shareAccess(r sandbox.ShareRole) access {
	switch r {
	case sandbox.ShareViewer:
		return accessViewer
	case sandbox.ShareDeveloper:
		return accessDeveloper
	}
	return accessUndeclared
}

// sandboxRoute reports whether a route pattern addresses one sandbox by name.
func sandboxRoute(pattern string) bool { return strings.Contains(pattern, "{name}") }

// checkRouteAccess refuses a route table whose routes do not each declare an access, or a
// sandbox route without a role on its sandbox, or another route with one: a route that could
// be served without its check never is.
func checkRouteAccess(patterns []string, table map[string]access) error {
	var problems []string
	for _, p := range patterns {
		a, ok := table[p]
		switch {
		case !ok || a == accessUndeclared:
			problems = append(problems, p+" declares no access")
		case sandboxRoute(p) && !a.onSandbox():
			problems = append(problems, fmt.Sprintf("%s addresses a sandbox but declares %q, not viewer, developer or owner", p, a))
		case !sandboxRoute(p) && a.onSandbox():
			problems = append(problems, fmt.Sprintf("%s addresses no sandbox but declares the sandbox role %q", p, a))
		}
	}
	for p := range table {
		if !slices.Contains(patterns, p) {
			problems = append(problems, p+" is in routeAccess but not served")
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return errors.New("api: the route table and routeAccess (handler.go) disagree: " + strings.Join(problems, "; "))
	}
	return nil
}

// RouteAccess returns the least role of every route, as docs/api.md's route table writes it
// ("any caller", "viewer", "developer", "owner", "admin"), by route pattern.
func (h *Handler) RouteAccess() map[string]string {
	out := make(map[string]string, len(h.patterns))
	for p := range h.patterns {
		out[p] = routeAccess[p].String()
	}
	return out
}

// grants are the shares a request found the caller holds, by sandbox id, so that the
// sandboxes it answers show the caller's role (Sandbox.shared_role).
type grants map[string]sandbox.ShareRole

// authorize checks that the caller may use the request's route on sb: the route's least role
// against the caller's role on the sandbox, read now (an unshare takes effect at the next
// request). Nothing has been written when it refuses.
func (h *Handler) authorize(ctx context.Context, c caller, sb *sandbox.Sandbox) error {
	if !c.need.onSandbox() {
		// A sandbox route that declared no role: refused, never served unchecked.
		return fmt.Errorf("api: the route of sandbox %s declares no sandbox role", sb.ID)
	}
	var role access
	switch {
	case c.admin:
		return nil
	case sb.Owner == c.principal:
		role = accessOwner
	default:
		share, err := h.deps.Sandboxes.ShareRole(ctx, sb.ID, c.principal)
		if err != nil {
			return err
		}
		role = shareAccess(share)
		if role != accessUndeclared && c.grants != nil {
			c.grants[sb.ID] = share
		}
	}
	switch {
	case role == accessUndeclared:
		return sandbox.Errorf(sandbox.CodeForbidden, "sandbox %q belongs to another owner", sb.Name)
	case role < c.need && c.need == accessOwner:
		return sandbox.Errorf(sandbox.CodeForbidden, "sandbox %q is shared with you as a %s; only its owner or an admin may do this", sb.Name, role)
	case role < c.need:
		return sandbox.Errorf(sandbox.CodeForbidden, "sandbox %q is shared with you as a %s; this needs a %s's share, its owner or an admin", sb.Name, role, c.need)
	}
	return nil
}

// roleOn names the caller's role on a sandbox it was authorized on (for the audit log):
// "owner", "admin", or its share's role.
func (c caller) roleOn(sb *sandbox.Sandbox) string {
	switch {
	case sb.Owner == c.principal:
		return accessOwner.String()
	case c.admin:
		return accessAdmin.String()
	}
	return string(c.grants[sb.ID])
}
