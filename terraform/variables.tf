# Inputs of the stack. Defaults follow the functions' own defaults
# (docs: the configuration contract of the functions); durations are Go
# duration strings because the functions parse them with time.ParseDuration.

locals {
  # A Go duration such as "90s", "1h30m" or "500ms".
  go_duration_pattern = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
}

# --- deployment --------------------------------------------------------------

variable "region" {
  description = "AWS region to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "environment" {
  description = "Environment name: the ENVIRONMENT of the functions, the Environment dimension of every metric and part of every resource name."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2-16 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name; the full prefix is <name_prefix>-<environment>."
  type        = string
  default     = "discord-sandboxes"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,29}$", var.name_prefix))
    error_message = "name_prefix must be 2-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource (Project, Environment and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

variable "package_dir" {
  description = "Directory holding api.zip, router.zip and cleanup.zip as built by `make package`; null means ../dist relative to this module."
  type        = string
  default     = null
}

# --- network and data stores -------------------------------------------------

variable "vpc_subnet_ids" {
  description = "Private subnets the functions run in to reach PostgreSQL and Redis; empty runs them outside a VPC."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.vpc_subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "vpc_subnet_ids must hold subnet ids (subnet-...)."
  }
}

variable "vpc_security_group_ids" {
  description = "Security groups of the functions when they run in a VPC; required exactly when vpc_subnet_ids is set."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.vpc_security_group_ids : can(regex("^sg-[0-9a-f]+$", id))])
    error_message = "vpc_security_group_ids must hold security group ids (sg-...)."
  }

  validation {
    condition     = (length(var.vpc_subnet_ids) == 0) == (length(var.vpc_security_group_ids) == 0)
    error_message = "Set vpc_subnet_ids and vpc_security_group_ids together, or neither."
  }
}

variable "database_secret_arn" {
  description = "ARN of an existing Secrets Manager secret in the RDS JSON shape {username,password,host,port,dbname}; read by every function at cold start."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.database_secret_arn))
    error_message = "database_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "router_database_role" {
  description = "The router's own PostgreSQL role (docs/deploy.md): the migrate step grants it what the router reads and deletes, and no DDL. Null: no role is granted (the router then uses database_secret_arn's user)."
  type        = string
  default     = null

  validation {
    condition     = var.router_database_role == null || can(regex("^[a-z_][a-z0-9_]{0,62}$", var.router_database_role))
    error_message = "router_database_role must be a plain lowercase PostgreSQL identifier or null."
  }
}

variable "router_database_secret_arn" {
  description = "Optional ARN of a Secrets Manager secret (RDS JSON shape) holding the credentials of router_database_role; the router reads it instead of database_secret_arn, which it may then not read."
  type        = string
  default     = null

  validation {
    condition     = var.router_database_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.router_database_secret_arn))
    error_message = "router_database_secret_arn must be a Secrets Manager secret ARN or null."
  }

  validation {
    condition     = var.router_database_secret_arn == null || var.router_database_role != null
    error_message = "router_database_secret_arn needs router_database_role: the migrate step grants that role the router's privileges."
  }
}

variable "worker_database_secret_arn" {
  description = "Optional ARN of a Secrets Manager secret (RDS JSON shape) of the database where the sandboxes' schemas and roles live, on a server apart from the control plane's (docs/deploy.md, \"A database server for the sandboxes\"). The api and cleanup read it, and the migrate step migrates it; the router never does. Null: the sandboxes live in the control plane's database."
  type        = string
  default     = null

  validation {
    condition     = var.worker_database_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.worker_database_secret_arn))
    error_message = "worker_database_secret_arn must be a Secrets Manager secret ARN or null."
  }

  validation {
    condition     = var.worker_database_secret_arn != var.database_secret_arn
    error_message = "worker_database_secret_arn must name another database than database_secret_arn (or be null)."
  }
}

variable "run_migrations" {
  description = "Invoke the api function's migrate step ({\"migrate\": true}) after every update of its code (migrations.tf). Turn it off only where the functions cannot run (the moto test) or when you run the step yourself (docs/deploy.md)."
  type        = bool
  default     = true
}

variable "redis_addr" {
  description = "Redis (or Valkey/ElastiCache) address as host:port."
  type        = string

  validation {
    condition     = can(regex("^[^:\\s]+:[0-9]{1,5}$", var.redis_addr))
    error_message = "redis_addr must be host:port."
  }
}

variable "redis_tls" {
  description = "Connect to Redis over TLS."
  type        = bool
  default     = true
}

variable "redis_cluster" {
  description = "Redis runs in cluster mode."
  type        = bool
  default     = false
}

variable "worker_redis_addr" {
  description = "Optional host:port of a Redis server of the sandboxes' own (docs/deploy.md, \"A Redis server for the sandboxes\"): their namespaces, streams, usage counters and ACL users live there, and the route cache that production's routing reads stays on redis_addr. The functions reach it as the same user, with the same password and TLS setting. Null: the sandboxes share redis_addr."
  type        = string
  default     = null

  validation {
    condition     = var.worker_redis_addr == null || can(regex("^[^:\\s]+:[0-9]{1,5}$", var.worker_redis_addr))
    error_message = "worker_redis_addr must be host:port or null."
  }

  validation {
    condition     = var.worker_redis_addr == null || lower(coalesce(var.worker_redis_addr, "-")) != lower(var.redis_addr)
    error_message = "worker_redis_addr must name another server than redis_addr (or be null)."
  }
}

variable "worker_redis_cluster" {
  description = "The sandboxes' own Redis (worker_redis_addr) runs in cluster mode."
  type        = bool
  default     = false
}

variable "redis_username" {
  description = "The functions' own Redis ACL user (rules: scripts/redis-control-user.rules). Null: the default user."
  type        = string
  default     = null

  validation {
    condition     = var.redis_username == null || can(regex("^[A-Za-z0-9_.-]{1,64}$", var.redis_username))
    error_message = "redis_username must be 1-64 letters, digits, '_', '.' or '-', or null."
  }
}

variable "sandbox_redis_access" {
  description = "acl: a Redis ACL user per sandbox, confined to its namespace (needs ACL SETUSER). shared: no per-sandbox users; the namespace is a convention only (docs/security.md)."
  type        = string
  default     = "acl"

  validation {
    condition     = contains(["acl", "shared"], var.sandbox_redis_access)
    error_message = "sandbox_redis_access must be acl or shared."
  }
}

variable "redis_password_secret_arn" {
  description = "Optional ARN of a Secrets Manager secret holding the Redis password (AUTH token)."
  type        = string
  default     = null

  validation {
    condition     = var.redis_password_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.redis_password_secret_arn))
    error_message = "redis_password_secret_arn must be a Secrets Manager secret ARN or null."
  }
}

variable "secrets_kms_key_arn" {
  description = "ARN of the customer managed KMS key encrypting the secrets, if any; null when they use the AWS managed key."
  type        = string
  default     = null

  validation {
    condition     = var.secrets_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.secrets_kms_key_arn))
    error_message = "secrets_kms_key_arn must be a KMS key ARN or null."
  }
}

# --- functions ---------------------------------------------------------------

variable "log_level" {
  description = "LOG_LEVEL of the functions."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be debug, info, warn or error."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' and the API's log groups, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "api_timeout_seconds" {
  description = "Timeout of the api function. API Gateway gives up after 30 s, so it stays below that."
  type        = number
  default     = 15

  validation {
    condition     = var.api_timeout_seconds >= 3 && var.api_timeout_seconds <= 29
    error_message = "api_timeout_seconds must be between 3 and 29 (API Gateway's integration limit is 30 s)."
  }
}

variable "router_timeout_seconds" {
  description = "Timeout of the router function; the ingress queue's visibility timeout must be at least six times this."
  type        = number
  default     = 30

  validation {
    condition     = var.router_timeout_seconds >= 3 && var.router_timeout_seconds <= 900
    error_message = "router_timeout_seconds must be between 3 and 900."
  }
}

variable "cleanup_timeout_seconds" {
  description = "Timeout of the cleanup function; a run stops taking work CLEANUP_DEADLINE_MARGIN before it. Kept below the 15-minute schedule."
  type        = number
  default     = 300

  validation {
    condition     = var.cleanup_timeout_seconds >= 30 && var.cleanup_timeout_seconds <= 840
    error_message = "cleanup_timeout_seconds must be between 30 and 840 (below the 15-minute schedule)."
  }
}

variable "memory_mb" {
  description = "Memory of each function in MB (CPU scales with it)."
  type = object({
    api     = number
    router  = number
    cleanup = number
  })
  default = {
    api     = 256
    router  = 256
    cleanup = 256
  }

  validation {
    condition     = alltrue([for m in values(var.memory_mb) : m >= 128 && m <= 10240])
    error_message = "memory_mb values must be between 128 and 10240."
  }
}

# --- sandboxes (all functions) -----------------------------------------------

variable "sandbox_default_ttl" {
  description = "SANDBOX_DEFAULT_TTL: lifetime of a sandbox created without one."
  type        = string
  default     = "24h"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.sandbox_default_ttl))
    error_message = "sandbox_default_ttl must be a Go duration such as 24h."
  }
}

variable "sandbox_max_lifetime" {
  description = "SANDBOX_MAX_LIFETIME: longest lifetime a sandbox may be created or extended to."
  type        = string
  default     = "168h"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.sandbox_max_lifetime))
    error_message = "sandbox_max_lifetime must be a Go duration such as 168h."
  }
}

variable "sandbox_owner_quota" {
  description = "SANDBOX_OWNER_QUOTA: sandboxes one owner may have at once."
  type        = number
  default     = 5

  validation {
    condition     = var.sandbox_owner_quota >= 1 && floor(var.sandbox_owner_quota) == var.sandbox_owner_quota
    error_message = "sandbox_owner_quota must be a positive integer."
  }
}

variable "sandbox_db_reserved_connections" {
  description = "SANDBOX_DB_RESERVED_CONNECTIONS: connections of the database server that no sandbox role may take (the functions' pools and the operators'); a creation is refused when the sandboxes' roles, 20 sessions each, could reach into them. -1 turns the check off."
  type        = number
  default     = 100

  validation {
    condition     = var.sandbox_db_reserved_connections >= -1 && floor(var.sandbox_db_reserved_connections) == var.sandbox_db_reserved_connections
    error_message = "sandbox_db_reserved_connections must be an integer of at least -1."
  }
}

variable "sandbox_template_schema" {
  description = "SANDBOX_TEMPLATE_SCHEMA: PostgreSQL schema whose tables every sandbox schema clones."
  type        = string
  default     = "sandbox_template"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.sandbox_template_schema))
    error_message = "sandbox_template_schema must be a lowercase PostgreSQL identifier."
  }
}

variable "sandbox_protected_guilds" {
  description = "SANDBOX_PROTECTED_GUILDS: production guild ids that may never be registered as test guilds nor mapped, and always go to production."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.sandbox_protected_guilds : can(regex("^[0-9]{17,20}$", g))])
    error_message = "sandbox_protected_guilds must hold Discord snowflakes (17-20 digits)."
  }
}

variable "sandbox_metadata_max_bytes" {
  description = "SANDBOX_METADATA_MAX_BYTES: largest metadata document a sandbox may carry."
  type        = number
  default     = 4096

  validation {
    condition     = var.sandbox_metadata_max_bytes >= 0 && floor(var.sandbox_metadata_max_bytes) == var.sandbox_metadata_max_bytes
    error_message = "sandbox_metadata_max_bytes must be a non-negative integer."
  }
}

# --- api ---------------------------------------------------------------------

variable "api_admin_principals" {
  description = "API_ADMIN_PRINCIPALS: IAM principal ARNs allowed to manage every sandbox."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.api_admin_principals : can(regex("^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$", p))])
    error_message = "api_admin_principals must hold IAM or STS principal ARNs."
  }
}

variable "sandbox_idle_after" {
  description = "SANDBOX_IDLE_AFTER: a running sandbox without an event for this long is flagged idle (sandbox list, the API's usage), so its owner can destroy it."
  type        = string
  default     = "6h"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.sandbox_idle_after))
    error_message = "sandbox_idle_after must be a Go duration such as 6h."
  }
}

variable "api_owner_key" {
  description = "API_OWNER_KEY: how an assumed-role caller owns sandboxes: \"session\" (one owner per role session) or \"role\" (one owner per role, shared by everyone who can assume it). With \"role\", list roles, not sessions, in api_admin_principals."
  type        = string
  default     = "session"

  validation {
    condition     = contains(["session", "role"], var.api_owner_key)
    error_message = "api_owner_key must be \"session\" or \"role\"."
  }
}

variable "api_cursor_key" {
  description = "API_CURSOR_KEY: base64 of at least 32 bytes (openssl rand -base64 32) that signs the API's list cursors. Null: the API derives the key from the database password, and a rotation of that password invalidates the cursors handed out before."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.api_cursor_key == null || can(regex("^[A-Za-z0-9+/_-]{43,}={0,2}$", var.api_cursor_key))
    error_message = "api_cursor_key must be base64 of at least 32 bytes (openssl rand -base64 32)."
  }
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second the API stage accepts."
  type        = number
  default     = 20

  validation {
    condition     = var.api_throttling_rate_limit > 0
    error_message = "api_throttling_rate_limit must be positive."
  }
}

variable "api_throttling_burst_limit" {
  description = "Burst of requests the API stage accepts."
  type        = number
  default     = 40

  validation {
    condition     = var.api_throttling_burst_limit > 0 && floor(var.api_throttling_burst_limit) == var.api_throttling_burst_limit
    error_message = "api_throttling_burst_limit must be a positive integer."
  }
}

# --- router and queues -------------------------------------------------------

variable "existing_production_queue" {
  description = "The production bot's existing SQS queue (url and arn); null creates one."
  type = object({
    url = string
    arn = string
  })
  default = null

  validation {
    condition = var.existing_production_queue == null || (
      can(regex("^https://", var.existing_production_queue.url)) &&
      can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:.+$", var.existing_production_queue.arn))
    )
    error_message = "existing_production_queue needs an https:// queue url and an SQS queue arn."
  }
}

variable "production_queue_kms_key_arn" {
  description = "KMS key encrypting an existing production queue, if it uses a customer managed key; the router then may use it to send."
  type        = string
  default     = null

  validation {
    condition     = var.production_queue_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.production_queue_kms_key_arn))
    error_message = "production_queue_kms_key_arn must be a KMS key ARN or null."
  }
}

variable "ingress_visibility_timeout_seconds" {
  description = "Visibility timeout of the ingress queue; null means six times router_timeout_seconds. AWS asks for at least six times the function timeout so retries of a slow batch do not overlap."
  type        = number
  default     = null

  validation {
    condition = var.ingress_visibility_timeout_seconds == null || (
      try(var.ingress_visibility_timeout_seconds >= 6 * var.router_timeout_seconds, false) &&
      try(var.ingress_visibility_timeout_seconds <= 43200, false)
    )
    error_message = "ingress_visibility_timeout_seconds must be at least 6 x router_timeout_seconds and at most 43200."
  }
}

variable "ingress_message_retention_seconds" {
  description = "How long the ingress queue keeps a message the router has not taken."
  type        = number
  default     = 345600

  validation {
    condition     = var.ingress_message_retention_seconds >= 60 && var.ingress_message_retention_seconds <= 1209600
    error_message = "ingress_message_retention_seconds must be between 60 and 1209600."
  }
}

variable "ingress_max_receive_count" {
  description = "Receives of one ingress message before the redrive policy moves it to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.ingress_max_receive_count >= 1 && var.ingress_max_receive_count <= 1000
    error_message = "ingress_max_receive_count must be between 1 and 1000."
  }
}

variable "fifo_queues" {
  description = "Make the ingress queue, its dead-letter queue and the production queue FIFO queues (the ingress service then sends with a message group per guild or shard): the router keeps each group's order and production receives no duplicate within SQS's 5-minute deduplication window. Needs router_batch_size <= 10 and no batching window."
  type        = bool
  default     = false
}

variable "fifo_high_throughput" {
  description = "With fifo_queues: SQS's high throughput mode (deduplication scope and throughput limit per message group): up to thousands of messages per second per queue instead of 300 (3,000 with batching), as long as the load spreads over many groups."
  type        = bool
  default     = false

  validation {
    condition     = !var.fifo_high_throughput || var.fifo_queues
    error_message = "fifo_high_throughput needs fifo_queues."
  }
}

variable "ingress_content_based_deduplication" {
  description = "With fifo_queues: let the ingress queue deduplicate by the body's SHA-256 when the ingress service sends no deduplication id."
  type        = bool
  default     = false

  validation {
    condition     = !var.ingress_content_based_deduplication || var.fifo_queues
    error_message = "ingress_content_based_deduplication needs fifo_queues."
  }
}

variable "router_batch_size" {
  description = "Largest batch of ingress messages one router invocation receives."
  type        = number
  default     = 10

  validation {
    condition     = var.router_batch_size >= 1 && var.router_batch_size <= 10000
    error_message = "router_batch_size must be between 1 and 10000."
  }

  validation {
    condition     = !var.fifo_queues || var.router_batch_size <= 10
    error_message = "With fifo_queues, router_batch_size must be 10 or less (the most a FIFO queue delivers at once)."
  }
}

variable "router_maximum_batching_window_seconds" {
  description = "How long Lambda gathers ingress messages before invoking the router; batches above 10 need at least 1 s."
  type        = number
  default     = 0

  validation {
    condition     = var.router_maximum_batching_window_seconds >= 0 && var.router_maximum_batching_window_seconds <= 300
    error_message = "router_maximum_batching_window_seconds must be between 0 and 300."
  }

  validation {
    condition     = var.router_batch_size <= 10 || var.router_maximum_batching_window_seconds >= 1
    error_message = "A router_batch_size above 10 needs router_maximum_batching_window_seconds of at least 1."
  }
}

variable "router_maximum_concurrency" {
  description = "Most router invocations the ingress event source mapping runs at once."
  type        = number
  default     = 10

  validation {
    condition     = var.router_maximum_concurrency >= 2 && var.router_maximum_concurrency <= 1000
    error_message = "router_maximum_concurrency must be between 2 and 1000."
  }
}

variable "router_stream_maxlen" {
  description = "ROUTER_STREAM_MAXLEN: approximate bound of each sandbox event stream."
  type        = number
  default     = 10000

  validation {
    condition     = var.router_stream_maxlen >= 1
    error_message = "router_stream_maxlen must be positive."
  }
}

variable "router_publish_interval" {
  description = "ROUTER_PUBLISH_INTERVAL: how often the router publishes route changes left pending by a writer whose Redis call failed."
  type        = string
  default     = "1s"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.router_publish_interval))
    error_message = "router_publish_interval must be a Go duration such as 1s."
  }
}

variable "router_memory_cache_ttl" {
  description = "ROUTER_MEMORY_CACHE_TTL: lifetime of the router's in-process route cache."
  type        = string
  default     = "5s"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.router_memory_cache_ttl))
    error_message = "router_memory_cache_ttl must be a Go duration such as 5s."
  }
}

variable "router_redis_timeout" {
  description = "ROUTER_REDIS_TIMEOUT: deadline of each Redis call of a batch (route cache, sandbox stream append), go-redis retries included; keep it well below router_timeout_seconds."
  type        = string
  default     = "1s"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.router_redis_timeout))
    error_message = "router_redis_timeout must be a Go duration such as 1s (the router accepts 10ms to 10s)."
  }
}

variable "router_sqs_timeout" {
  description = "ROUTER_SQS_TIMEOUT: deadline of a batch's production delivery (all its SendMessageBatch calls) and of its dead-letter send; keep it well below router_timeout_seconds."
  type        = string
  default     = "5s"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.router_sqs_timeout))
    error_message = "router_sqs_timeout must be a Go duration such as 5s (the router accepts 10ms to 20s)."
  }
}

variable "route_cache_ttl" {
  description = "ROUTE_CACHE_TTL: lifetime of a route in the Redis cache."
  type        = string
  default     = "5m"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.route_cache_ttl))
    error_message = "route_cache_ttl must be a Go duration such as 5m."
  }
}

variable "route_cache_negative_ttl" {
  description = "ROUTE_CACHE_NEGATIVE_TTL: lifetime of a cached 'no sandbox for this guild'."
  type        = string
  default     = "60s"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.route_cache_negative_ttl))
    error_message = "route_cache_negative_ttl must be a Go duration such as 60s."
  }
}

# --- cleanup -----------------------------------------------------------------

variable "cleanup_orphaned" {
  description = "CLEANUP_ORPHANED: let the scheduled job remove orphaned resources, not only report them."
  type        = bool
  default     = false
}

variable "cleanup_stuck_creating_after" {
  description = "CLEANUP_STUCK_CREATING_AFTER: age after which a sandbox still creating is reclaimed (api and cleanup)."
  type        = string
  default     = "30m"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.cleanup_stuck_creating_after))
    error_message = "cleanup_stuck_creating_after must be a Go duration such as 30m."
  }
}

variable "cleanup_orphan_grace" {
  description = "CLEANUP_ORPHAN_GRACE: resources younger than this are never reported as orphans (api and cleanup)."
  type        = string
  default     = "1h"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.cleanup_orphan_grace))
    error_message = "cleanup_orphan_grace must be a Go duration such as 1h."
  }
}

variable "cleanup_drop_lock_timeout" {
  description = "CLEANUP_DROP_LOCK_TIMEOUT: longest wait for locks when dropping a sandbox's schema and role (api and cleanup)."
  type        = string
  default     = "5s"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.cleanup_drop_lock_timeout))
    error_message = "cleanup_drop_lock_timeout must be a Go duration such as 5s."
  }
}

variable "cleanup_claim_lease" {
  description = "CLEANUP_CLAIM_LEASE: how long a teardown claim lasts unless its holder renews it (api and cleanup)."
  type        = string
  default     = "5m"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.cleanup_claim_lease))
    error_message = "cleanup_claim_lease must be a Go duration such as 5m."
  }
}

variable "cleanup_deadline_margin" {
  description = "CLEANUP_DEADLINE_MARGIN: a run stops taking new sandboxes this long before the function's deadline."
  type        = string
  default     = "30s"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.cleanup_deadline_margin))
    error_message = "cleanup_deadline_margin must be a Go duration such as 30s."
  }
}

variable "cleanup_max_sandbox_transaction" {
  description = "CLEANUP_MAX_SANDBOX_TRANSACTION: a sandbox's session whose transaction has been open longer is ended by the scheduled cleanup (an open transaction keeps vacuum from the whole database)."
  type        = string
  default     = "1h"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.cleanup_max_sandbox_transaction))
    error_message = "cleanup_max_sandbox_transaction must be a Go duration such as 1h."
  }
}

variable "expiry_warning_window" {
  description = "EXPIRY_WARNING_WINDOW: how long before expiry cleanup warns a sandbox's owner."
  type        = string
  default     = "1h"

  validation {
    condition     = can(regex(local.go_duration_pattern, var.expiry_warning_window))
    error_message = "expiry_warning_window must be a Go duration such as 1h."
  }
}

# --- notifications -----------------------------------------------------------

variable "alarm_topic_arn" {
  description = "Existing SNS topic for alarm notifications; null creates one."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:.+$", var.alarm_topic_arn))
    error_message = "alarm_topic_arn must be an SNS topic ARN or null."
  }
}

variable "alarm_email_addresses" {
  description = "E-mail addresses subscribed to the alarm topic this stack creates (each must confirm the subscription)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_email_addresses : can(regex("^[^@\\s]+@[^@\\s]+$", a))])
    error_message = "alarm_email_addresses must hold e-mail addresses."
  }

  validation {
    condition     = var.alarm_topic_arn == null || length(var.alarm_email_addresses) == 0
    error_message = "alarm_email_addresses subscribe to the topic this stack creates; subscribe to an existing alarm_topic_arn where it is managed."
  }
}

variable "expiry_warning_topic_arn" {
  description = "Existing SNS topic cleanup publishes expiry warnings to; null creates one."
  type        = string
  default     = null

  validation {
    condition     = var.expiry_warning_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:.+$", var.expiry_warning_topic_arn))
    error_message = "expiry_warning_topic_arn must be an SNS topic ARN or null."
  }
}

variable "api_5xx_rate_threshold_percent" {
  description = "Share of API requests answered 5xx (percent, over 5 minutes) above which the API alarm fires."
  type        = number
  default     = 5

  validation {
    condition     = var.api_5xx_rate_threshold_percent > 0 && var.api_5xx_rate_threshold_percent <= 100
    error_message = "api_5xx_rate_threshold_percent must be in (0, 100]."
  }
}
