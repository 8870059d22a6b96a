// Package controlplane is the sandbox control plane in PostgreSQL (schema sandbox_control,
// docs/architecture.md, "Data model"): embedded migrations applied once each however many
// steps run, and the Manager that runs the sandbox lifecycle with conditional updates, an
// atomic per-owner quota, guild mappings enforced by the database, and an audit entry written
// in the same transaction as every change.
package controlplane
