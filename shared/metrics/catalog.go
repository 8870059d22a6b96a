package metrics

// This file is the one home of the metric catalog (docs/metrics.md): the code records only
// metrics listed here, and the Terraform alarms, the dashboard and docs/metrics.md follow this
// list.

// Namespace is the CloudWatch namespace of every metric in the catalog.
const Namespace = "DiscordSandboxes"

// Dimension is the name of a CloudWatch dimension.
type Dimension string

// Dimensions used by the catalog.
const (
	// DimEnvironment is on every metric; the Emitter fills in its value (ENVIRONMENT, whose
	// default, dev, is config.DefaultEnvironment).
	DimEnvironment Dimension = "Environment"
	// DimRoute is the API route template, e.g. "GET /sandboxes/{id}", never a concrete path.
	DimRoute Dimension = "Route"
	// DimTier is where a route lookup was answered: memory, redis or database.
	DimTier Dimension = "Tier"
	// DimDestination is where an event went: sandbox, production, dropped or parked.
	DimDestination Dimension = "Destination"
	// DimKind classifies a routing error: malformed, not_dispatch, too_large, invalid_guild_id
	// (poison), route_lookup, route_cache, delivery_stream, delivery_production,
	// delivery_dead_letter.
	DimKind Dimension = "Kind"
	// DimResourceType is the kind of orphaned resource, e.g. schema, role, redis, mapping.
	DimResourceType Dimension = "ResourceType"
)

// Function names one of the three Lambda functions.
type Function string

// The functions that emit metrics.
const (
	FunctionAPI     Function = "api"
	FunctionRouter  Function = "router"
	FunctionCleanup Function = "cleanup"
)

// Metric describes one CloudWatch metric of the catalog.
type Metric struct {
	// Name is the CloudWatch metric name.
	Name string
	// Unit is the CloudWatch unit name, e.g. "Count" or "Milliseconds".
	Unit string
	// DimensionSets lists every dimension combination the metric is published under;
	// each set starts with DimEnvironment. A recording gives the dimensions of every set and
	// is published under each, each on a line of its own (doc.go): with [Environment] and
	// [Environment, D], the [Environment] series holds the total over the values of D.
	DimensionSets [][]Dimension
	// EmittedBy lists the functions that record the metric.
	EmittedBy []Function
	// Description says what one unit of the metric means.
	Description string
}

// CloudWatch unit names used by the catalog.
const (
	unitCount        = "Count"
	unitMilliseconds = "Milliseconds"
)

// byEnvironment is the dimension sets of a metric published per environment only. A function,
// so that no two metrics share (and could alter) one slice.
func byEnvironment() [][]Dimension {
	return [][]Dimension{{DimEnvironment}}
}

// byEnvironmentAnd publishes a metric per environment (the total) and, in addition, per
// value of d (the breakdown).
func byEnvironmentAnd(d Dimension) [][]Dimension {
	return [][]Dimension{{DimEnvironment}, {DimEnvironment, d}}
}

// Sandbox lifecycle.
var (
	SandboxesCreated = Metric{
		Name: "SandboxesCreated", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI},
		Description: "Sandboxes whose provisioning finished and that reached status running.",
	}
	SandboxesDestroyed = Metric{
		Name: "SandboxesDestroyed", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Sandboxes whose teardown finished (status destroyed), by an API destroy or by cleanup.",
	}
	SandboxCreationDuration = Metric{
		Name: "SandboxCreationDuration", Unit: unitMilliseconds, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI},
		Description: "Time to provision a sandbox (schema clone, role, Redis namespace, guild mappings), one sample per creation attempt.",
	}
	SchemaCreationFailures = Metric{
		Name: "SchemaCreationFailures", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI},
		Description: "Failures to create a sandbox's PostgreSQL schema or role from the template; alarm above 3 in 5 minutes.",
	}
)

// API.
var (
	ApiRequests = Metric{
		Name: "ApiRequests", Unit: unitCount, DimensionSets: byEnvironmentAnd(DimRoute),
		EmittedBy:   []Function{FunctionAPI},
		Description: "API requests handled, in total and per route template.",
	}
	ApiLatency = Metric{
		Name: "ApiLatency", Unit: unitMilliseconds, DimensionSets: byEnvironmentAnd(DimRoute),
		EmittedBy:   []Function{FunctionAPI},
		Description: "Time the API handler spent on one request, in total and per route template.",
	}
)

// Cleanup: recorded by every cleanup run, scheduled (the cleanup function) or started through
// POST /v1/admin/cleanup (the api function). Expiry warnings are the scheduled run's alone.
var (
	ActiveSandboxes = Metric{
		Name: "ActiveSandboxes", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Gauge, once per cleanup run: sandboxes not yet destroyed. Alarm above 100.",
	}
	GuildMappings = Metric{
		Name: "GuildMappings", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Gauge, once per cleanup run: guilds mapped to a sandbox.",
	}
	CleanupRuns = Metric{
		Name: "CleanupRuns", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Cleanup runs started, scheduled or through POST /v1/admin/cleanup; an alarm fires when none is seen for 45 minutes.",
	}
	CleanupSandboxes = Metric{
		Name: "CleanupSandboxes", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Sandboxes a cleanup run tore down completely.",
	}
	CleanupFailures = Metric{
		Name: "CleanupFailures", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Sandbox teardowns that stopped at a failed step (retried next run); alarm above 0.",
	}
	CleanupDuration = Metric{
		Name: "CleanupDuration", Unit: unitMilliseconds, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Wall time of one cleanup run.",
	}
	CleanupSandboxesRemaining = Metric{
		Name: "CleanupSandboxesRemaining", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Sandboxes due for teardown that a run left for the next one (deadline reached or failed).",
	}
	CleanupClaimsLost = Metric{
		Name: "CleanupClaimsLost", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Teardowns a cleanup run stopped, writing nothing more, because its claim's lease expired and another run took the sandbox over (that run finishes it); not a failure.",
	}
	SandboxRedisUsersSwitchedOff = Metric{
		Name: "SandboxRedisUsersSwitchedOff", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Sandboxes' Redis users a cleanup run switched off because they held more connections on one node, or their keys more memory, than a sandbox may; alarm above 0.",
	}
	SandboxDatabaseRolesSwitchedOff = Metric{
		Name: "SandboxDatabaseRolesSwitchedOff", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Sandboxes' database roles whose password a cleanup run took away, ending their sessions, because their schema took more disk than a sandbox may; alarm above 0.",
	}
	OrphanedResources = Metric{
		Name: "OrphanedResources", Unit: unitCount, DimensionSets: byEnvironmentAnd(DimResourceType),
		EmittedBy:   []Function{FunctionAPI, FunctionCleanup},
		Description: "Resources older than the grace period with no sandbox in the control plane, in total and per resource type; alarm above 5 for 1 hour.",
	}
	ExpiryWarningsSent = Metric{
		Name: "ExpiryWarningsSent", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionCleanup},
		Description: "Warnings sent to owners of sandboxes about to expire.",
	}
)

// Router.
var (
	RouteLookups = Metric{
		Name: "RouteLookups", Unit: unitCount, DimensionSets: [][]Dimension{{DimEnvironment, DimTier}},
		EmittedBy:   []Function{FunctionRouter},
		Description: "Guild route lookups, per tier that answered: memory, redis or database.",
	}
	RouteLookupLatency = Metric{
		Name: "RouteLookupLatency", Unit: unitMilliseconds, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionRouter},
		Description: "Time to resolve the routes of all guilds of one batch.",
	}
	EventsRouted = Metric{
		Name: "EventsRouted", Unit: unitCount, DimensionSets: byEnvironmentAnd(DimDestination),
		EmittedBy:   []Function{FunctionRouter},
		Description: "Gateway events delivered, in total and per destination: sandbox, production, dropped or parked.",
	}
	RoutingErrors = Metric{
		Name: "RoutingErrors", Unit: unitCount, DimensionSets: byEnvironmentAnd(DimKind),
		EmittedBy:   []Function{FunctionRouter},
		Description: "Messages that failed to route, in total and per kind of error; alarm above 50 in 5 minutes.",
	}
	PoisonDeadLettered = Metric{
		Name: "PoisonDeadLettered", Unit: unitCount, DimensionSets: byEnvironmentAnd(DimKind),
		EmittedBy:   []Function{FunctionRouter},
		Description: "Poison messages the router sent to the ingress dead-letter queue itself, in total and per kind (also counted in RoutingErrors); the ingress-dlq-not-empty alarm hears of them at once.",
	}
	RouterBatchSize = Metric{
		Name: "RouterBatchSize", Unit: unitCount, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionRouter},
		Description: "Messages in one SQS batch.",
	}
	RouterBatchDuration = Metric{
		Name: "RouterBatchDuration", Unit: unitMilliseconds, DimensionSets: byEnvironment(),
		EmittedBy:   []Function{FunctionRouter},
		Description: "Time to route one SQS batch.",
	}
)

// Catalog returns every metric, in a stable order: sandbox lifecycle, API, cleanup, router.
func Catalog() []Metric {
	return []Metric{
		SandboxesCreated,
		SandboxesDestroyed,
		SandboxCreationDuration,
		SchemaCreationFailures,
		ApiRequests,
		ApiLatency,
		ActiveSandboxes,
		GuildMappings,
		CleanupRuns,
		CleanupSandboxes,
		CleanupFailures,
		CleanupDuration,
		CleanupSandboxesRemaining,
		CleanupClaimsLost,
		SandboxRedisUsersSwitchedOff,
		SandboxDatabaseRolesSwitchedOff,
		OrphanedResources,
		ExpiryWarningsSent,
		RouteLookups,
		RouteLookupLatency,
		EventsRouted,
		RoutingErrors,
		PoisonDeadLettered,
		RouterBatchSize,
		RouterBatchDuration,
	}
}
