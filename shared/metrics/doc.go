// Package metrics is the metric catalog of the sandbox suite (docs/metrics.md) and the emitter
// that publishes its values as CloudWatch embedded metric format (EMF) lines.
//
// catalog.go is the one home of every metric name, unit, dimension set and emitting function;
// the Terraform alarms, the dashboard and docs/metrics.md follow it.
//
// A process creates one Emitter (output, environment). Each invocation calls Begin for a
// Recorder, records from any number of goroutines and calls Flush once at the end:
//
//	rec := emitter.Begin()
//	rec.Count(metrics.EventsRouted, n, metrics.DimDestination, "sandbox")
//	rec.Milliseconds(metrics.RouterBatchDuration, time.Since(start))
//	err := rec.Flush()
//
// Dimensions are given as key/value pairs after the value: a Dimension (or plain string) key,
// then a value of any string type. The Environment value comes from
// the Emitter; every other dimension that the metric's catalog entry uses must be given, and
// no other. A recording that breaks these rules (or names a metric outside the catalog, or
// uses the wrong method for its unit) is dropped, logged through slog, counted by
// Emitter.Rejected and reported by Recorder.Err: a bad call never produces a malformed line.
//
// Aggregation within one Recorder, per metric and dimension values:
//   - Count adds up (a Count of 0 still publishes a zero data point);
//   - Gauge keeps the last value;
//   - Milliseconds keeps every sample, so percentiles stay right.
//
// Breakdowns: a metric whose catalog dimension sets are [Environment] and [Environment, D]
// is recorded with a value of D only; the Recorder aggregates it twice, in the series of
// that value of D and in the metric's total (Count: the sum over the values of D; Gauge: the
// sum of their last values; Milliseconds: every sample). In general a recording is added to
// one series per dimension set of its catalog entry.
//
// Lines: Flush writes one JSON line per distinct set of dimension values, and each line
// declares exactly one dimension set for all its metrics: [Environment] for the totals and
// the metrics without a breakdown, [Environment, D] for one value of D. CloudWatch
// publishes every value of a line under every set the line declares, so a line declaring
// both would put each breakdown value into the total series as a data point of its own,
// where statistics other than Sum (Minimum, Maximum, Average, SampleCount) see the
// breakdown values instead of the total. The lines carry explicit dimension sets only: never
// "Dimensions": null nor the ServiceName and ServiceType dimensions that
// github.com/prozz/aws-embedded-metrics-golang adds by default. That library writes the
// lines (one emf.Logger per line, so its lack of locking does not matter); it can hold only
// one value per metric name in a line and has no EMF values arrays, so the first line for a
// set of dimension values holds the counts, the gauges and the first Milliseconds samples,
// and the k-th Milliseconds sample of a series goes on the k-th line.
package metrics
