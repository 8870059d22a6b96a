package docscheck

import (
	"go/ast"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// flagDefiners are the flag package's functions that define a flag, and the position of the
// flag's name among their arguments.
var flagDefiners = map[string]int{
	"String": 0, "Bool": 0, "Duration": 0, "Int": 0, "Int64": 0, "Uint": 0, "Float64": 0, "Func": 0,
	"StringVar": 1, "BoolVar": 1, "DurationVar": 1, "IntVar": 1, "Int64Var": 1, "UintVar": 1, "Float64Var": 1, "TextVar": 1,
}

// definedFlags returns the flags the main package in dir defines with the flag package, as
// "-name", sorted.
func definedFlags(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range parseNonTestFiles(t, repoRoot, dir) {
		path := f.path
		ast.Inspect(f.file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			i, defines := flagDefiners[sel.Sel.Name]
			if !ok || pkg.Name != "flag" || !defines || len(call.Args) <= i {
				return true
			}
			lit, ok := call.Args[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a flag whose name is not a string literal: the check cannot read it", path)
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			out = append(out, "-"+name)
			return true
		})
	}
	slices.Sort(out)
	return out
}

// Every flag of a function binary is in docs/configuration.md's flags table, and every flag
// there exists.
func TestConfigurationDocListsEveryFlag(t *testing.T) {
	tb, ok := taggedTables(readDoc(t, "configuration.md"), "flags")["functions"]
	if !ok {
		t.Fatal("docs/configuration.md has no table tagged <!-- flags: functions -->")
	}
	if !slices.Equal(tb.Header, []string{"Program", "Flag", "Meaning"}) {
		t.Fatalf("docs/configuration.md line %d: the flags table's header is %q, want Program | Flag | Meaning", tb.Line, tb.Header)
	}
	documented := map[string][]string{}
	for _, row := range tb.Rows {
		if len(row) != 3 || strings.TrimSpace(row[2]) == "" {
			t.Fatalf("docs/configuration.md, flags table: malformed row %q", row)
		}
		flag, _, _ := strings.Cut(unquote(row[1]), " ")
		documented[unquote(row[0])] = append(documented[unquote(row[0])], flag)
	}
	total := 0
	for _, fn := range functions {
		defined := definedFlags(t, mainPackages[fn])
		total += len(defined)
		docs := slices.Sorted(slices.Values(documented[fn]))
		if !slices.Equal(defined, docs) {
			t.Errorf("the %s binary defines the flags %v; docs/configuration.md lists %v", fn, defined, docs)
		}
		delete(documented, fn)
	}
	if total == 0 {
		t.Error("no flag found in the functions' main packages: the scan is broken")
	}
	for program := range documented {
		t.Errorf("docs/configuration.md lists flags of %q, which is not a function binary", program)
	}
}
