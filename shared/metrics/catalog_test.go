package metrics_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/internal/gosource"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// cloudWatchUnits are the units of the CloudWatch MetricDatum API reference.
var cloudWatchUnits = []string{
	"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
	"Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
	"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
	"Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
	"Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}

var (
	allDimensions = []metrics.Dimension{
		metrics.DimEnvironment, metrics.DimRoute, metrics.DimTier,
		metrics.DimDestination, metrics.DimKind, metrics.DimResourceType,
	}
	allFunctions = []metrics.Function{metrics.FunctionAPI, metrics.FunctionRouter, metrics.FunctionCleanup}
)

func TestCatalogInvariants(t *testing.T) {
	catalog := metrics.Catalog()
	if len(catalog) == 0 {
		t.Fatal("empty catalog")
	}
	names := map[string]bool{}
	emitters := map[metrics.Function]bool{}
	for _, m := range catalog {
		if m.Name == "" || len(m.Name) > 255 {
			t.Errorf("metric name %q: want 1 to 255 characters", m.Name)
		}
		if names[m.Name] {
			t.Errorf("metric %s listed twice", m.Name)
		}
		names[m.Name] = true
		if slices.Contains(allDimensions, metrics.Dimension(m.Name)) {
			t.Errorf("metric %s is named like a dimension: their EMF members would collide", m.Name)
		}
		if !slices.Contains(cloudWatchUnits, m.Unit) {
			t.Errorf("metric %s: unit %q is not a CloudWatch unit", m.Name, m.Unit)
		}
		if m.Description == "" {
			t.Errorf("metric %s has no description", m.Name)
		}
		if len(m.EmittedBy) == 0 {
			t.Errorf("metric %s has no emitting function", m.Name)
		}
		for _, f := range m.EmittedBy {
			if !slices.Contains(allFunctions, f) {
				t.Errorf("metric %s: unknown function %q", m.Name, f)
			}
			emitters[f] = true
		}
		if len(m.DimensionSets) == 0 {
			t.Errorf("metric %s has no dimension set", m.Name)
		}
		seenSets := map[string]bool{}
		for _, set := range m.DimensionSets {
			if len(set) == 0 || set[0] != metrics.DimEnvironment {
				t.Errorf("metric %s: dimension set %v does not start with Environment", m.Name, set)
			}
			if len(set) > 30 {
				t.Errorf("metric %s: dimension set %v exceeds 30 dimensions", m.Name, set)
			}
			for i, d := range set {
				if !slices.Contains(allDimensions, d) {
					t.Errorf("metric %s: unknown dimension %q", m.Name, d)
				}
				if slices.Contains(set[:i], d) {
					t.Errorf("metric %s: dimension %s twice in %v", m.Name, d, set)
				}
			}
			key := slices.Clone(set)
			slices.Sort(key)
			id := fmt.Sprint(key)
			if seenSets[id] {
				t.Errorf("metric %s: dimension set %v listed twice", m.Name, set)
			}
			seenSets[id] = true
		}
	}
	for _, f := range allFunctions {
		if !emitters[f] {
			t.Errorf("function %s emits no metric", f)
		}
	}
}

// TestCatalogListsEveryMetricVar keeps catalog.go honest: every exported Metric variable is
// in Catalog(), under its own name, and nothing else is.
func TestCatalogListsEveryMetricVar(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "catalog.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	for name, value := range gosource.Values(file, token.VAR) {
		lit, ok := value.(*ast.CompositeLit)
		if !ok || !name.IsExported() {
			continue
		}
		if typ, ok := lit.Type.(*ast.Ident); ok && typ.Name == "Metric" {
			vars = append(vars, name.Name)
		}
	}
	var listed []string
	for _, m := range metrics.Catalog() {
		listed = append(listed, m.Name)
	}
	slices.Sort(vars)
	slices.Sort(listed)
	if !slices.Equal(vars, listed) {
		t.Errorf("exported Metric vars %v\ndiffer from Catalog() names %v", vars, listed)
	}
}
