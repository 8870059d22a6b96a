data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name = "${var.name_prefix}-${var.environment}"

  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  package_dir = coalesce(var.package_dir, "${path.module}/../dist")

  vpc_enabled = length(var.vpc_subnet_ids) > 0

  ingress_visibility_timeout_seconds = coalesce(var.ingress_visibility_timeout_seconds, 6 * var.router_timeout_seconds)

  # FIFO queues (var.fifo_queues): the name suffix SQS requires, and the high
  # throughput mode's settings (deduplication and the throughput limit per
  # message group rather than per queue).
  queue_suffix             = var.fifo_queues ? ".fifo" : ""
  fifo_deduplication_scope = var.fifo_queues ? (var.fifo_high_throughput ? "messageGroup" : "queue") : null
  fifo_throughput_limit    = var.fifo_queues ? (var.fifo_high_throughput ? "perMessageGroupId" : "perQueue") : null

  production_queue = var.existing_production_queue != null ? var.existing_production_queue : {
    url = aws_sqs_queue.production[0].url
    arn = aws_sqs_queue.production[0].arn
  }

  alarm_topic_arn          = var.alarm_topic_arn != null ? var.alarm_topic_arn : aws_sns_topic.alarms[0].arn
  expiry_warning_topic_arn = var.expiry_warning_topic_arn != null ? var.expiry_warning_topic_arn : aws_sns_topic.expiry_warnings[0].arn

  # Environment shared by the three functions (the configuration contract of
  # the functions). Optional settings are left out rather than set empty.
  common_environment = merge(
    {
      ENVIRONMENT                     = var.environment
      LOG_LEVEL                       = var.log_level
      DATABASE_SECRET_ARN             = var.database_secret_arn
      REDIS_ADDR                      = var.redis_addr
      REDIS_TLS                       = tostring(var.redis_tls)
      REDIS_CLUSTER                   = tostring(var.redis_cluster)
      SANDBOX_REDIS_ACCESS            = var.sandbox_redis_access
      SANDBOX_DEFAULT_TTL             = var.sandbox_default_ttl
      SANDBOX_MAX_LIFETIME            = var.sandbox_max_lifetime
      SANDBOX_OWNER_QUOTA             = tostring(var.sandbox_owner_quota)
      SANDBOX_DB_RESERVED_CONNECTIONS = tostring(var.sandbox_db_reserved_connections)
      SANDBOX_TEMPLATE_SCHEMA         = var.sandbox_template_schema
      SANDBOX_METADATA_MAX_BYTES      = tostring(var.sandbox_metadata_max_bytes)
    },
    length(var.sandbox_protected_guilds) > 0 ? { SANDBOX_PROTECTED_GUILDS = join(",", var.sandbox_protected_guilds) } : {},
    var.redis_password_secret_arn != null ? { REDIS_PASSWORD_SECRET_ARN = var.redis_password_secret_arn } : {},
    var.redis_username != null ? { REDIS_USERNAME = var.redis_username } : {},
    # The sandboxes' own Redis (worker_redis_addr): all three functions reach it, the router
    # to append to the streams; the route cache stays on redis_addr.
    var.worker_redis_addr != null ? { WORKER_REDIS_ADDR = var.worker_redis_addr, WORKER_REDIS_CLUSTER = tostring(var.worker_redis_cluster) } : {},
  )

  # The teardown settings, passed to every function that tears sandboxes down
  # and read by each the same way (config.LoadTeardown): the api (destroy, the
  # compensation of a failed creation, the admin runs) and cleanup.
  teardown_environment = {
    CLEANUP_STUCK_CREATING_AFTER = var.cleanup_stuck_creating_after
    CLEANUP_ORPHAN_GRACE         = var.cleanup_orphan_grace
    CLEANUP_DROP_LOCK_TIMEOUT    = var.cleanup_drop_lock_timeout
    CLEANUP_CLAIM_LEASE          = var.cleanup_claim_lease
  }

  # The sandboxes' own database, when they live apart (worker_database_secret_arn): read by
  # the functions that make and drop their schemas and roles, the api and cleanup, never by
  # the router, which reads routes only.
  worker_environment = var.worker_database_secret_arn != null ? { WORKER_DATABASE_SECRET_ARN = var.worker_database_secret_arn } : {}

  # One entry per function: everything that differs between them.
  functions = {
    api = {
      description          = "Sandbox management API behind API Gateway (payload 2.0, AWS_IAM)."
      timeout              = var.api_timeout_seconds
      memory_size          = var.memory_mb.api
      reserved_concurrency = null
      environment = merge(
        local.teardown_environment,
        local.worker_environment,
        { SANDBOX_IDLE_AFTER = var.sandbox_idle_after },
        length(var.api_admin_principals) > 0 ? { API_ADMIN_PRINCIPALS = join(",", var.api_admin_principals) } : {},
      )
    }
    router = {
      description          = "Routes Discord gateway events from the ingress queue to sandbox streams or production."
      timeout              = var.router_timeout_seconds
      memory_size          = var.memory_mb.router
      reserved_concurrency = null
      environment = {
        PRODUCTION_QUEUE_URL = local.production_queue.url
        # Poison messages go there at once, with their reason, instead of
        # after ingress_max_receive_count receives.
        ROUTER_DEAD_LETTER_QUEUE_URL = aws_sqs_queue.ingress_dlq.url
        ROUTER_STREAM_MAXLEN         = tostring(var.router_stream_maxlen)
        ROUTER_MEMORY_CACHE_TTL      = var.router_memory_cache_ttl
        ROUTER_PUBLISH_INTERVAL      = var.router_publish_interval
        ROUTER_REDIS_TIMEOUT         = var.router_redis_timeout
        ROUTER_SQS_TIMEOUT           = var.router_sqs_timeout
        ROUTE_CACHE_TTL              = var.route_cache_ttl
        ROUTE_CACHE_NEGATIVE_TTL     = var.route_cache_negative_ttl
      }
    }
    cleanup = {
      description = "Tears down expired sandboxes and reports orphaned resources every 15 minutes."
      timeout     = var.cleanup_timeout_seconds
      memory_size = var.memory_mb.cleanup
      # One run at a time: a second scheduled delivery waits instead of racing.
      reserved_concurrency = 1
      environment = merge(local.teardown_environment, local.worker_environment, {
        CLEANUP_ORPHANED                = tostring(var.cleanup_orphaned)
        CLEANUP_DEADLINE_MARGIN         = var.cleanup_deadline_margin
        CLEANUP_MAX_SANDBOX_TRANSACTION = var.cleanup_max_sandbox_transaction
        EXPIRY_WARNING_WINDOW           = var.expiry_warning_window
        EXPIRY_WARNING_TOPIC_ARN        = local.expiry_warning_topic_arn
      })
    }
  }

  function_names = { for fn in keys(local.functions) : fn => "${local.name}-${fn}" }
  package_paths  = { for fn in keys(local.functions) : fn => "${local.package_dir}/${fn}.zip" }
}
