package alarmtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Environment is the Environment dimension value of the emitters in the tests, and so the
// environment Load evaluates the alarms for.
const Environment = "test"

// RepoRoot returns the root of the module the test runs in (the directory holding go.mod).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("alarmtest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// LoadAll returns the alarms of the repository's terraform/ for Environment.
func LoadAll() (map[string]MetricAlarm, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	m, err := ParseModule(filepath.Join(root, "terraform"), Environment)
	if err != nil {
		return nil, err
	}
	return m.MetricAlarms()
}

// Load returns the alarm of the metric_alarms local with that key, for Environment, and
// fails t when there is none. The scenario tests call it with a literal name:
// TestEverySeedAlarmIsProven looks for those calls.
func Load(t testing.TB, name string) MetricAlarm {
	t.Helper()
	alarms, err := LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := alarms[name]
	if !ok {
		t.Fatalf("alarmtest: terraform defines no metric alarm %q", name)
	}
	return a
}

// Expect evaluates the alarm at time at on EMF lines and fails t unless its state is want.
func Expect(t testing.TB, a MetricAlarm, lines []byte, at time.Time, want State) Evaluation {
	t.Helper()
	points, err := ParseEMF(lines)
	if err != nil {
		t.Fatal(err)
	}
	ev := a.Evaluate(points, at)
	if ev.State != want {
		t.Errorf("alarm %s at %s: %s, want %s\n%s", a.Name, at.Format(time.RFC3339), ev.State, want, describe(a, ev))
	}
	return ev
}

func describe(a MetricAlarm, ev Evaluation) string {
	return fmt.Sprintf("%s of %s %v per %v, %s %g, %d of %d periods, missing data %s: %s",
		a.Statistic, a.MetricName, a.Dimensions, a.Period, a.ComparisonOperator, a.Threshold,
		a.DatapointsToAlarm, a.EvaluationPeriods, a.TreatMissingData, ev)
}
