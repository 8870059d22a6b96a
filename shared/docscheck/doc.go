// Package docscheck holds the tests that keep docs/ true to the code: docs/metrics.md shows
// exactly the metric catalog of shared/metrics and the alarms of terraform/monitoring.tf,
// docs/configuration.md lists every environment variable the code reads with its real
// default, and docs/runbook.md covers every alarm and cites only commands, flags, queues and
// Terraform outputs that exist. The runbook's local procedures are run against a live dev
// stack by the devstack-tagged test, which scripts/demo-test.sh runs after the demo.
package docscheck
