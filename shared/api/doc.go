// Package api is the sandbox management API (docs/api.md): one net/http handler serving the
// routes of docs/api.md, the adapter that runs it for API Gateway HTTP API payload-2.0
// events, and the local mode that serves it on a loopback port behind bearer tokens
// (docs/architecture.md, "Local mode").
//
// The handler depends on small interfaces declared here (the control plane, the per-sandbox
// resources, the route cache, the teardown and the cleanup admin service) and on the stores
// themselves for health checks. The caller's identity reaches it through the request
// context (WithPrincipal), set by the adapters only: the Lambda adapter from the IAM
// authorizer context, the local server from a token. AWS event types stop at the adapter.
package api
