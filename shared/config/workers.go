package config

import "strings"

// WorkerDatabase says where the sandboxes' schemas and roles live, the database their
// workers connect to: a database of a server apart from the control plane's, so that what a
// sandbox's code takes of its server (the shared lock table, connections, memory, disk, CPU)
// is never the control plane's (docs/security.md, "A database server of their own"). The
// api and cleanup read it (LoadWorkerDatabase); the router never does, for it reads routes
// only. Unset, the sandboxes live in the control plane's own database.
type WorkerDatabase struct {
	// URL (WORKER_DATABASE_URL) is used when set (local runs); otherwise SecretARN
	// (WORKER_DATABASE_SECRET_ARN) names a Secrets Manager secret in the RDS JSON shape.
	URL       string
	SecretARN string
}

// Apart reports whether the sandboxes live in a database of their own.
func (w WorkerDatabase) Apart() bool { return w.URL != "" || w.SecretARN != "" }

// LoadWorkerDatabase reads WORKER_DATABASE_URL and WORKER_DATABASE_SECRET_ARN; problems are
// reported with the Reader's others.
func LoadWorkerDatabase(r *Reader) WorkerDatabase {
	w := WorkerDatabase{
		URL:       r.String("WORKER_DATABASE_URL", ""),
		SecretARN: r.String("WORKER_DATABASE_SECRET_ARN", ""),
	}
	r.Check(w.URL == "" || w.SecretARN == "", "WORKER_DATABASE_URL", "set either WORKER_DATABASE_URL or WORKER_DATABASE_SECRET_ARN, not both")
	r.Check(w.SecretARN == "" || strings.HasPrefix(w.SecretARN, "arn:"), "WORKER_DATABASE_SECRET_ARN", "%q is not a Secrets Manager secret ARN", w.SecretARN)
	return w
}
