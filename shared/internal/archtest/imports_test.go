package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The layers, bottom first (docs/architecture.md, "Dependency rules"). A package imports only
// packages of lower layers, and those of its own layer that its entry in allowed names.
var layers = [][]string{
	// The domain and its leaves: pure rules and formats, no store.
	{"shared/sandbox", "shared/logkey", "shared/keys", "shared/gateway", "shared/metrics", "shared/config", "shared/apiwire"},
	// Stores: each owns its queries or commands.
	{"shared/routecache", "shared/provision", "shared/controlplane", "shared/clients"},
	// Services: the three functions' logic, over interfaces of the stores.
	{"shared/routing", "shared/cleanup", "shared/api"},
	// Adapters: AWS Lambda and its events.
	{"shared/lambdakit", "shared/routing/sqsadapter", "shared/cleanup/scheduleadapter"},
	// The CLI: the API's client, on the wire types.
	{"shared/cli"},
	// Composition roots.
	{"functions/api", "functions/router", "functions/cleanup", "cmd/sandbox", "scripts/sqsctl"},
}

// testSupport are packages for tests alone: no package's code may import them.
var testSupport = []string{"shared/internal/testenv", "shared/internal/alarmtest", "shared/internal/archtest", "shared/internal/gosource", "shared/docscheck"}

// exceptions are imports allowed against the layers, each with its reason. An exception no
// package needs any more fails the test, so that it is removed.
var exceptions = map[[2]string]string{
	{"shared/api", "shared/lambdakit"}:            "the API handler marks local requests (lambdakit.NewLocalContext) and runs itself under Lambda",
	{"shared/internal/testenv", "shared/clients"}: "the tests open the control plane's pools and the functions' Redis clients as the functions do (clients.Postgres, clients.Redis)",
	{"shared/internal/testenv", "shared/config"}:  "clients.Redis takes the functions' configuration (config.Shared)",
}

// allowed is every package of the module and the project packages its code may import.
var allowed = map[string][]string{
	// Domain.
	"shared/sandbox": {},
	"shared/logkey":  {},
	"shared/keys":    {"shared/sandbox"},
	"shared/gateway": {"shared/sandbox"},
	"shared/metrics": {"shared/logkey"},
	"shared/config":  {"shared/sandbox"},
	"shared/apiwire": {"shared/sandbox"},
	// Stores.
	"shared/routecache":   {"shared/keys", "shared/sandbox"},
	"shared/provision":    {"shared/keys", "shared/sandbox"},
	"shared/controlplane": {"shared/logkey", "shared/routecache", "shared/sandbox"},
	"shared/clients":      {"shared/config", "shared/sandbox"},
	// Services.
	"shared/routing": {"shared/config", "shared/controlplane", "shared/gateway", "shared/keys", "shared/logkey",
		"shared/metrics", "shared/routecache", "shared/sandbox"},
	"shared/cleanup": {"shared/apiwire", "shared/config", "shared/controlplane", "shared/keys", "shared/logkey", "shared/metrics", "shared/provision", "shared/routecache", "shared/sandbox"},
	"shared/api": {"shared/apiwire", "shared/clients", "shared/config", "shared/controlplane", "shared/keys",
		"shared/lambdakit", "shared/logkey", "shared/metrics", "shared/provision", "shared/routecache", "shared/sandbox"},
	// Adapters.
	"shared/lambdakit":               {"shared/logkey", "shared/metrics"},
	"shared/routing/sqsadapter":      {"shared/lambdakit", "shared/logkey", "shared/metrics", "shared/routing"},
	"shared/cleanup/scheduleadapter": {"shared/cleanup", "shared/lambdakit", "shared/metrics"},
	// CLI: the wire types and the domain, never the server's packages.
	"shared/cli": {"shared/apiwire", "shared/config", "shared/sandbox"},
	// Composition roots.
	"functions/api":     {"shared/api", "shared/cleanup", "shared/clients", "shared/controlplane", "shared/lambdakit", "shared/logkey", "shared/metrics", "shared/provision", "shared/routecache"},
	"functions/router":  {"shared/clients", "shared/config", "shared/controlplane", "shared/lambdakit", "shared/logkey", "shared/metrics", "shared/routecache", "shared/routing", "shared/routing/sqsadapter"},
	"functions/cleanup": {"shared/cleanup", "shared/cleanup/scheduleadapter", "shared/clients", "shared/controlplane", "shared/lambdakit", "shared/logkey", "shared/metrics", "shared/provision", "shared/routecache"},
	"cmd/sandbox":       {"shared/cli"},
	"scripts/sqsctl":    {},
	// Test support.
	"shared/internal/testenv":   {"shared/clients", "shared/config"},
	"shared/internal/alarmtest": {},
	"shared/internal/archtest":  {},
	"shared/internal/gosource":  {},
	"shared/docscheck":          {},
}

// TestImportsFollowTheLayers checks the code of every package of the module (test files
// aside: tests may use test support) against allowed.
func TestImportsFollowTheLayers(t *testing.T) {
	module, graph := importGraph(t)
	for pkg, imports := range graph {
		want, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is missing from the table of allowed imports: add it (docs/architecture.md, \"Dependency rules\")", pkg)
			continue
		}
		for _, imp := range imports {
			if !slices.Contains(want, imp) {
				t.Errorf("%s imports %s, which the dependency rules do not allow (docs/architecture.md, \"Dependency rules\")", pkg, imp)
			}
		}
	}
	for pkg := range allowed {
		if _, ok := graph[pkg]; !ok {
			t.Errorf("the table lists %s, which is not a package of %s any more", pkg, module)
		}
	}
	for edge, reason := range exceptions {
		if !slices.Contains(graph[edge[0]], edge[1]) {
			t.Errorf("the exception %s -> %s (%s) is needed no more: remove it", edge[0], edge[1], reason)
		}
	}
}

// TestTableFollowsTheLayers checks that the table allows only imports that go down the
// layers, or stay within one, or are exceptions with a reason; and that no package may
// import test support.
func TestTableFollowsTheLayers(t *testing.T) {
	rank := map[string]int{}
	for i, layer := range layers {
		for _, pkg := range layer {
			rank[pkg] = i
		}
	}
	for _, pkg := range testSupport {
		rank[pkg] = -1
	}
	for pkg, imports := range allowed {
		from, ok := rank[pkg]
		if !ok {
			t.Errorf("%s has no layer", pkg)
			continue
		}
		for _, imp := range imports {
			to, ok := rank[imp]
			switch {
			case !ok:
				t.Errorf("%s may import %s, which has no layer", pkg, imp)
			case to < 0:
				t.Errorf("%s may import %s, a test support package", pkg, imp)
			case from < 0 && exceptions[[2]string{pkg, imp}] == "":
				t.Errorf("%s, a test support package, may import %s without an exception", pkg, imp)
			case to > from && exceptions[[2]string{pkg, imp}] == "":
				t.Errorf("%s may import %s, of a higher layer, without an exception", pkg, imp)
			}
		}
	}
	for pkg := range rank {
		if _, ok := allowed[pkg]; !ok {
			t.Errorf("%s has a layer but no entry in the table", pkg)
		}
	}
}

// importGraph lists the module's packages and, for each, the module's packages its code
// imports, both relative to the module path, with go list (which applies the build
// constraints the build does).
func importGraph(t *testing.T) (string, map[string][]string) {
	t.Helper()
	module := strings.TrimSpace(string(goList(t, "-m")))
	out := goList(t, "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...")
	graph := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, ok := strings.CutPrefix(fields[0], module+"/")
		if !ok {
			t.Fatalf("go list returned %s, outside module %s", fields[0], module)
		}
		var imports []string
		for _, imp := range fields[1:] {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				imports = append(imports, rel)
			}
		}
		graph[pkg] = imports
	}
	if len(graph) < 10 {
		t.Fatalf("go list found %d packages in %s: the listing is broken", len(graph), module)
	}
	return module, graph
}

func goList(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
