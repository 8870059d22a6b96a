package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prozz/aws-embedded-metrics-golang/emf"

	"github.com/botplatform/discord-sandboxes/shared/logkey"
)

// ErrRejected wraps every reason a recording was dropped.
var ErrRejected = errors.New("metric recording rejected")

// maxDimensionValueLen is CloudWatch's limit on a dimension value.
const maxDimensionValueLen = 1024

// Emitter writes EMF lines for one process. It is safe for concurrent use: concurrent Flushes
// write whole lines, never interleaved.
type Emitter struct {
	environment string
	rejected    atomic.Int64

	mu  sync.Mutex // serialises writes to out
	out io.Writer
	log *slog.Logger
}

// EmitterOption configures NewEmitter.
type EmitterOption func(*Emitter)

// WithLogger makes the Emitter log the recordings it drops through log (slog.Default()
// otherwise).
func WithLogger(log *slog.Logger) EmitterOption {
	return func(e *Emitter) { e.log = log }
}

// NewEmitter returns an Emitter writing to out (os.Stdout in Lambda) and stamping every line
// with the Environment dimension value environment, the function's ENVIRONMENT (whose
// default is config's); an empty one is refused like any invalid dimension value.
func NewEmitter(out io.Writer, environment string, opts ...EmitterOption) (*Emitter, error) {
	if err := checkDimensionValue(environment); err != nil {
		return nil, fmt.Errorf("metrics: environment %q: %w", environment, err)
	}
	e := &Emitter{environment: environment, out: out, log: slog.Default()}
	for _, opt := range opts {
		opt(e)
	}
	return e, nil
}

// Environment returns the Environment dimension value of every line.
func (e *Emitter) Environment() string { return e.environment }

// Rejected returns how many recordings, over all Recorders, were dropped as invalid.
func (e *Emitter) Rejected() int64 { return e.rejected.Load() }

// Begin starts collecting values for one invocation. A nil Emitter returns a nil Recorder,
// whose methods do nothing.
func (e *Emitter) Begin() *Recorder {
	if e == nil {
		return nil
	}
	return &Recorder{emitter: e, series: map[string]*series{}, gauges: map[string]float64{}}
}

func (e *Emitter) write(p []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.out.Write(p); err != nil {
		return fmt.Errorf("metrics: writing EMF lines: %w", err)
	}
	return nil
}

// Recorder collects the metric values of one invocation; it is safe for concurrent use.
// The methods of a nil Recorder do nothing, so code can run without metrics.
type Recorder struct {
	emitter *Emitter

	mu     sync.Mutex
	series map[string]*series
	// gauges holds the last Gauge value per metric and full set of dimension values, so that
	// a total over a breakdown is the sum of the breakdown values' last values.
	gauges map[string]float64
	errs   []error
}

// Count adds n to a Count metric.
func (r *Recorder) Count(m Metric, n int, dims ...any) {
	r.record(m, aggregateSum, float64(n), dims)
}

// Gauge sets a Count metric to v; the last value recorded before Flush wins.
func (r *Recorder) Gauge(m Metric, v int, dims ...any) {
	r.record(m, aggregateLast, float64(v), dims)
}

// Milliseconds records one sample of a Milliseconds metric.
func (r *Recorder) Milliseconds(m Metric, d time.Duration, dims ...any) {
	r.record(m, aggregateSamples, float64(d)/float64(time.Millisecond), dims)
}

// Err returns every rejected recording of this Recorder, joined, or nil.
func (r *Recorder) Err() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// Flush writes the values recorded since the previous Flush as EMF lines, in one write.
func (r *Recorder) Flush() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	taken := r.series
	r.series = map[string]*series{}
	r.gauges = map[string]float64{}
	r.mu.Unlock()
	if len(taken) == 0 {
		return nil
	}
	return r.emitter.write(encode(taken, r.emitter.environment, time.Now()))
}

type aggregation int

const (
	aggregateSum aggregation = iota
	aggregateLast
	aggregateSamples
)

func (a aggregation) method() string {
	return [...]string{"Count", "Gauge", "Milliseconds"}[a]
}

func (a aggregation) unit() string {
	if a == aggregateSamples {
		return unitMilliseconds
	}
	return unitCount
}

// series is one metric under one of its dimension sets, with one set of values of its
// dimensions besides Environment: labels is empty for the total of a metric with a breakdown.
type series struct {
	entry     *catalogEntry
	labels    []label // in entry.keys order, only the dimensions of the series' set
	labelsKey string
	agg       aggregation
	value     float64
	samples   []float64
}

type label struct {
	key   Dimension
	value string
}

// valueAt returns the value the series puts on the k-th line of its dimension values.
func (s *series) valueAt(k int) (float64, bool) {
	if s.agg == aggregateSamples {
		if k < len(s.samples) {
			return s.samples[k], true
		}
		return 0, false
	}
	return s.value, k == 0
}

func (r *Recorder) record(m Metric, agg aggregation, v float64, dims []any) {
	if r == nil {
		return
	}
	entry, labels, err := resolve(m, agg, dims)
	if err == nil {
		err = r.add(entry, labels, agg, v)
	}
	if err != nil {
		r.reject(m.Name, err)
	}
}

// add records v in every series the recording is published under: one per dimension set of
// the metric, its labels cut down to that set's dimensions. For a metric with a breakdown
// ([Environment] and [Environment, D]) that is the breakdown value's series and the total.
func (r *Recorder) add(entry *catalogEntry, labels []label, agg aggregation, v float64) error {
	type target struct {
		key, labelsKey string
		labels         []label
	}
	targets := make([]target, 0, len(entry.projections))
	for _, keep := range entry.projections {
		projected := make([]label, 0, len(keep))
		for _, l := range labels {
			if slices.Contains(keep, l.key) {
				projected = append(projected, l)
			}
		}
		lk := labelsKeyOf(projected)
		targets = append(targets, target{key: entry.metric.Name + "\x00" + lk, labelsKey: lk, labels: projected})
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tg := range targets {
		if s := r.series[tg.key]; s != nil && s.agg != agg {
			return fmt.Errorf("%w: %s: recorded with %s after %s", ErrRejected, entry.metric.Name, agg.method(), s.agg.method())
		}
	}
	// A gauge moves every series it is part of by the change of its own last value.
	delta := v
	if agg == aggregateLast {
		gaugeKey := entry.metric.Name + "\x00" + labelsKeyOf(labels)
		delta = v - r.gauges[gaugeKey]
		r.gauges[gaugeKey] = v
	}
	for _, tg := range targets {
		s := r.series[tg.key]
		if s == nil {
			s = &series{entry: entry, labels: tg.labels, labelsKey: tg.labelsKey, agg: agg}
			r.series[tg.key] = s
		}
		switch agg {
		case aggregateSum, aggregateLast:
			s.value += delta
		case aggregateSamples:
			s.samples = append(s.samples, v)
		}
	}
	return nil
}

// labelsKeyOf identifies a set of dimension values; dimension values hold no control
// characters, so NUL cannot be ambiguous.
func labelsKeyOf(labels []label) string {
	var b strings.Builder
	for _, l := range labels {
		b.WriteString(string(l.key))
		b.WriteByte(0)
		b.WriteString(l.value)
		b.WriteByte(0)
	}
	return b.String()
}

func (r *Recorder) reject(name string, err error) {
	r.emitter.rejected.Add(1)
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.emitter.log.Warn("metric value dropped", "metric", name, logkey.Error, err)
}

// resolve checks a recording against the catalog and returns the dimension values in the
// catalog's order.
func resolve(m Metric, agg aggregation, dims []any) (*catalogEntry, []label, error) {
	reject := func(format string, args ...any) (*catalogEntry, []label, error) {
		return nil, nil, fmt.Errorf("%w: %s: %s", ErrRejected, m.Name, fmt.Sprintf(format, args...))
	}
	entry, ok := catalogIndex[m.Name]
	if !ok {
		return reject("not in the catalog")
	}
	if entry.metric.Unit != agg.unit() {
		return reject("%s used on a metric with unit %s", agg.method(), entry.metric.Unit)
	}
	if len(dims)%2 != 0 {
		return reject("dimension %v has no value", dims[len(dims)-1])
	}
	given := make(map[Dimension]string, len(dims)/2)
	for i := 0; i < len(dims); i += 2 {
		var key Dimension
		switch k := dims[i].(type) {
		case Dimension:
			key = k
		case string:
			key = Dimension(k)
		default:
			return reject("dimension key %v is a %T, not a Dimension", dims[i], dims[i])
		}
		// Any string type will do, so callers may pass their own enums (type Tier string).
		rv := reflect.ValueOf(dims[i+1])
		if rv.Kind() != reflect.String {
			return reject("dimension %s: value %v is a %T, not a string", key, dims[i+1], dims[i+1])
		}
		value := rv.String()
		if key == DimEnvironment {
			return reject("dimension %s is set by the Emitter", key)
		}
		if !slices.Contains(entry.keys, key) {
			return reject("dimension %s is not declared in the catalog (declared: %v)", key, entry.keys)
		}
		if _, dup := given[key]; dup {
			return reject("dimension %s given twice", key)
		}
		if err := checkDimensionValue(value); err != nil {
			return reject("dimension %s: %v", key, err)
		}
		given[key] = value
	}
	labels := make([]label, 0, len(entry.keys))
	for _, key := range entry.keys {
		value, ok := given[key]
		if !ok {
			return reject("dimension %s is missing", key)
		}
		labels = append(labels, label{key, value})
	}
	return entry, labels, nil
}

// checkDimensionValue applies CloudWatch's rules: 1 to 1024 ASCII characters, no control
// characters, at least one that is not whitespace.
func checkDimensionValue(v string) error {
	if len(v) > maxDimensionValueLen {
		return fmt.Errorf("value is %d bytes long, the limit is %d", len(v), maxDimensionValueLen)
	}
	if strings.TrimSpace(v) == "" {
		return errors.New("value is empty or blank")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f {
			return fmt.Errorf("value %q holds a byte (%#x) that is not printable ASCII", v, c)
		}
	}
	return nil
}

// catalogEntry is a catalog metric with what the emitter derives from it.
type catalogEntry struct {
	metric Metric
	order  int         // position in Catalog(), for a stable line layout
	keys   []Dimension // dimensions besides Environment that a recording must give
	// projections lists, per dimension set, its dimensions besides Environment: a recording
	// is added to one series per set.
	projections [][]Dimension
}

var catalogIndex = indexCatalog()

func indexCatalog() map[string]*catalogEntry {
	index := map[string]*catalogEntry{}
	for i, m := range Catalog() {
		e := &catalogEntry{metric: m, order: i}
		for _, set := range m.DimensionSets {
			var keep []Dimension
			for _, d := range set {
				if d == DimEnvironment {
					continue
				}
				keep = append(keep, d)
				if !slices.Contains(e.keys, d) {
					e.keys = append(e.keys, d)
				}
			}
			e.projections = append(e.projections, keep)
		}
		index[m.Name] = e
	}
	return index
}

// encode renders series as EMF lines: one line per distinct set of dimension values, and for
// Milliseconds series with several samples, one more line per extra sample. Every series of a
// line has the same dimensions, so a line declares one dimension set: [Environment] for the
// totals and the metrics without a breakdown, [Environment, D] for a breakdown value of D.
// CloudWatch publishes each value of a line under every set the line declares; one set per
// line keeps each value in exactly one series.
func encode(all map[string]*series, environment string, now time.Time) []byte {
	groups := map[string][]*series{}
	for _, s := range all {
		groups[s.labelsKey] = append(groups[s.labelsKey], s)
	}
	groupKeys := make([]string, 0, len(groups))
	for k := range groups {
		groupKeys = append(groupKeys, k)
	}
	slices.Sort(groupKeys) // the Environment-only line (empty key) comes first

	var buf bytes.Buffer
	for _, gk := range groupKeys {
		group := groups[gk]
		slices.SortFunc(group, func(a, b *series) int { return a.entry.order - b.entry.order })
		lines := 1
		for _, s := range group {
			lines = max(lines, len(s.samples))
		}
		for k := range lines {
			writeLine(&buf, group, k, environment, now)
		}
	}
	return buf.Bytes()
}

// writeLine writes the k-th line of one group of series sharing their dimension values.
func writeLine(buf *bytes.Buffer, group []*series, k int, environment string, now time.Time) {
	// WithoutDimensions keeps the library from adding ServiceName/ServiceType dimension sets
	// and Lambda properties; the directive below carries the group's one dimension set.
	logger := emf.New(emf.WithWriter(buf), emf.WithoutDimensions(), emf.WithTimestamp(now))
	var directive *emf.Context
	for _, s := range group {
		v, ok := s.valueAt(k)
		if !ok {
			continue
		}
		if directive == nil {
			directive = logger.NewContext().Namespace(Namespace).DimensionSet(dimensionValues(environment, s.labels)...)
		}
		directive.MetricFloatAs(s.entry.metric.Name, v, emf.MetricUnit(s.entry.metric.Unit))
	}
	logger.Log()
}

// dimensionValues is the one dimension set of a line: Environment, then the series' labels.
func dimensionValues(environment string, labels []label) []emf.Dimension {
	out := make([]emf.Dimension, 0, 1+len(labels))
	out = append(out, emf.NewDimension(string(DimEnvironment), environment))
	for _, l := range labels {
		out = append(out, emf.NewDimension(string(l.key), l.value))
	}
	return out
}
