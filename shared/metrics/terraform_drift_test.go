package metrics

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The Terraform keeps every reference to the functions' own metrics in four locals of
// terraform/monitoring.tf (metrics_namespace, metric_alarms, custom_metric_widgets,
// custom_search_widgets). This test evaluates them and compares them with the catalog, so an
// alarm or widget that names a metric, namespace or dimension set no function emits fails
// here, and so does a catalog metric with no widget or that no code emits.

const terraformDir = "../../terraform"

// terraformLocals parses every .tf file of the root module and returns its locals.
func terraformLocals(t *testing.T) (map[string]hcl.Expression, [][]byte) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(terraformDir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Terraform files in %s: %v", terraformDir, err)
	}
	locals := map[string]hcl.Expression{}
	var sources [][]byte
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, src)
		f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", name, diags.Error())
		}
		for _, block := range f.Body.(*hclsyntax.Body).Blocks {
			if block.Type != "locals" {
				continue
			}
			for name, attr := range block.Body.Attributes {
				locals[name] = attr.Expr
			}
		}
	}
	return locals, sources
}

func evalLocal(t *testing.T, locals map[string]hcl.Expression, name string) cty.Value {
	t.Helper()
	expr, ok := locals[name]
	if !ok {
		t.Fatalf("terraform: local %q not found", name)
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"var": cty.ObjectVal(map[string]cty.Value{"environment": cty.StringVal("test")}),
	}}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("terraform: evaluate local %q: %s (keep it literal so this test can read it)", name, diags.Error())
	}
	return v
}

func attrString(t *testing.T, obj cty.Value, name string) string {
	t.Helper()
	if !obj.Type().IsObjectType() || !obj.Type().HasAttribute(name) {
		t.Fatalf("terraform: object %#v lacks %q", obj, name)
	}
	return obj.GetAttr(name).AsString()
}

// dimensionSetKey names a dimension set order-independently.
func dimensionSetKey(dims []string) string {
	d := slices.Clone(dims)
	sort.Strings(d)
	return strings.Join(d, ",")
}

func catalogByName() map[string]Metric {
	out := map[string]Metric{}
	for _, m := range Catalog() {
		out[m.Name] = m
	}
	return out
}

func emittedSet(t *testing.T, where, metric string, extra []string) {
	t.Helper()
	m, ok := catalogByName()[metric]
	if !ok {
		t.Errorf("%s names metric %q, which is not in the catalog (no function emits it)", where, metric)
		return
	}
	want := dimensionSetKey(append([]string{string(DimEnvironment)}, extra...))
	for _, set := range m.DimensionSets {
		names := make([]string, len(set))
		for i, d := range set {
			names[i] = string(d)
		}
		if dimensionSetKey(names) == want {
			return
		}
	}
	t.Errorf("%s reads %s with dimensions [%s], a set the catalog does not emit (%v)", where, metric, want, m.DimensionSets)
}

func TestTerraformMatchesTheCatalog(t *testing.T) {
	locals, sources := terraformLocals(t)

	if ns := evalLocal(t, locals, "metrics_namespace").AsString(); ns != Namespace {
		t.Fatalf("terraform metrics_namespace = %q, catalog Namespace = %q", ns, Namespace)
	}
	dims := evalLocal(t, locals, "metric_dimensions")
	if !dims.Type().IsObjectType() || len(dims.Type().AttributeTypes()) != 1 || !dims.Type().HasAttribute(string(DimEnvironment)) {
		t.Fatalf("terraform metric_dimensions must be exactly {Environment = var.environment}, got %#v", dims)
	}
	// The namespace literal appears once: everything else goes through the local.
	total := 0
	for _, src := range sources {
		total += strings.Count(string(src), `"`+Namespace+`"`)
	}
	if total != 1 {
		t.Errorf("the namespace literal %q appears %d times in terraform/*.tf; use local.metrics_namespace", Namespace, total)
	}

	alarms := evalLocal(t, locals, "metric_alarms")
	for it := alarms.ElementIterator(); it.Next(); {
		k, v := it.Element()
		emittedSet(t, "alarm "+k.AsString(), attrString(t, v, "metric_name"), nil)
	}

	widgeted := map[string]bool{}
	widgets := evalLocal(t, locals, "custom_metric_widgets")
	for it := widgets.ElementIterator(); it.Next(); {
		_, w := it.Element()
		title := attrString(t, w, "title")
		for mit := w.GetAttr("metrics").ElementIterator(); mit.Next(); {
			_, m := mit.Element()
			name := attrString(t, m, "name")
			var extra []string
			if m.Type().HasAttribute("dimensions") {
				for k := range m.GetAttr("dimensions").Type().AttributeTypes() {
					extra = append(extra, k)
				}
			}
			emittedSet(t, "widget "+title, name, extra)
			widgeted[name] = true
		}
	}
	search := evalLocal(t, locals, "custom_search_widgets")
	for it := search.ElementIterator(); it.Next(); {
		_, w := it.Element()
		var extra []string
		for dit := w.GetAttr("dimensions").ElementIterator(); dit.Next(); {
			_, d := dit.Element()
			extra = append(extra, d.AsString())
		}
		name := attrString(t, w, "name")
		emittedSet(t, "search widget "+attrString(t, w, "title"), name, extra)
		widgeted[name] = true
	}
	for _, m := range Catalog() {
		if !widgeted[m.Name] {
			t.Errorf("catalog metric %s has no dashboard widget", m.Name)
		}
	}
}

// TestEveryCatalogMetricIsEmitted proves the "emitted by" column: each catalog variable is
// used by code outside this package (tests excluded).
func TestEveryCatalogMetricIsEmitted(t *testing.T) {
	used := map[string]bool{}
	fset := token.NewFileSet()
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".run", "dist", "terraform", "node_modules", "metrics":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "metrics" {
					used[sel.Sel.Name] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Catalog() {
		if !used[m.Name] {
			t.Errorf("catalog metric %s is not emitted by any function's code (no reference to metrics.%s)", m.Name, m.Name)
		}
	}
}
