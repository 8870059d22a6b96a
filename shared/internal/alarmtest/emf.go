package alarmtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Datapoint is one value (or several, from an EMF values array) that CloudWatch publishes
// from an EMF line: one metric under one dimension set.
type Datapoint struct {
	Namespace string
	Metric    string
	// Dimensions maps every dimension of the set to its value on the line.
	Dimensions map[string]string
	Timestamp  time.Time
	Values     []float64
}

// DimensionNames returns the dimension names of the point's set, sorted.
func (d Datapoint) DimensionNames() []string {
	names := make([]string, 0, len(d.Dimensions))
	for k := range d.Dimensions {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// emfMetadata is the _aws member of an EMF line.
type emfMetadata struct {
	Timestamp         *int64
	CloudWatchMetrics []struct {
		Namespace  string
		Dimensions [][]string
		Metrics    []struct{ Name string }
	}
}

// ParseEMF returns the data points of EMF lines (one JSON object per line; blank lines are
// skipped). A line CloudWatch would reject (no _aws member or timestamp, a dimension without
// a string member, a metric without a numeric member) is an error.
func ParseEMF(lines []byte) ([]Datapoint, error) {
	var out []Datapoint
	sc := bufio.NewScanner(bytes.NewReader(lines))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		points, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("alarmtest: EMF line %d: %w: %s", n, err, line)
		}
		out = append(out, points...)
	}
	return out, sc.Err()
}

func parseLine(line []byte) ([]Datapoint, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(line, &members); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	raw, ok := members["_aws"]
	if !ok {
		return nil, errors.New("no _aws member")
	}
	var meta emfMetadata
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("_aws: %v", err)
	}
	if meta.Timestamp == nil {
		return nil, errors.New("_aws has no Timestamp")
	}
	at := time.UnixMilli(*meta.Timestamp).UTC()
	var out []Datapoint
	for _, d := range meta.CloudWatchMetrics {
		for _, set := range d.Dimensions {
			dims := make(map[string]string, len(set))
			for _, key := range set {
				var v string
				if err := json.Unmarshal(members[key], &v); err != nil {
					return nil, fmt.Errorf("dimension %s has no string member", key)
				}
				dims[key] = v
			}
			for _, m := range d.Metrics {
				values, err := metricValues(members[m.Name])
				if err != nil {
					return nil, fmt.Errorf("metric %s: %v", m.Name, err)
				}
				out = append(out, Datapoint{Namespace: d.Namespace, Metric: m.Name, Dimensions: dims, Timestamp: at, Values: values})
			}
		}
	}
	return out, nil
}

// metricValues reads a metric member: a number or a non-empty array of numbers.
func metricValues(raw json.RawMessage) ([]float64, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, errors.New("no member")
	}
	switch v := v.(type) {
	case float64:
		return []float64{v}, nil
	case []any:
		values := make([]float64, 0, len(v))
		for _, e := range v {
			f, ok := e.(float64)
			if !ok {
				return nil, fmt.Errorf("values array holds %v", e)
			}
			values = append(values, f)
		}
		if len(values) > 0 {
			return values, nil
		}
	}
	return nil, fmt.Errorf("member %s is not a number nor an array of numbers", strings.TrimSpace(string(raw)))
}

// Retime sets the _aws.Timestamp of every EMF line to at, so that lines captured in one
// test can stand for invocations at chosen times. Members keep their values; their order on
// the line may change.
func Retime(lines []byte, at time.Time) ([]byte, error) {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(lines))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(line, &members); err != nil {
			return nil, fmt.Errorf("alarmtest: retime: not a JSON object: %s", line)
		}
		var meta map[string]json.RawMessage
		if err := json.Unmarshal(members["_aws"], &meta); err != nil {
			return nil, fmt.Errorf("alarmtest: retime: no _aws object: %s", line)
		}
		meta["Timestamp"] = json.RawMessage(fmt.Sprint(at.UnixMilli()))
		var err error
		if members["_aws"], err = json.Marshal(meta); err != nil {
			return nil, err
		}
		b, err := json.Marshal(members)
		if err != nil {
			return nil, err
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.Bytes(), sc.Err()
}
