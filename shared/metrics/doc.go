// Package metrics is the metric catalog of the sandbox suite (DESIGN §7) and the emitter that
// publishes its values as CloudWatch embedded metric format (EMF) lines.
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
// Lines: Flush writes one JSON line per distinct set of dimension values. Each line declares,
// for each of its metrics, all the dimension sets the catalog gives that metric, with explicit
// dimension sets only: the lines never carry "Dimensions": null nor the ServiceName and
// ServiceType dimensions that github.com/prozz/aws-embedded-metrics-golang adds by default.
// That library writes the lines (one emf.Logger per line, so its lack of locking does not
// matter); it can hold only one value per metric name in a line and has no EMF values arrays,
// so the first line for a set of dimension values holds the counts, the gauges and the first
// Milliseconds samples, and the k-th Milliseconds sample of a series goes on the k-th line.
package metrics
