package alarmtest

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMetricAlarmsAreEvaluatedFromTheResource(t *testing.T) {
	m, err := ParseModule("testdata/module", "staging")
	if err != nil {
		t.Fatal(err)
	}
	alarms, err := m.MetricAlarms()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]MetricAlarm{
		"defaults": {
			Name: "defaults", Namespace: "Fixture", MetricName: "Requests", Dimensions: map[string]string{"Environment": "staging"},
			Statistic: "Sum", ComparisonOperator: "GreaterThanThreshold", Threshold: 50, Period: 5 * time.Minute,
			EvaluationPeriods: 2, DatapointsToAlarm: 2, TreatMissingData: "missing",
		},
		"three-of-five": {
			Name: "three-of-five", Namespace: "Fixture", MetricName: "Latency", Dimensions: map[string]string{"Environment": "staging"},
			Statistic: "Average", ComparisonOperator: "LessThanOrEqualToThreshold", Threshold: 1.5, Period: time.Minute,
			EvaluationPeriods: 5, DatapointsToAlarm: 3, TreatMissingData: "ignore",
		},
	}
	if !reflect.DeepEqual(alarms, want) {
		t.Errorf("alarms\n got %+v\nwant %+v", alarms, want)
	}
}

func TestMetricAlarmsRejectsWhatTheEvaluatorCannotModel(t *testing.T) {
	m, err := ParseModule("testdata/unsupported", "test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.MetricAlarms()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`statistic "p99"`, "GreaterThanUpperThreshold", "period: 90.5 is not a whole number", `"sometimes"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestLocals(t *testing.T) {
	m, err := ParseModule("testdata/no-alarms", "dev")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := m.Local("greeting"); err != nil || v.AsString() != "hello dev" {
		t.Errorf("greeting = %#v, %v", v, err)
	}
	if _, err := m.Local("loop"); err == nil || !strings.Contains(err.Error(), "refers to itself") {
		t.Errorf("loop: %v", err)
	}
	if _, err := m.Local("absent"); err == nil {
		t.Error("absent local evaluated")
	}
	if _, err := m.MetricAlarms(); err == nil {
		t.Error("a module without the metric alarm resource has alarms")
	}
	if _, ok := m.Sources()["main.tf"]; !ok {
		t.Errorf("sources %v", m.Sources())
	}
	if _, err := ParseModule("testdata/nothing-here", "dev"); err == nil {
		t.Error("a directory without .tf files parsed")
	}
}

// The repository's alarms read the per-environment series of the catalog's namespace.
func TestTheRepositorysAlarmsLoad(t *testing.T) {
	alarms, err := LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(alarms) < 6 {
		t.Fatalf("only %d alarms: %v", len(alarms), alarms)
	}
	for name, a := range alarms {
		if a.Namespace != "DiscordSandboxes" || !reflect.DeepEqual(a.Dimensions, map[string]string{"Environment": Environment}) {
			t.Errorf("alarm %s reads %s %v", name, a.Namespace, a.Dimensions)
		}
	}
}
