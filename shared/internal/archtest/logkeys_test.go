package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/internal/gosource"
)

// logKeyStyle is the one style of log attribute keys.
var logKeyStyle = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// logMethods are the slog methods whose arguments, from the given index on, alternate keys
// and values.
var logMethods = map[string]int{
	"Debug": 1, "Info": 1, "Warn": 1, "Error": 1,
	"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
	"With": 0,
}

// Every log attribute key the code writes is snake_case, and a key of shared/logkey is
// written through its constant, never as a literal (so that the key has one home). The keys
// are the string literals at key positions of slog calls and of attribute lists (attrs := ...).
func TestLogKeysHaveOneStyleAndOneHome(t *testing.T) {
	root := moduleRoot(t)
	shared := logkeyValues(t, filepath.Join(root, "shared", "logkey", "logkey.go"))
	checked := 0
	check := func(fset *token.FileSet, lit *ast.BasicLit) {
		key, err := strconv.Unquote(lit.Value)
		if err != nil {
			return
		}
		checked++
		pos := fset.Position(lit.Pos())
		rel, _ := filepath.Rel(root, pos.Filename)
		if !logKeyStyle.MatchString(key) {
			t.Errorf("%s:%d: log key %q is not snake_case", rel, pos.Line, key)
		}
		if name, ok := shared[key]; ok {
			t.Errorf("%s:%d: log key %q written as a literal: use logkey.%s", rel, pos.Line, key, name)
		}
	}
	err := gosource.Walk(root, gosource.Code, func(_ string, f *ast.File, fset *token.FileSet) error {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				start, ok := logMethods[sel.Sel.Name]
				if !ok {
					return true
				}
				for i := start; i < len(n.Args); i += 2 {
					if lit, ok := n.Args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						check(fset, lit)
					}
				}
			case *ast.AssignStmt:
				// Attribute lists built ahead of a log call: attrs := []any{"key", value, ...}.
				for i, lhs := range n.Lhs {
					id, ok := lhs.(*ast.Ident)
					if !ok || !strings.Contains(strings.ToLower(id.Name), "attr") || i >= len(n.Rhs) {
						continue
					}
					if lit, ok := n.Rhs[i].(*ast.CompositeLit); ok {
						for j := 0; j < len(lit.Elts); j += 2 {
							if key, ok := lit.Elts[j].(*ast.BasicLit); ok && key.Kind == token.STRING {
								check(fset, key)
							}
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d log keys found: the scan is broken", checked)
	}
}

// logkeyValues returns the constants of the logkey package, value -> name.
func logkeyValues(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, value := range gosource.StringConsts(f) {
		out[value] = name
	}
	if len(out) == 0 {
		t.Fatalf("no constants in %s", path)
	}
	return out
}

// moduleRoot is the repository's root, two levels above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
