package alarmtest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// point is one value of the alarm's series in the tests below.
func point(at time.Time, values ...float64) Datapoint {
	return Datapoint{Namespace: "N", Metric: "M", Dimensions: map[string]string{"Environment": "test"}, Timestamp: at, Values: values}
}

// quarterHourAlarm fires when the Sum of 15-minute periods exceeds 5, with the given periods.
func quarterHourAlarm(evaluation, toAlarm int, missing string) MetricAlarm {
	return MetricAlarm{
		Name: "test", Namespace: "N", MetricName: "M", Dimensions: map[string]string{"Environment": "test"},
		Statistic: "Sum", ComparisonOperator: "GreaterThanThreshold", Threshold: 5, Period: 15 * time.Minute,
		EvaluationPeriods: evaluation, DatapointsToAlarm: toAlarm, TreatMissingData: missing,
	}
}

func TestStatistics(t *testing.T) {
	points := []Datapoint{point(t0.Add(time.Minute), 4, 1), point(t0.Add(14*time.Minute), 10)}
	want := map[string]float64{"Sum": 15, "Minimum": 1, "Maximum": 10, "Average": 5, "SampleCount": 3}
	for stat, value := range want {
		a := quarterHourAlarm(1, 1, "missing")
		a.Statistic = stat
		ev := a.Evaluate(points, t0.Add(15*time.Minute))
		if got := ev.Periods[0].Value; got != value {
			t.Errorf("%s = %v, want %v", stat, got, value)
		}
	}
}

func TestComparisonOperators(t *testing.T) {
	cases := []struct {
		op    string
		value float64
		want  State
	}{
		{"GreaterThanThreshold", 5, OK}, {"GreaterThanThreshold", 6, Alarm},
		{"GreaterThanOrEqualToThreshold", 4, OK}, {"GreaterThanOrEqualToThreshold", 5, Alarm},
		{"LessThanThreshold", 5, OK}, {"LessThanThreshold", 4, Alarm},
		{"LessThanOrEqualToThreshold", 6, OK}, {"LessThanOrEqualToThreshold", 5, Alarm},
	}
	for _, c := range cases {
		a := quarterHourAlarm(1, 1, "missing")
		a.ComparisonOperator = c.op
		if got := a.Evaluate([]Datapoint{point(t0, c.value)}, t0.Add(15*time.Minute)).State; got != c.want {
			t.Errorf("%s with %v: %s, want %s", c.op, c.value, got, c.want)
		}
	}
}

// Only whole periods that ended count, and a point on a period's start belongs to it.
func TestPeriodsAreWholeAndAlignedOnTheEpoch(t *testing.T) {
	a := quarterHourAlarm(1, 1, "missing")
	breach := []Datapoint{point(t0.Add(15*time.Minute), 6)} // the first instant of 13:15-13:30
	for _, c := range []struct {
		at   time.Duration
		want State
	}{
		{15 * time.Minute, InsufficientData},                            // evaluates 13:00-13:15: empty
		{29*time.Minute + 59*time.Second, InsufficientData},             // 13:15-13:30 has not ended
		{30 * time.Minute, Alarm},                                       // it has now
		{44*time.Minute + 59*time.Second + 999*time.Millisecond, Alarm}, // still the last whole period
		{45 * time.Minute, InsufficientData},                            // 13:30-13:45: empty
	} {
		ev := a.Evaluate(breach, t0.Add(c.at))
		if ev.State != c.want {
			t.Errorf("at +%v: %s, want %s", c.at, ev, c.want)
		}
	}
	// Periods of 900 s start at hh:00, hh:15, ... whatever the time of the first point.
	ev := a.Evaluate([]Datapoint{point(t0.Add(22*time.Minute), 6)}, t0.Add(37*time.Minute))
	if start := ev.Periods[0].Start; !start.Equal(t0.Add(15 * time.Minute)) {
		t.Errorf("period starts at %v", start)
	}
}

func TestConsecutiveBreachingPeriods(t *testing.T) {
	a := quarterHourAlarm(4, 0, "notBreaching") // 0: datapoints to alarm = evaluation periods
	at := t0.Add(time.Hour)
	var all []Datapoint
	for q := range 4 {
		all = append(all, point(t0.Add(time.Duration(q)*15*time.Minute+time.Minute), 6))
	}
	if ev := a.Evaluate(all, at); ev.State != Alarm {
		t.Errorf("four breaching periods: %s", ev)
	}
	for skip := range 4 {
		var some []Datapoint
		for q, p := range all {
			if q != skip {
				some = append(some, p)
			}
		}
		if ev := a.Evaluate(some, at); ev.State != OK {
			t.Errorf("period %d missing (not breaching): %s", skip, ev)
		}
		low := append([]Datapoint{}, some...)
		low = append(low, point(all[skip].Timestamp, 5))
		if ev := a.Evaluate(low, at); ev.State != OK {
			t.Errorf("period %d at the threshold: %s", skip, ev)
		}
	}
	// M of N: 3 of 4 is enough when datapoints_to_alarm says so.
	a.DatapointsToAlarm = 3
	if ev := a.Evaluate(all[1:], at); ev.State != Alarm {
		t.Errorf("3 of 4: %s", ev)
	}
}

func TestTreatMissingData(t *testing.T) {
	at := t0.Add(45 * time.Minute)
	oneBreach := []Datapoint{point(t0.Add(20*time.Minute), 6)}
	for _, c := range []struct {
		missing   string
		none, one State
	}{
		{missing: "breaching", none: Alarm, one: Alarm},
		{missing: "notBreaching", none: OK, one: OK},
		{missing: "missing", none: InsufficientData, one: OK},
		{missing: "ignore", none: InsufficientData, one: OK},
	} {
		a := quarterHourAlarm(3, 0, c.missing)
		if ev := a.Evaluate(nil, at); ev.State != c.none {
			t.Errorf("%s, no data: %s, want %s", c.missing, ev, c.none)
		}
		if ev := a.Evaluate(oneBreach, at); ev.State != c.one {
			t.Errorf("%s, one breaching period of 3: %s, want %s", c.missing, ev, c.one)
		}
	}
	// With missing data breaching, one present period that does not breach keeps it quiet.
	a := quarterHourAlarm(3, 0, "breaching")
	if ev := a.Evaluate([]Datapoint{point(t0.Add(20*time.Minute), 1)}, at); ev.State != OK {
		t.Errorf("breaching, one quiet period of 3: %s", ev)
	}
}

// The alarm reads one series: its namespace, its metric and exactly its dimensions.
func TestOnlyTheAlarmsSeriesCounts(t *testing.T) {
	a := quarterHourAlarm(1, 1, "notBreaching")
	others := []Datapoint{
		{Namespace: "Other", Metric: "M", Dimensions: map[string]string{"Environment": "test"}, Timestamp: t0, Values: []float64{9}},
		{Namespace: "N", Metric: "Other", Dimensions: map[string]string{"Environment": "test"}, Timestamp: t0, Values: []float64{9}},
		{Namespace: "N", Metric: "M", Dimensions: map[string]string{"Environment": "prod"}, Timestamp: t0, Values: []float64{9}},
		{Namespace: "N", Metric: "M", Dimensions: map[string]string{"Environment": "test", "Kind": "x"}, Timestamp: t0, Values: []float64{9}},
		{Namespace: "N", Metric: "M", Dimensions: map[string]string{}, Timestamp: t0, Values: []float64{9}},
	}
	if ev := a.Evaluate(others, t0.Add(15*time.Minute)); ev.State != OK || ev.Periods[0].Samples != 0 {
		t.Errorf("other series counted: %s", ev)
	}
}

func TestEvaluatePanicsOnAnUnsupportedAlarm(t *testing.T) {
	a := quarterHourAlarm(1, 1, "missing")
	a.Statistic = "p99"
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "p99") {
			t.Errorf("recovered %v", p)
		}
	}()
	a.Evaluate(nil, t0)
}

// orphanLinesDualSet are the OrphanedResources lines of one cleanup run as the emitter wrote
// them before totals had lines of their own: one line per resource type, each declaring
// [Environment] and [Environment, ResourceType], so the [Environment] series receives every
// type's count as a data point of its own.
func orphanLinesDualSet(at time.Time, counts map[string]int) string {
	var b strings.Builder
	for _, rt := range []string{"schema", "role", "redis", "redis_user", "mapping", "route_cache"} {
		fmt.Fprintf(&b, `{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"DiscordSandboxes","Dimensions":[["Environment"],["Environment","ResourceType"]],"Metrics":[{"Name":"OrphanedResources","Unit":"Count"}]}]},"Environment":"test","ResourceType":%q,"OrphanedResources":%d}`+"\n",
			at.UnixMilli(), rt, counts[rt])
	}
	return b.String()
}

// orphanLinesTotal are the same run's lines with the total on a line of its own, declaring
// [Environment] only, and each type on a line declaring [Environment, ResourceType] only.
func orphanLinesTotal(at time.Time, counts map[string]int) string {
	total := 0
	for _, n := range counts {
		total += n
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"DiscordSandboxes","Dimensions":[["Environment"]],"Metrics":[{"Name":"OrphanedResources","Unit":"Count"}]}]},"Environment":"test","OrphanedResources":%d}`+"\n",
		at.UnixMilli(), total)
	for _, rt := range []string{"schema", "role", "redis", "redis_user", "mapping", "route_cache"} {
		fmt.Fprintf(&b, `{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"DiscordSandboxes","Dimensions":[["Environment","ResourceType"]],"Metrics":[{"Name":"OrphanedResources","Unit":"Count"}]}]},"Environment":"test","ResourceType":%q,"OrphanedResources":%d}`+"\n",
			at.UnixMilli(), rt, counts[rt])
	}
	return b.String()
}

// TestOrphanAlarmCannotFireOnDualSetLines is the defect this package was built for: with
// the old line layout, the orphaned-resources alarm (Minimum over an hour) sees the zero
// counts of the other types and never fires, not even for 7 orphaned Redis namespaces found
// by every run for an hour. With the total on its own line it fires, and it stays quiet at
// the threshold.
func TestOrphanAlarmCannotFireOnDualSetLines(t *testing.T) {
	a := Load(t, "orphaned-resources")
	runs := func(layout func(time.Time, map[string]int) string, counts map[string]int) []byte {
		var b strings.Builder
		for q := range 4 {
			b.WriteString(layout(t0.Add(time.Duration(q)*15*time.Minute+2*time.Minute), counts))
		}
		return []byte(b.String())
	}
	at := t0.Add(time.Hour)
	redisOnly := map[string]int{"redis": 7}
	spread := map[string]int{"schema": 3, "redis": 3}
	atThreshold := map[string]int{"schema": 3, "redis": 2}

	ev := Expect(t, a, runs(orphanLinesDualSet, redisOnly), at, OK)
	if ev.Periods[0].Value != 0 {
		t.Errorf("dual-set lines: Minimum %v, want 0 (the other types' counts)", ev.Periods[0].Value)
	}
	Expect(t, a, runs(orphanLinesDualSet, spread), at, OK)

	Expect(t, a, runs(orphanLinesTotal, redisOnly), at, Alarm)
	Expect(t, a, runs(orphanLinesTotal, spread), at, Alarm)
	Expect(t, a, runs(orphanLinesTotal, atThreshold), at, OK)
}
