package api

import (
	"strings"
	"testing"
)

// TestCheckRouteAccessRefusesAnUncheckedRoute: a route the access table does not declare, a
// sandbox route without a role on its sandbox, another route with one, and an entry nobody
// serves each stop New; the real table passes.
func TestCheckRouteAccessRefusesAnUncheckedRoute(t *testing.T) {
	patterns := []string{"GET /v1/sandboxes/{name}", "GET /health"}
	cases := []struct {
		table map[string]access
		want  string
	}{
		{map[string]access{"GET /health": accessAnyCaller}, "GET /v1/sandboxes/{name} declares no access"},
		{map[string]access{"GET /health": accessAnyCaller, "GET /v1/sandboxes/{name}": accessAnyCaller}, `declares "any caller", not viewer`},
		{map[string]access{"GET /health": accessViewer, "GET /v1/sandboxes/{name}": accessViewer}, `GET /health addresses no sandbox but declares the sandbox role "viewer"`},
		{map[string]access{"GET /health": accessAnyCaller, "GET /v1/sandboxes/{name}": accessOwner, "GET /gone": accessAdmin}, "GET /gone is in routeAccess but not served"},
		{map[string]access{"GET /health": accessAnyCaller, "GET /v1/sandboxes/{name}": accessUndeclared}, "declares no access"},
	}
	for _, tc := range cases {
		err := checkRouteAccess(patterns, tc.table)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("table %v: %v, want an error saying %q", tc.table, err, tc.want)
		}
	}
	if err := checkRouteAccess(patterns, map[string]access{"GET /health": accessAnyCaller, "GET /v1/sandboxes/{name}": accessDeveloper}); err != nil {
		t.Errorf("a consistent table: %v", err)
	}
}

// TestAccessOrder: a developer may do what a viewer may, an owner what a developer may, and
// an admin everything; the names are the route table's of docs/api.md.
func TestAccessOrder(t *testing.T) {
	order := []access{accessViewer, accessDeveloper, accessOwner, accessAdmin}
	names := []string{"viewer", "developer", "owner", "admin"}
	for i := range order {
		if order[i].String() != names[i] {
			t.Errorf("%d is %q, want %q", order[i], order[i], names[i])
		}
		if i > 0 && order[i-1] >= order[i] {
			t.Errorf("%s is not below %s", order[i-1], order[i])
		}
	}
	if !accessViewer.onSandbox() || !accessOwner.onSandbox() || accessAdmin.onSandbox() || accessAnyCaller.onSandbox() {
		t.Error("the sandbox roles are viewer, developer and owner")
	}
}
