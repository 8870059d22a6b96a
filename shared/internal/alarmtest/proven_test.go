package alarmtest

import (
	"go/ast"
	"go/token"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/internal/gosource"
)

// scenarioFile is what a test file outside this package does with alarmtest.
type scenarioFile struct {
	loads        []string // alarm names passed to alarmtest.Load as literals
	alarm, quiet bool     // it expects alarmtest.Alarm, and alarmtest.OK, somewhere
	path         string
}

// TestEverySeedAlarmIsProven keeps the rule that an alarm counts as wired only when a test
// proves it fires: every alarm of the metric_alarms local must be loaded by name
// (alarmtest.Load(t, "<name>")) in a test file that expects both ALARM and OK.
func TestEverySeedAlarmIsProven(t *testing.T) {
	alarms, err := LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var files []scenarioFile
	err = gosource.Walk(root, gosource.Tests, func(path string, f *ast.File, _ *token.FileSet) error {
		sf := scenarioFile{path: path}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "alarmtest" {
					sf.alarm = sf.alarm || n.Sel.Name == "Alarm"
					sf.quiet = sf.quiet || n.Sel.Name == "OK"
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Load" || len(n.Args) != 2 {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "alarmtest" {
					return true
				}
				if lit, ok := n.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if name, err := strconv.Unquote(lit.Value); err == nil {
						sf.loads = append(sf.loads, name)
					}
				}
			}
			return true
		})
		if len(sf.loads) > 0 {
			files = append(files, sf)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(alarms)) {
		proven := false
		for _, f := range files {
			if slices.Contains(f.loads, name) {
				if f.alarm && f.quiet {
					proven = true
				} else {
					t.Errorf("%s loads alarm %s but does not expect both alarmtest.Alarm and alarmtest.OK", f.path, name)
				}
			}
		}
		if !proven {
			t.Errorf("alarm %s of terraform/monitoring.tf has no scenario test: load it with alarmtest.Load(t, %q) in a test that shows it fires and stays quiet just below", name, name)
		}
	}
	for _, f := range files {
		for _, name := range f.loads {
			if _, ok := alarms[name]; !ok {
				t.Errorf("%s loads alarm %q, which terraform/monitoring.tf does not define", f.path, name)
			}
		}
	}
}
