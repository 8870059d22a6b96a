package docscheck

import (
	"fmt"
	"strings"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// metricsTable renders the catalog as the table of docs/metrics.md: one row per metric, in
// catalog order, with the alarms that read it.
func metricsTable(catalog []metrics.Metric, alarms []tfAlarm) string {
	var b strings.Builder
	b.WriteString("| Metric | Unit | Dimension sets | Emitted by | Alarms | Description |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, m := range catalog {
		var sets []string
		for _, set := range m.DimensionSets {
			var dims []string
			for _, d := range set {
				dims = append(dims, string(d))
			}
			sets = append(sets, "`["+strings.Join(dims, ", ")+"]`")
		}
		var emitters []string
		for _, f := range m.EmittedBy {
			emitters = append(emitters, string(f))
		}
		var names []string
		for _, a := range alarms {
			if a.Namespace == metrics.Namespace && a.Metric == m.Name {
				names = append(names, fmt.Sprintf("[`<name>-%s`](runbook.md#%s)", a.Suffix, a.Suffix))
			}
		}
		alarmCell := "—"
		if len(names) > 0 {
			alarmCell = strings.Join(names, "<br>")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", m.Name, m.Unit, strings.Join(sets, " "),
			strings.Join(emitters, ", "), alarmCell, strings.ReplaceAll(m.Description, "|", `\|`))
	}
	return b.String()
}

func TestMetricsDocIsTheCatalog(t *testing.T) {
	alarms := loadTerraform(t, repoRoot+"/terraform").alarms(t)
	checkGenerated(t, "metrics.md", "metric catalog", metricsTable(metrics.Catalog(), alarms))
}

func TestMetricsDocNamesTheNamespace(t *testing.T) {
	doc := readDoc(t, "metrics.md")
	if !strings.Contains(doc, "`"+metrics.Namespace+"`") {
		t.Errorf("docs/metrics.md does not name the namespace `%s`", metrics.Namespace)
	}
}

// The rendering must show every metric with its alarms, or the test above could pass on a
// table that says nothing.
func TestMetricsTableShowsAlarms(t *testing.T) {
	table := metricsTable([]metrics.Metric{metrics.CleanupFailures, metrics.RouteLookups},
		[]tfAlarm{{Suffix: "cleanup-failures", Namespace: metrics.Namespace, Metric: "CleanupFailures"}})
	for _, want := range []string{
		"| `CleanupFailures` | Count | `[Environment]` | api, cleanup | [`<name>-cleanup-failures`](runbook.md#cleanup-failures) |",
		"| `RouteLookups` | Count | `[Environment, Tier]` | router | — |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
