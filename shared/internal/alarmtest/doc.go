// Package alarmtest evaluates the CloudWatch alarms of terraform/monitoring.tf on the EMF
// lines the code emits, so that a test can prove an alarm fires for its condition and stays
// quiet just below it: an alarm counts as wired only when such a test exists.
//
// It models what CloudWatch does with the lines and an alarm, no more:
//
//   - ParseEMF turns EMF lines into data points the way CloudWatch Logs extracts them: every
//     metric of a directive is published under every dimension set of that directive, with
//     the line's timestamp (a line declaring [Environment] and [Environment, Kind] feeds both
//     series).
//   - ParseModule reads the Terraform root module (hcl/v2) far enough to evaluate literal
//     locals; Module.MetricAlarms evaluates the alarms defined over the metric_alarms local
//     (the aws_cloudwatch_metric_alarm resource whose for_each is local.metric_alarms) as
//     that resource sets them: namespace, metric, dimensions, statistic, comparison,
//     threshold, period, evaluation periods, datapoints to alarm and missing-data treatment.
//   - MetricAlarm.Evaluate takes the data points of the alarm's metric whose dimensions are
//     exactly the alarm's, groups them into periods aligned on the Unix epoch, computes the
//     statistic (Sum, Minimum, Maximum, Average, SampleCount) per period and looks at the
//     evaluation_periods most recent periods that ended by the given time: ALARM when at least
//     datapoints_to_alarm of them breach (all of them by default), a period without data
//     counting as treat_missing_data says.
//
// Simplifications: only whole periods are evaluated (CloudWatch also looks at the period in
// progress), percentile statistics and metric math are not supported, and with
// treat_missing_data "ignore" an evaluation without any data is INSUFFICIENT_DATA where
// CloudWatch would keep the alarm's previous state.
//
// Load and Expect are the helpers of the scenario tests (alarms_test.go in shared/cleanup,
// shared/api and shared/routing); TestEverySeedAlarmIsProven fails when an alarm of
// metric_alarms has no scenario test that loads it.
package alarmtest
