package alarmtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the start of a quarter hour: the periods of every alarm align on it.
var t0 = time.Date(2026, 1, 8, 13, 0, 0, 0, time.UTC)

func ms(t time.Time) int64 { return t.UnixMilli() }

func TestParseEMFPublishesUnderEveryDimensionSet(t *testing.T) {
	lines := fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"DiscordSandboxes","Dimensions":[["Environment"],["Environment","Kind"]],"Metrics":[{"Name":"RoutingErrors","Unit":"Count"},{"Name":"PoisonDeadLettered","Unit":"Count"}]}]},"Environment":"test","Kind":"malformed","RoutingErrors":3,"PoisonDeadLettered":2}

{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"DiscordSandboxes","Dimensions":[["Environment"]],"Metrics":[{"Name":"ApiLatency","Unit":"Milliseconds"}]}]},"Environment":"test","ApiLatency":[12.5,3]}
`, ms(t0), ms(t0.Add(time.Minute)))
	points, err := ParseEMF([]byte(lines))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range points {
		var dims []string
		for _, k := range p.DimensionNames() {
			dims = append(dims, k+"="+p.Dimensions[k])
		}
		got = append(got, fmt.Sprintf("%s %s %s {%s} %v", p.Timestamp.Format("15:04"), p.Namespace, p.Metric, strings.Join(dims, ","), p.Values))
	}
	want := []string{
		"13:00 DiscordSandboxes RoutingErrors {Environment=test} [3]",
		"13:00 DiscordSandboxes PoisonDeadLettered {Environment=test} [2]",
		"13:00 DiscordSandboxes RoutingErrors {Environment=test,Kind=malformed} [3]",
		"13:00 DiscordSandboxes PoisonDeadLettered {Environment=test,Kind=malformed} [2]",
		"13:01 DiscordSandboxes ApiLatency {Environment=test} [12.5 3]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("points\n got %q\nwant %q", got, want)
	}
}

func TestParseEMFRejectsWhatCloudWatchRejects(t *testing.T) {
	cases := map[string]string{
		"not JSON":          `{"_aws":`,
		"no _aws":           `{"Environment":"test","CleanupRuns":1}`,
		"no timestamp":      `{"_aws":{"CloudWatchMetrics":[]},"CleanupRuns":1}`,
		"dimension missing": `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Environment"]],"Metrics":[{"Name":"CleanupRuns"}]}]},"CleanupRuns":1}`,
		"dimension number":  `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Environment"]],"Metrics":[{"Name":"CleanupRuns"}]}]},"Environment":1,"CleanupRuns":1}`,
		"metric missing":    `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Environment"]],"Metrics":[{"Name":"CleanupRuns"}]}]},"Environment":"test"}`,
		"metric null":       `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Environment"]],"Metrics":[{"Name":"CleanupRuns"}]}]},"Environment":"test","CleanupRuns":null}`,
		"metric string":     `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Environment"]],"Metrics":[{"Name":"CleanupRuns"}]}]},"Environment":"test","CleanupRuns":"1"}`,
		"empty values":      `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Environment"]],"Metrics":[{"Name":"CleanupRuns"}]}]},"Environment":"test","CleanupRuns":[]}`,
	}
	for name, line := range cases {
		t.Run(name, func(t *testing.T) {
			if points, err := ParseEMF([]byte(line)); err == nil {
				t.Errorf("accepted, points %+v", points)
			}
		})
	}
}

func TestRetimeMovesEveryLineAndKeepsTheValues(t *testing.T) {
	lines := fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Environment"]],"Metrics":[{"Name":"CleanupRuns","Unit":"Count"}]}]},"Environment":"test","CleanupRuns":1}
{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Environment"]],"Metrics":[{"Name":"CleanupDuration","Unit":"Milliseconds"}]}]},"Environment":"test","CleanupDuration":0.125}
`, ms(t0), ms(t0.Add(time.Hour)))
	at := t0.Add(-36 * time.Hour)
	moved, err := Retime([]byte(lines), at)
	if err != nil {
		t.Fatal(err)
	}
	points, err := ParseEMF(moved)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 2 {
		t.Fatalf("points %+v", points)
	}
	for _, p := range points {
		if !p.Timestamp.Equal(at) {
			t.Errorf("%s at %v, want %v", p.Metric, p.Timestamp, at)
		}
	}
	if points[0].Values[0] != 1 || points[1].Values[0] != 0.125 {
		t.Errorf("values changed: %+v", points)
	}
}
