package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// serverLibraries are what the CLI must never link: it talks to the API over HTTP only, and
// shares with it nothing but the wire types (shared/apiwire) and the domain rules
// (shared/sandbox). A package that pulls one of them in (shared/api, shared/controlplane,
// shared/clients, ...) fails TestCLILinksNoServerLibraries.
var serverLibraries = []struct {
	prefix string
	what   string
}{
	{prefix: "github.com/jackc/pgx", what: "the PostgreSQL driver"},
	{prefix: "github.com/redis/go-redis", what: "the Redis client"},
	{prefix: "github.com/aws/aws-lambda-go", what: "the Lambda runtime"},
	{prefix: "github.com/prozz/aws-embedded-metrics-golang", what: "the EMF metrics library"},
}

// TestCLILinksNoServerLibraries lists what `go build ./cmd/sandbox` links and fails on any
// of the server's libraries.
func TestCLILinksNoServerLibraries(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the CLI's dependencies: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "./cmd/sandbox")
	cmd.Dir = repositoryRoot(t)
	cmd.Stderr = new(strings.Builder)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/sandbox: %v\n%s", err, cmd.Stderr)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/botplatform/discord-sandboxes/shared/cli") {
		t.Fatalf("go list did not list the CLI's own package: the listing is broken\n%s", out)
	}
	for _, lib := range serverLibraries {
		var linked []string
		for _, dep := range deps {
			if dep == lib.prefix || strings.HasPrefix(dep, lib.prefix+"/") {
				linked = append(linked, dep)
			}
		}
		if len(linked) == 0 {
			continue
		}
		// The shortest path is the library's root package, the one `go mod why` explains best.
		root := slices.MinFunc(linked, func(a, b string) int { return len(a) - len(b) })
		t.Errorf("the CLI links %s (%s, %d packages); `go mod why %s` shows through what", root, lib.what, len(linked), root)
	}
}

// repositoryRoot is the directory of go.mod, found upwards from the test's directory.
func repositoryRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
