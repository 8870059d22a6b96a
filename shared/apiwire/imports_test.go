package apiwire

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sandboxPackage is the one package of this module the wire types may use.
const sandboxPackage = "github.com/botplatform/discord-sandboxes/shared/sandbox"

// TestImportsOnlyTheStandardLibraryAndSandbox holds the package doc's promise, on which the
// CLI's freedom from the server's libraries rests: anything else imported here would be
// linked into the CLI.
func TestImportsOnlyTheStandardLibraryAndSandbox(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	sources := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		sources++
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range f.Imports {
			path, _ := strconv.Unquote(spec.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			// Standard library paths have no dot in their first element.
			if strings.Contains(first, ".") && path != sandboxPackage {
				t.Errorf("%s imports %s: the wire types may use only the standard library and %s", name, path, sandboxPackage)
			}
		}
	}
	if sources == 0 {
		t.Fatal("no source files found: the test runs in the wrong directory")
	}
}
