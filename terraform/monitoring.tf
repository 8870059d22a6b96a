# Alarms and the dashboard.
#
# Custom metrics come from the functions as CloudWatch EMF lines. Their names,
# units and dimension sets are defined once, in shared/metrics/catalog.go;
# everything below that names a DiscordSandboxes metric uses a plain literal
# metric name and an explicit dimension set so a test can compare the two.
# Every custom metric carries Environment = var.environment. A metric with a
# breakdown ([Environment] and [Environment, D]) has its total on EMF lines of
# their own, declaring [Environment] only, one data point per flush (per
# invocation): its [Environment] series is the total, under any statistic.

locals {
  metrics_namespace = "DiscordSandboxes"
  metric_dimensions = { Environment = var.environment }

  # --- alarms on the functions' own metrics ---------------------------------
  # An action a cleanup run took that an operator must hear of: any count above
  # 0 in one run's interval.
  cleanup_action_alarm = {
    statistic           = "Sum"
    comparison_operator = "GreaterThanThreshold"
    threshold           = 0
    period              = 900 # one cleanup interval
    evaluation_periods  = 1
    treat_missing_data  = "notBreaching"
  }

  # Each alarm reads the metric with the dimension set [Environment] only. Each
  # is proven by a scenario test that feeds the EMF lines of the real code to
  # an evaluator of this definition (shared/internal/alarmtest; the tests are
  # alarms_test.go in shared/cleanup, shared/api and shared/routing).
  metric_alarms = {
    cleanup-failures = merge(local.cleanup_action_alarm, {
      metric_name = "CleanupFailures"
      description = "Cleanup failed to tear down at least one sandbox; the next run resumes it. Runbook RB-SB-002."
    })
    sandbox-redis-crowding = merge(local.cleanup_action_alarm, {
      metric_name = "SandboxRedisUsersSwitchedOff"
      description = "Cleanup switched off a sandbox's Redis user: its workers held more connections, or its keys more memory, than a sandbox may. Runbook RB-SB-011."
    })
    sandbox-database-oversized = merge(local.cleanup_action_alarm, {
      metric_name = "SandboxDatabaseRolesSwitchedOff"
      description = "Cleanup took a sandbox role's password away: its schema took more disk than a sandbox may. Runbook RB-SB-012."
    })
    orphaned-resources = {
      # A gauge reported once per run, the total over all resource types:
      # every report of the last hour above 5.
      metric_name         = "OrphanedResources"
      statistic           = "Minimum"
      comparison_operator = "GreaterThanThreshold"
      threshold           = 5
      period              = 900
      evaluation_periods  = 4
      treat_missing_data  = "notBreaching"
      description         = "More than 5 orphaned resources for an hour. Runbook RB-SB-003."
    }
    schema-creation-failures = {
      metric_name         = "SchemaCreationFailures"
      statistic           = "Sum"
      comparison_operator = "GreaterThanThreshold"
      threshold           = 3
      period              = 300
      evaluation_periods  = 1
      treat_missing_data  = "notBreaching"
      description         = "More than 3 sandbox schema creations failed in 5 minutes. Runbook RB-SB-005."
    }
    routing-errors = {
      metric_name         = "RoutingErrors"
      statistic           = "Sum"
      comparison_operator = "GreaterThanThreshold"
      threshold           = 50
      period              = 300
      evaluation_periods  = 1
      treat_missing_data  = "notBreaching"
      description         = "More than 50 event routing errors in 5 minutes. Runbook RB-SB-004."
    }
    active-sandboxes-high = {
      metric_name         = "ActiveSandboxes"
      statistic           = "Maximum"
      comparison_operator = "GreaterThanThreshold"
      threshold           = 100
      period              = 900
      evaluation_periods  = 1
      treat_missing_data  = "notBreaching"
      description         = "More than 100 active sandboxes. Runbook RB-SB-001."
    }
    cleanup-not-running = {
      # Every run reports CleanupRuns; no data at all means no run.
      metric_name         = "CleanupRuns"
      statistic           = "Sum"
      comparison_operator = "LessThanThreshold"
      threshold           = 1
      period              = 900
      evaluation_periods  = 3
      treat_missing_data  = "breaching"
      description         = "Cleanup has not completed a run for 45 minutes. Runbook RB-SB-009."
    }
  }

  # --- alarms on AWS metrics ----------------------------------------------
  queue_alarms = {
    ingress-dlq-not-empty = {
      queue_name         = aws_sqs_queue.ingress_dlq.name
      metric_name        = "ApproximateNumberOfMessagesVisible"
      statistic          = "Maximum"
      threshold          = 0
      period             = 300
      evaluation_periods = 1
      description        = "Ingress messages the router could not handle reached the dead-letter queue. Runbook RB-SB-007."
    }
    ingress-oldest-message = {
      queue_name         = aws_sqs_queue.ingress.name
      metric_name        = "ApproximateAgeOfOldestMessage"
      statistic          = "Maximum"
      threshold          = 300
      period             = 300
      evaluation_periods = 1
      description        = "The oldest ingress message waits for more than 5 minutes: the router is failing or falling behind. Runbook RB-SB-008."
    }
    cleanup-schedule-dlq-not-empty = {
      queue_name         = aws_sqs_queue.cleanup_schedule_dlq.name
      metric_name        = "ApproximateNumberOfMessagesVisible"
      statistic          = "Maximum"
      threshold          = 0
      period             = 300
      evaluation_periods = 1
      description        = "EventBridge could not invoke cleanup after its retries. Runbook RB-SB-009."
    }
  }

  # Per function: Lambda's own error and throttle counts.
  lambda_alarm_metrics = {
    errors    = "Errors"
    throttles = "Throttles"
  }
  lambda_alarms = merge([
    for fn in keys(local.functions) : {
      for kind, metric in local.lambda_alarm_metrics : "${fn}-${kind}" => {
        function    = fn
        metric_name = metric
      }
    }
  ]...)

  alarm_actions = [local.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = local.metrics_namespace
  metric_name         = each.value.metric_name
  dimensions          = local.metric_dimensions
  statistic           = each.value.statistic
  comparison_operator = each.value.comparison_operator
  threshold           = each.value.threshold
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "queue" {
  for_each = local.queue_alarms

  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/SQS"
  metric_name         = each.value.metric_name
  dimensions          = { QueueName = each.value.queue_name }
  statistic           = each.value.statistic
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "lambda" {
  for_each = local.lambda_alarms

  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = "The ${each.value.function} function reported ${each.value.metric_name} (AWS/Lambda). Runbook RB-SB-010."
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric_name
  dimensions          = { FunctionName = aws_lambda_function.this[each.value.function].function_name }
  statistic           = "Sum"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  period              = 300
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Share of API requests answered 5xx, in percent (HTTP APIs publish "5xx" and
# "Count" per ApiId and Stage).
resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${local.name}-api-5xx-rate"
  alarm_description   = "More than ${var.api_5xx_rate_threshold_percent}% of API requests answered 5xx in 5 minutes. Runbook RB-SB-010."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_5xx_rate_threshold_percent
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx rate (%)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5xx"
      dimensions  = { ApiId = aws_apigatewayv2_api.this.id, Stage = aws_apigatewayv2_stage.default.name }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = { ApiId = aws_apigatewayv2_api.this.id, Stage = aws_apigatewayv2_stage.default.name }
      stat        = "Sum"
      period      = 300
    }
  }
}

# EMF lines CloudWatch could not turn into metrics. CloudWatch Logs publishes
# EMFParsingErrors (not valid EMF JSON) and EMFValidationErrors (valid JSON
# that breaks the EMF specification, e.g. a wrong dimension set) in the
# AWS/Logs namespace per LogGroupName, so no metric filter is needed: a
# metric that silently stops arriving shows up here.
resource "aws_cloudwatch_metric_alarm" "emf_errors" {
  for_each = local.functions

  alarm_name          = "${local.name}-${each.key}-emf-errors"
  alarm_description   = "CloudWatch rejected EMF lines of the ${each.key} function: some of its metrics are being lost. Runbook RB-SB-010."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rejected"
    expression  = "FILL(parsing, 0) + FILL(validation, 0)"
    label       = "EMF lines rejected"
    return_data = true
  }

  metric_query {
    id = "parsing"
    metric {
      namespace   = "AWS/Logs"
      metric_name = "EMFParsingErrors"
      dimensions  = { LogGroupName = aws_cloudwatch_log_group.function[each.key].name }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "validation"
    metric {
      namespace   = "AWS/Logs"
      metric_name = "EMFValidationErrors"
      dimensions  = { LogGroupName = aws_cloudwatch_log_group.function[each.key].name }
      stat        = "Sum"
      period      = 300
    }
  }
}

# --- dashboard ----------------------------------------------------------------

locals {
  # Widgets of the functions' own metrics. Each metric names its extra
  # dimensions (beyond Environment) explicitly; optional per-metric stat,
  # label and yAxis override the widget's.
  custom_metric_widgets = [
    {
      title   = "Active sandboxes", stat = "Maximum", period = 900
      metrics = [{ name = "ActiveSandboxes" }]
    },
    {
      title   = "Sandbox lifecycle", stat = "Sum", period = 300
      metrics = [{ name = "SandboxesCreated" }, { name = "SandboxesDestroyed" }]
    },
    {
      title   = "Guild mappings", stat = "Maximum", period = 900
      metrics = [{ name = "GuildMappings" }]
    },
    {
      title = "Cleanup job", stat = "Sum", period = 900
      metrics = [
        { name = "CleanupRuns" },
        { name = "CleanupSandboxes" },
        { name = "CleanupFailures" },
        { name = "CleanupSandboxesRemaining", stat = "Maximum" },
        { name = "CleanupClaimsLost" },
        { name = "SandboxRedisUsersSwitchedOff", label = "Redis users switched off" },
        { name = "SandboxDatabaseRolesSwitchedOff", label = "Database roles switched off" },
        { name = "ExpiryWarningsSent" },
        { name = "CleanupDuration", stat = "Maximum", yAxis = "right" },
      ]
    },
    {
      # The [Environment] series: one total per run (by type: the search widget).
      title   = "Orphaned resources", stat = "Maximum", period = 900
      metrics = [{ name = "OrphanedResources", label = "total" }]
    },
    {
      title = "Event routing", stat = "Sum", period = 60
      metrics = [
        { name = "EventsRouted", label = "all" },
        { name = "EventsRouted", dimensions = { Destination = "sandbox" }, label = "sandbox" },
        { name = "EventsRouted", dimensions = { Destination = "production" }, label = "production" },
        { name = "EventsRouted", dimensions = { Destination = "dropped" }, label = "dropped" },
        { name = "EventsRouted", dimensions = { Destination = "parked" }, label = "parked" },
        { name = "RoutingErrors", yAxis = "right" },
        { name = "PoisonDeadLettered", label = "poison dead-lettered", yAxis = "right" },
      ]
    },
    {
      title = "Router batches", stat = "Average", period = 60
      metrics = [
        { name = "RouterBatchSize" },
        { name = "RouterBatchDuration", stat = "p99", yAxis = "right" },
      ]
    },
    {
      title = "Route lookups by tier", stat = "Sum", period = 60
      metrics = [
        { name = "RouteLookups", dimensions = { Tier = "memory" }, label = "memory" },
        { name = "RouteLookups", dimensions = { Tier = "redis" }, label = "redis" },
        { name = "RouteLookups", dimensions = { Tier = "database" }, label = "database" },
      ]
    },
    {
      title = "Route lookup latency", stat = "p50", period = 60
      metrics = [
        { name = "RouteLookupLatency", label = "p50" },
        { name = "RouteLookupLatency", stat = "p99", label = "p99" },
      ]
    },
    {
      title = "API requests", stat = "Sum", period = 300
      metrics = [
        { name = "ApiRequests" },
        { name = "SchemaCreationFailures", yAxis = "right" },
      ]
    },
    {
      title = "API latency", stat = "p50", period = 300
      metrics = [
        { name = "ApiLatency", label = "p50" },
        { name = "ApiLatency", stat = "p99", label = "p99" },
        { name = "SandboxCreationDuration", stat = "p99", label = "sandbox creation p99" },
      ]
    },
  ]

  # Breakdowns over dimension values that are open-ended (routes, error kinds,
  # resource types), drawn with SEARCH over the given dimension set.
  custom_search_widgets = [
    { title = "API requests by route", name = "ApiRequests", dimensions = ["Route"], stat = "Sum", period = 300 },
    { title = "API latency by route (p99)", name = "ApiLatency", dimensions = ["Route"], stat = "p99", period = 300 },
    { title = "Routing errors by kind", name = "RoutingErrors", dimensions = ["Kind"], stat = "Sum", period = 300 },
    { title = "Poison dead-lettered by kind", name = "PoisonDeadLettered", dimensions = ["Kind"], stat = "Sum", period = 300 },
    { title = "Orphaned resources by type", name = "OrphanedResources", dimensions = ["ResourceType"], stat = "Maximum", period = 900 },
  ]

  # Widgets of AWS metrics: queues, functions, API.
  aws_metric_widgets = [
    {
      title = "Ingress queue depth", stat = "Maximum", period = 60
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.ingress.name, { label = "ingress visible" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", aws_sqs_queue.ingress.name, { label = "ingress in flight" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.ingress_dlq.name, { label = "ingress dead letters" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.cleanup_schedule_dlq.name, { label = "cleanup schedule dead letters" }],
      ]
    },
    {
      title = "Ingress queue age", stat = "Maximum", period = 60
      metrics = [
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.ingress.name, { label = "oldest ingress message (s)" }],
      ]
    },
    {
      title = "Function errors and throttles", stat = "Sum", period = 300
      metrics = [
        for pair in setproduct(keys(local.functions), values(local.lambda_alarm_metrics)) :
        ["AWS/Lambda", pair[1], "FunctionName", local.function_names[pair[0]], { label = "${pair[0]} ${lower(pair[1])}" }]
      ]
    },
    {
      title = "Function duration (p99)", stat = "p99", period = 300
      metrics = [
        for fn in keys(local.functions) :
        ["AWS/Lambda", "Duration", "FunctionName", local.function_names[fn], { label = fn }]
      ]
    },
    {
      title = "API Gateway", stat = "Sum", period = 300
      metrics = [
        ["AWS/ApiGateway", "Count", "ApiId", aws_apigatewayv2_api.this.id, "Stage", "$default", { label = "requests" }],
        ["AWS/ApiGateway", "4xx", "ApiId", aws_apigatewayv2_api.this.id, "Stage", "$default", { label = "4xx" }],
        ["AWS/ApiGateway", "5xx", "ApiId", aws_apigatewayv2_api.this.id, "Stage", "$default", { label = "5xx" }],
        ["AWS/ApiGateway", "Latency", "ApiId", aws_apigatewayv2_api.this.id, "Stage", "$default", { label = "latency p99", stat = "p99", yAxis = "right" }],
      ]
    },
    {
      title = "EMF lines rejected by CloudWatch", stat = "Sum", period = 300
      metrics = [
        for pair in setproduct(keys(local.functions), ["EMFParsingErrors", "EMFValidationErrors"]) :
        ["AWS/Logs", pair[1], "LogGroupName", aws_cloudwatch_log_group.function[pair[0]].name, { label = "${pair[0]} ${pair[1]}" }]
      ]
    },
  ]

  dashboard_widget_properties = concat(
    [
      for w in local.custom_metric_widgets : {
        title  = w.title
        stat   = w.stat
        period = w.period
        metrics = [
          for m in w.metrics : concat(
            [local.metrics_namespace, m.name],
            flatten([for k, v in merge(local.metric_dimensions, try(m.dimensions, {})) : [k, v]]),
            # Rendering options, only those the metric sets.
            [for options in [merge(
              try({ stat = m.stat }, {}),
              try({ label = m.label }, {}),
              try({ yAxis = m.yAxis }, {}),
            )] : options if length(options) > 0],
          )
        ]
      }
    ],
    [
      for w in local.custom_search_widgets : {
        title  = w.title
        stat   = w.stat
        period = w.period
        metrics = [[{
          expression = format(
            "SEARCH('{%s} MetricName=\"%s\" Environment=\"%s\"', '%s', %d)",
            join(",", concat([local.metrics_namespace, "Environment"], w.dimensions)),
            w.name, var.environment, w.stat, w.period,
          )
          id = "search"
        }]]
      }
    ],
    [
      for w in local.aws_metric_widgets : {
        title   = w.title
        stat    = w.stat
        period  = w.period
        metrics = w.metrics
      }
    ],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.name

  dashboard_body = jsonencode({
    widgets = [
      for i, p in local.dashboard_widget_properties : {
        type   = "metric"
        x      = (i % 2) * 12
        y      = floor(i / 2) * 6
        width  = 12
        height = 6
        properties = merge(p, {
          view    = "timeSeries"
          stacked = false
          region  = local.region
        })
      }
    ]
  })
}
