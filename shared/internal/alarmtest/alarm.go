package alarmtest

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// State is the state of an alarm.
type State string

// The states an evaluation ends in.
const (
	OK               State = "OK"
	Alarm            State = "ALARM"
	InsufficientData State = "INSUFFICIENT_DATA"
)

// Statistics, comparison operators and missing-data treatments the evaluator supports
// (CloudWatch's names).
var (
	statistics  = []string{"Sum", "Minimum", "Maximum", "Average", "SampleCount"}
	comparisons = map[string]func(v, threshold float64) bool{
		"GreaterThanThreshold":          func(v, t float64) bool { return v > t },
		"GreaterThanOrEqualToThreshold": func(v, t float64) bool { return v >= t },
		"LessThanThreshold":             func(v, t float64) bool { return v < t },
		"LessThanOrEqualToThreshold":    func(v, t float64) bool { return v <= t },
	}
	missingDataTreatments = []string{"missing", "notBreaching", "breaching", "ignore"}
)

// MetricAlarm is a CloudWatch alarm on one metric, as Terraform's aws_cloudwatch_metric_alarm
// defines it.
type MetricAlarm struct {
	// Name is the key of the alarm in the metric_alarms local (the alarm name without its
	// "<name>-" prefix).
	Name       string
	Namespace  string
	MetricName string
	// Dimensions are the exact dimensions of the series the alarm reads.
	Dimensions         map[string]string
	Statistic          string
	ComparisonOperator string
	Threshold          float64
	Period             time.Duration
	EvaluationPeriods  int
	// DatapointsToAlarm is how many of the evaluated periods must breach; 0 means
	// EvaluationPeriods (Terraform's default).
	DatapointsToAlarm int
	// TreatMissingData is missing (when empty, CloudWatch's default), notBreaching,
	// breaching or ignore.
	TreatMissingData string
}

// withDefaults fills in what CloudWatch defaults.
func (a MetricAlarm) withDefaults() MetricAlarm {
	if a.DatapointsToAlarm == 0 {
		a.DatapointsToAlarm = a.EvaluationPeriods
	}
	if a.TreatMissingData == "" {
		a.TreatMissingData = "missing"
	}
	return a
}

// validate reports a definition the evaluator cannot evaluate as CloudWatch would.
func (a MetricAlarm) validate() error {
	a = a.withDefaults()
	var problems []string
	if a.Namespace == "" || a.MetricName == "" {
		problems = append(problems, "no namespace or metric name")
	}
	if !slices.Contains(statistics, a.Statistic) {
		problems = append(problems, fmt.Sprintf("statistic %q is not one of %v", a.Statistic, statistics))
	}
	if comparisons[a.ComparisonOperator] == nil {
		problems = append(problems, fmt.Sprintf("comparison operator %q is not supported", a.ComparisonOperator))
	}
	if a.Period <= 0 || a.Period%time.Second != 0 {
		problems = append(problems, fmt.Sprintf("period %v is not a positive number of seconds", a.Period))
	}
	if a.EvaluationPeriods < 1 || a.DatapointsToAlarm < 1 || a.DatapointsToAlarm > a.EvaluationPeriods {
		problems = append(problems, fmt.Sprintf("datapoints to alarm %d of %d evaluation periods", a.DatapointsToAlarm, a.EvaluationPeriods))
	}
	if !slices.Contains(missingDataTreatments, a.TreatMissingData) {
		problems = append(problems, fmt.Sprintf("treat_missing_data %q is not one of %v", a.TreatMissingData, missingDataTreatments))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// PeriodResult is one evaluated period.
type PeriodResult struct {
	Start time.Time
	// Samples counts the values of the period; 0 means its data is missing.
	Samples int
	// Value is the alarm's statistic over the samples (NaN when missing).
	Value float64
	// Breaching says whether the period counts as breaching, after treat_missing_data.
	Breaching bool
}

// Evaluation is the outcome of evaluating an alarm at one time.
type Evaluation struct {
	State State
	// Periods are the evaluated periods, oldest first.
	Periods []PeriodResult
}

func (e Evaluation) String() string {
	var b strings.Builder
	b.WriteString(string(e.State))
	for _, p := range e.Periods {
		fmt.Fprintf(&b, "; %s ", p.Start.Format("15:04:05"))
		if p.Samples == 0 {
			b.WriteString("missing")
		} else {
			fmt.Fprintf(&b, "%g of %d samples", p.Value, p.Samples)
		}
		if p.Breaching {
			b.WriteString(" (breaching)")
		}
	}
	return b.String()
}

// Evaluate decides the alarm's state at time at from the data points: the
// EvaluationPeriods most recent whole periods that ended at or before at (periods are aligned
// on the Unix epoch) are evaluated, each with the statistic over the values of the points of
// the alarm's namespace and metric whose dimensions are exactly the alarm's. It panics on a
// definition that MetricAlarms would reject (a test bug).
func (a MetricAlarm) Evaluate(points []Datapoint, at time.Time) Evaluation {
	if err := a.validate(); err != nil {
		panic(fmt.Sprintf("alarmtest: alarm %s: %v", a.Name, err))
	}
	a = a.withDefaults()
	period := a.Period.Milliseconds()
	lastEnd := floorDiv(at.UnixMilli(), period) * period
	firstStart := lastEnd - int64(a.EvaluationPeriods)*period
	samples := make([][]float64, a.EvaluationPeriods)
	for _, p := range points {
		ts := p.Timestamp.UnixMilli()
		if p.Namespace != a.Namespace || p.Metric != a.MetricName || !maps.Equal(p.Dimensions, a.Dimensions) ||
			ts < firstStart || ts >= lastEnd {
			continue
		}
		i := (ts - firstStart) / period
		samples[i] = append(samples[i], p.Values...)
	}

	ev := Evaluation{Periods: make([]PeriodResult, a.EvaluationPeriods)}
	breaching, present := 0, 0
	for i, s := range samples {
		r := PeriodResult{Start: time.UnixMilli(firstStart + int64(i)*period).UTC(), Samples: len(s), Value: math.NaN()}
		if len(s) > 0 {
			present++
			r.Value = statistic(a.Statistic, s)
			r.Breaching = comparisons[a.ComparisonOperator](r.Value, a.Threshold)
		} else {
			r.Breaching = a.TreatMissingData == "breaching"
		}
		if r.Breaching {
			breaching++
		}
		ev.Periods[i] = r
	}
	switch {
	case breaching >= a.DatapointsToAlarm:
		ev.State = Alarm
	case present == 0 && (a.TreatMissingData == "missing" || a.TreatMissingData == "ignore"):
		ev.State = InsufficientData
	default:
		ev.State = OK
	}
	return ev
}

// statistic computes a CloudWatch statistic over a period's values (at least one).
func statistic(name string, values []float64) float64 {
	sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, v := range values {
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	switch name {
	case "Sum":
		return sum
	case "Minimum":
		return lo
	case "Maximum":
		return hi
	case "Average":
		return sum / float64(len(values))
	case "SampleCount":
		return float64(len(values))
	}
	panic("alarmtest: unsupported statistic " + name)
}

// floorDiv divides rounding towards minus infinity, so that times before the epoch align too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
