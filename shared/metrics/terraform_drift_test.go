package metrics

import (
	"go/ast"
	"go/token"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/botplatform/discord-sandboxes/shared/internal/alarmtest"
	"github.com/botplatform/discord-sandboxes/shared/internal/gosource"
)

// The Terraform keeps every reference to the functions' own metrics in four locals of
// terraform/monitoring.tf (metrics_namespace, metric_alarms, custom_metric_widgets,
// custom_search_widgets). This test evaluates them and compares them with the catalog, so an
// alarm or widget that names a metric, namespace or dimension set no function emits fails
// here, and so does a catalog metric with no widget or that no code emits. Whether an alarm
// fires on what the code emits is for the scenario tests (shared/internal/alarmtest).

const terraformDir = "../../terraform"

// terraformModule parses the root module; its locals are evaluated with var.environment set
// to "test". The parser is alarmtest's, the one the alarm scenario tests use.
func terraformModule(t *testing.T) *alarmtest.Module {
	t.Helper()
	m, err := alarmtest.ParseModule(terraformDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func evalLocal(t *testing.T, m *alarmtest.Module, name string) cty.Value {
	t.Helper()
	v, err := m.Local(name)
	if err != nil {
		t.Fatalf("terraform: %v", err)
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
	module := terraformModule(t)

	if ns := evalLocal(t, module, "metrics_namespace").AsString(); ns != Namespace {
		t.Fatalf("terraform metrics_namespace = %q, catalog Namespace = %q", ns, Namespace)
	}
	dims := evalLocal(t, module, "metric_dimensions")
	if !dims.Type().IsObjectType() || len(dims.Type().AttributeTypes()) != 1 || !dims.Type().HasAttribute(string(DimEnvironment)) {
		t.Fatalf("terraform metric_dimensions must be exactly {Environment = var.environment}, got %#v", dims)
	}
	// The namespace literal appears once: everything else goes through the local.
	total := 0
	for _, src := range module.Sources() {
		total += strings.Count(string(src), `"`+Namespace+`"`)
	}
	if total != 1 {
		t.Errorf("the namespace literal %q appears %d times in terraform/*.tf; use local.metrics_namespace", Namespace, total)
	}

	// The alarms as the resource sets them: each reads the [Environment] series of a catalog
	// metric, which carries the metric's total (see doc.go, Lines).
	alarms, err := module.MetricAlarms()
	if err != nil {
		t.Fatal(err)
	}
	if len(alarms) == 0 {
		t.Fatal("terraform defines no metric alarm")
	}
	for name, a := range alarms {
		if a.Namespace != Namespace || len(a.Dimensions) != 1 || a.Dimensions[string(DimEnvironment)] != "test" {
			t.Errorf("alarm %s reads %s %v, want %s with Environment only", name, a.Namespace, a.Dimensions, Namespace)
		}
		emittedSet(t, "alarm "+name, a.MetricName, nil)
	}

	widgeted := map[string]bool{}
	widgets := evalLocal(t, module, "custom_metric_widgets")
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
	search := evalLocal(t, module, "custom_search_widgets")
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
	// This package's own code names the variables: only other packages' use counts.
	err := gosource.Walk("../..", gosource.Code, func(path string, f *ast.File, _ *token.FileSet) error {
		if filepath.Base(filepath.Dir(path)) == "metrics" {
			return nil
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
