package config

// Lifecycle is what the functions that create and tear down sandboxes (the api and cleanup)
// read alike: the shared settings, how sandboxes are torn down, and where the sandboxes'
// schemas and roles live. The router reads routes only, so it reads Shared alone.
type Lifecycle struct {
	Shared
	// Teardown is how sandboxes are torn down (LoadTeardown).
	Teardown Teardown
	// Workers is the database of the sandboxes' schemas and roles, when apart from the
	// control plane's (WorkerDatabase).
	Workers WorkerDatabase
}

// LoadLifecycle reads the shared, teardown and worker database settings; problems are
// reported with the Reader's others.
func LoadLifecycle(r *Reader) Lifecycle {
	return Lifecycle{Shared: LoadShared(r), Teardown: LoadTeardown(r), Workers: LoadWorkerDatabase(r)}
}
