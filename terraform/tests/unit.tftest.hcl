# Plan-level tests of the stack with a mocked AWS provider: no account, no
# network. `terraform test -filter=tests/unit.tftest.hcl` (scripts/terraform-check.sh).

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

# The provider validates ARNs even when mocked, and the assertions tell
# resources apart by ARN: give each resource a distinct, well-formed one.
override_resource {
  target = aws_sqs_queue.ingress
  values = { arn = "arn:aws:sqs:eu-west-1:123456789012:ingress", url = "https://sqs.eu-west-1.amazonaws.com/123456789012/ingress", name = "ingress" }
}
override_resource {
  target = aws_sqs_queue.ingress_dlq
  values = { arn = "arn:aws:sqs:eu-west-1:123456789012:ingress-dlq", url = "https://sqs.eu-west-1.amazonaws.com/123456789012/ingress-dlq", name = "ingress-dlq" }
}
override_resource {
  target = aws_sqs_queue.production
  values = { arn = "arn:aws:sqs:eu-west-1:123456789012:production", url = "https://sqs.eu-west-1.amazonaws.com/123456789012/production" }
}
override_resource {
  target = aws_sqs_queue.cleanup_schedule_dlq
  values = { arn = "arn:aws:sqs:eu-west-1:123456789012:cleanup-dlq", url = "https://sqs.eu-west-1.amazonaws.com/123456789012/cleanup-dlq" }
}
override_resource {
  target = aws_sns_topic.alarms
  values = { arn = "arn:aws:sns:eu-west-1:123456789012:alarms" }
}
override_resource {
  target = aws_sns_topic.expiry_warnings
  values = { arn = "arn:aws:sns:eu-west-1:123456789012:expiry-warnings" }
}
override_resource {
  target = aws_cloudwatch_event_rule.cleanup
  values = { arn = "arn:aws:events:eu-west-1:123456789012:rule/cleanup" }
}
override_resource {
  target = aws_lambda_function.this["api"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:api", invoke_arn = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:api/invocations" }
}
override_resource {
  target = aws_lambda_function.this["router"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:router" }
}
override_resource {
  target = aws_lambda_function.this["cleanup"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:cleanup" }
}
override_resource {
  target = aws_iam_role.function
  values = { arn = "arn:aws:iam::123456789012:role/function" }
}
override_resource {
  target = aws_cloudwatch_log_group.function["api"]
  values = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/api" }
}
override_resource {
  target = aws_cloudwatch_log_group.function["router"]
  values = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/router" }
}
override_resource {
  target = aws_cloudwatch_log_group.function["cleanup"]
  values = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/cleanup" }
}
override_resource {
  target = aws_cloudwatch_log_group.api_access
  values = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/apigateway/api" }
}
# What the api function answers the migrate step (controlplane.MigrateReport).
override_resource {
  target = aws_lambda_invocation.migrate
  values = { result = "{\"applied\":[\"0012_teardown_claims\"],\"version\":\"0012_teardown_claims\"}" }
}
override_resource {
  target = aws_apigatewayv2_api.this
  values = { id = "a1b2c3d4e5", execution_arn = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5" }
}

variables {
  region              = "eu-west-1"
  environment         = "test"
  package_dir         = "tests/fixtures"
  database_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sandboxes/db-AbCdEf"
  redis_addr          = "redis.internal:6379"

  # The alarm list of issue 6 (and the seed): what each alarm must watch.
  expected_metric_alarms = {
    cleanup-failures           = { metric = "CleanupFailures", statistic = "Sum", comparison = "GreaterThanThreshold", threshold = 0, period = 900, evaluation_periods = 1, missing = "notBreaching" }
    orphaned-resources         = { metric = "OrphanedResources", statistic = "Minimum", comparison = "GreaterThanThreshold", threshold = 5, period = 900, evaluation_periods = 4, missing = "notBreaching" }
    schema-creation-failures   = { metric = "SchemaCreationFailures", statistic = "Sum", comparison = "GreaterThanThreshold", threshold = 3, period = 300, evaluation_periods = 1, missing = "notBreaching" }
    routing-errors             = { metric = "RoutingErrors", statistic = "Sum", comparison = "GreaterThanThreshold", threshold = 50, period = 300, evaluation_periods = 1, missing = "notBreaching" }
    active-sandboxes-high      = { metric = "ActiveSandboxes", statistic = "Maximum", comparison = "GreaterThanThreshold", threshold = 100, period = 900, evaluation_periods = 1, missing = "notBreaching" }
    cleanup-not-running        = { metric = "CleanupRuns", statistic = "Sum", comparison = "LessThanThreshold", threshold = 1, period = 900, evaluation_periods = 3, missing = "breaching" }
    sandbox-redis-crowding     = { metric = "SandboxRedisUsersSwitchedOff", statistic = "Sum", comparison = "GreaterThanThreshold", threshold = 0, period = 900, evaluation_periods = 1, missing = "notBreaching" }
    sandbox-database-oversized = { metric = "SandboxDatabaseRolesSwitchedOff", statistic = "Sum", comparison = "GreaterThanThreshold", threshold = 0, period = 900, evaluation_periods = 1, missing = "notBreaching" }
  }
  expected_queue_alarms = {
    ingress-dlq-not-empty          = { metric = "ApproximateNumberOfMessagesVisible", threshold = 0, period = 300, evaluation_periods = 1 }
    ingress-oldest-message         = { metric = "ApproximateAgeOfOldestMessage", threshold = 300, period = 300, evaluation_periods = 1 }
    cleanup-schedule-dlq-not-empty = { metric = "ApproximateNumberOfMessagesVisible", threshold = 0, period = 300, evaluation_periods = 1 }
  }
}

run "cleanup_runs_every_15_minutes" {
  command = apply

  assert {
    condition     = aws_cloudwatch_event_rule.cleanup.schedule_expression == "rate(15 minutes)"
    error_message = "The cleanup rule must run every 15 minutes."
  }
  assert {
    condition     = aws_cloudwatch_event_target.cleanup.arn == aws_lambda_function.this["cleanup"].arn
    error_message = "The cleanup rule must target the cleanup function."
  }
  assert {
    condition     = aws_cloudwatch_event_target.cleanup.retry_policy[0].maximum_retry_attempts > 0 && aws_cloudwatch_event_target.cleanup.retry_policy[0].maximum_event_age_in_seconds <= 900
    error_message = "The cleanup target must retry, and never deliver a run older than one interval."
  }
  assert {
    condition = (
      aws_lambda_function_event_invoke_config.cleanup.function_name == aws_lambda_function.this["cleanup"].function_name &&
      aws_lambda_function_event_invoke_config.cleanup.maximum_event_age_in_seconds <= 900
    )
    error_message = "Lambda must not hold a cleanup run back for longer than one interval."
  }
  assert {
    condition     = aws_cloudwatch_event_target.cleanup.dead_letter_config[0].arn == aws_sqs_queue.cleanup_schedule_dlq.arn
    error_message = "Undeliverable cleanup invocations must go to the schedule's dead-letter queue."
  }
  assert {
    condition = (
      aws_lambda_permission.cleanup_schedule.principal == "events.amazonaws.com" &&
      aws_lambda_permission.cleanup_schedule.source_arn == aws_cloudwatch_event_rule.cleanup.arn &&
      aws_lambda_permission.cleanup_schedule.function_name == aws_lambda_function.this["cleanup"].function_name
    )
    error_message = "Only the cleanup rule may invoke the cleanup function."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue_policy.cleanup_schedule_dlq.policy).Statement[0].Condition.ArnEquals["aws:SourceArn"] == aws_cloudwatch_event_rule.cleanup.arn
    error_message = "Only the cleanup rule may write to the schedule's dead-letter queue."
  }
}

run "ingress_mapping_reports_batch_item_failures" {
  command = apply

  variables {
    router_batch_size                      = 50
    router_maximum_batching_window_seconds = 2
    router_maximum_concurrency             = 7
  }

  assert {
    condition     = contains(aws_lambda_event_source_mapping.ingress.function_response_types, "ReportBatchItemFailures")
    error_message = "The router mapping must report batch item failures."
  }
  assert {
    condition = (
      aws_lambda_event_source_mapping.ingress.event_source_arn == aws_sqs_queue.ingress.arn &&
      aws_lambda_event_source_mapping.ingress.function_name == aws_lambda_function.this["router"].arn
    )
    error_message = "The mapping must feed the ingress queue to the router."
  }
  assert {
    condition = (
      aws_lambda_event_source_mapping.ingress.batch_size == 50 &&
      aws_lambda_event_source_mapping.ingress.maximum_batching_window_in_seconds == 2 &&
      aws_lambda_event_source_mapping.ingress.scaling_config[0].maximum_concurrency == 7
    )
    error_message = "Batch size, batching window and maximum concurrency must come from the variables."
  }
  assert {
    condition = (
      jsondecode(aws_sqs_queue.ingress.redrive_policy).deadLetterTargetArn == aws_sqs_queue.ingress_dlq.arn &&
      jsondecode(aws_sqs_queue.ingress.redrive_policy).maxReceiveCount == 5
    )
    error_message = "The ingress queue must redrive to its dead-letter queue after max receive count."
  }
}

run "visibility_timeout_defaults_to_six_router_timeouts" {
  command = plan

  variables {
    router_timeout_seconds = 45
  }

  assert {
    condition     = aws_sqs_queue.ingress.visibility_timeout_seconds == 270
    error_message = "Without an explicit value the ingress visibility timeout must be 6 x the router timeout."
  }
  assert {
    condition     = aws_lambda_function.this["router"].timeout == 45
    error_message = "The router timeout must come from router_timeout_seconds."
  }
}

run "visibility_timeout_may_exceed_six_router_timeouts" {
  command = plan

  variables {
    router_timeout_seconds             = 30
    ingress_visibility_timeout_seconds = 600
  }

  assert {
    condition     = aws_sqs_queue.ingress.visibility_timeout_seconds == 600
    error_message = "An explicit visibility timeout above 6 x the router timeout must be used as given."
  }
}

run "visibility_timeout_below_six_router_timeouts_is_rejected" {
  command = plan

  variables {
    router_timeout_seconds             = 30
    ingress_visibility_timeout_seconds = 179
  }

  expect_failures = [var.ingress_visibility_timeout_seconds]
}

run "router_store_deadlines_come_from_the_variables" {
  command = plan

  variables {
    router_redis_timeout = "750ms"
    router_sqs_timeout   = "3s"
  }

  assert {
    condition = (
      aws_lambda_function.this["router"].environment[0].variables.ROUTER_REDIS_TIMEOUT == "750ms" &&
      aws_lambda_function.this["router"].environment[0].variables.ROUTER_SQS_TIMEOUT == "3s"
    )
    error_message = "ROUTER_REDIS_TIMEOUT and ROUTER_SQS_TIMEOUT must come from router_redis_timeout and router_sqs_timeout."
  }
}

run "router_store_deadline_must_be_a_duration" {
  command = plan

  variables {
    router_redis_timeout = "1 second"
    router_sqs_timeout   = "5"
  }

  expect_failures = [var.router_redis_timeout, var.router_sqs_timeout]
}

run "api_cursor_key_is_optional" {
  command = plan

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : !contains(keys(f.environment[0].variables), "API_CURSOR_KEY")])
    error_message = "Without api_cursor_key no function gets API_CURSOR_KEY (the API derives its key)."
  }
}

run "api_cursor_key_reaches_the_api_only" {
  command = plan

  variables {
    api_cursor_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
  }

  assert {
    condition = (
      aws_lambda_function.this["api"].environment[0].variables.API_CURSOR_KEY == var.api_cursor_key &&
      !contains(keys(aws_lambda_function.this["router"].environment[0].variables), "API_CURSOR_KEY") &&
      !contains(keys(aws_lambda_function.this["cleanup"].environment[0].variables), "API_CURSOR_KEY")
    )
    error_message = "api_cursor_key must reach the api function as API_CURSOR_KEY, and no other function."
  }
}

run "api_cursor_key_must_be_base64_of_32_bytes" {
  command = plan

  variables {
    api_cursor_key = "c2hvcnQ="
  }

  expect_failures = [var.api_cursor_key]
}

run "teardown_settings_reach_every_function_that_tears_down" {
  command = plan

  variables {
    cleanup_stuck_creating_after = "45m"
    cleanup_orphan_grace         = "2h"
    cleanup_drop_lock_timeout    = "3s"
    cleanup_claim_lease          = "7m"
  }

  assert {
    condition = alltrue([for fn in ["api", "cleanup"] : (
      aws_lambda_function.this[fn].environment[0].variables.CLEANUP_STUCK_CREATING_AFTER == "45m" &&
      aws_lambda_function.this[fn].environment[0].variables.CLEANUP_ORPHAN_GRACE == "2h" &&
      aws_lambda_function.this[fn].environment[0].variables.CLEANUP_DROP_LOCK_TIMEOUT == "3s" &&
      aws_lambda_function.this[fn].environment[0].variables.CLEANUP_CLAIM_LEASE == "7m"
    )])
    error_message = "The api and cleanup functions must both get every teardown setting, with the same values."
  }

  assert {
    condition     = length([for k in keys(aws_lambda_function.this["router"].environment[0].variables) : k if startswith(k, "CLEANUP_")]) == 0
    error_message = "The router tears nothing down: no teardown settings."
  }
}

run "every_route_is_iam_authorized" {
  command = apply

  assert {
    condition     = length(local.api_routes) == 33 && length(aws_apigatewayv2_route.api) == length(local.api_routes)
    error_message = "Every route of the API contract must exist, and no other."
  }
  assert {
    condition     = alltrue([for key in local.api_routes : aws_apigatewayv2_route.api[key].authorization_type == "AWS_IAM"])
    error_message = "Every route must use AWS_IAM authorization."
  }
  assert {
    condition     = alltrue([for r in aws_apigatewayv2_route.api : r.target == "integrations/${aws_apigatewayv2_integration.api.id}"])
    error_message = "Every route must go to the api function's integration."
  }
  assert {
    condition = (
      aws_apigatewayv2_integration.api.integration_type == "AWS_PROXY" &&
      aws_apigatewayv2_integration.api.payload_format_version == "2.0" &&
      aws_apigatewayv2_integration.api.integration_uri == aws_lambda_function.this["api"].invoke_arn
    )
    error_message = "The integration must proxy to the api function with payload format 2.0."
  }
  assert {
    condition = (
      aws_apigatewayv2_stage.default.access_log_settings[0].destination_arn == aws_cloudwatch_log_group.api_access.arn &&
      can(jsondecode(aws_apigatewayv2_stage.default.access_log_settings[0].format).requestId) &&
      aws_apigatewayv2_stage.default.default_route_settings[0].throttling_rate_limit == 20 &&
      aws_apigatewayv2_stage.default.default_route_settings[0].throttling_burst_limit == 40
    )
    error_message = "The stage must write JSON access logs and throttle."
  }
}

run "alarms_match_the_list" {
  command = apply

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.metric)) == toset(keys(var.expected_metric_alarms))
    error_message = "The custom-metric alarms must be exactly the listed ones."
  }
  assert {
    condition     = [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].metric_name != want.metric] == []
    error_message = "Alarms watching the wrong metric: ${join(", ", [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].metric_name != want.metric])}."
  }
  assert {
    condition     = [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].namespace != "DiscordSandboxes" || aws_cloudwatch_metric_alarm.metric[name].dimensions != tomap({ Environment = "test" })] == []
    error_message = "Alarms not on namespace DiscordSandboxes with dimensions [Environment]: ${join(", ", [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].namespace != "DiscordSandboxes" || aws_cloudwatch_metric_alarm.metric[name].dimensions != tomap({ Environment = "test" })])}."
  }
  assert {
    condition     = [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].threshold != want.threshold || aws_cloudwatch_metric_alarm.metric[name].comparison_operator != want.comparison] == []
    error_message = "Alarms with another threshold than the list: ${join(", ", [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].threshold != want.threshold || aws_cloudwatch_metric_alarm.metric[name].comparison_operator != want.comparison])}."
  }
  assert {
    condition     = [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].period != want.period || aws_cloudwatch_metric_alarm.metric[name].evaluation_periods != want.evaluation_periods] == []
    error_message = "Alarms with another period than the list: ${join(", ", [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].period != want.period || aws_cloudwatch_metric_alarm.metric[name].evaluation_periods != want.evaluation_periods])}."
  }
  assert {
    condition     = [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].statistic != want.statistic || aws_cloudwatch_metric_alarm.metric[name].treat_missing_data != want.missing] == []
    error_message = "Alarms with another statistic or missing-data rule than the list: ${join(", ", [for name, want in var.expected_metric_alarms : name if aws_cloudwatch_metric_alarm.metric[name].statistic != want.statistic || aws_cloudwatch_metric_alarm.metric[name].treat_missing_data != want.missing])}."
  }
  assert {
    # Orphans "for 1 hour", cleanup "not run for 45 minutes".
    condition = (
      aws_cloudwatch_metric_alarm.metric["orphaned-resources"].period * aws_cloudwatch_metric_alarm.metric["orphaned-resources"].evaluation_periods == 3600 &&
      aws_cloudwatch_metric_alarm.metric["cleanup-not-running"].period * aws_cloudwatch_metric_alarm.metric["cleanup-not-running"].evaluation_periods == 2700
    )
    error_message = "The orphan alarm must span one hour and the cleanup-not-running alarm 45 minutes."
  }
  assert {
    condition = toset(keys(aws_cloudwatch_metric_alarm.queue)) == toset(keys(var.expected_queue_alarms)) && alltrue([
      for name, want in var.expected_queue_alarms : (
        aws_cloudwatch_metric_alarm.queue[name].namespace == "AWS/SQS" &&
        aws_cloudwatch_metric_alarm.queue[name].metric_name == want.metric &&
        aws_cloudwatch_metric_alarm.queue[name].comparison_operator == "GreaterThanThreshold" &&
        aws_cloudwatch_metric_alarm.queue[name].threshold == want.threshold &&
        aws_cloudwatch_metric_alarm.queue[name].period == want.period &&
        aws_cloudwatch_metric_alarm.queue[name].evaluation_periods == want.evaluation_periods
      )
    ])
    error_message = "The queue alarms must be exactly the listed ones."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.queue["ingress-dlq-not-empty"].dimensions.QueueName == aws_sqs_queue.ingress_dlq.name &&
      aws_cloudwatch_metric_alarm.queue["ingress-oldest-message"].dimensions.QueueName == aws_sqs_queue.ingress.name
    )
    error_message = "The queue alarms must watch the ingress queue and its dead-letter queue."
  }
  assert {
    condition = toset(keys(aws_cloudwatch_metric_alarm.lambda)) == toset([
      "api-errors", "api-throttles", "router-errors", "router-throttles", "cleanup-errors", "cleanup-throttles",
      ]) && alltrue([
      for a in aws_cloudwatch_metric_alarm.lambda :
      a.namespace == "AWS/Lambda" && a.statistic == "Sum" && a.threshold == 0 && a.period == 300 && a.evaluation_periods == 1
    ])
    error_message = "Each function must have an errors and a throttles alarm (> 0 in 5 minutes)."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.api_5xx_rate.threshold == 5 &&
      aws_cloudwatch_metric_alarm.api_5xx_rate.evaluation_periods == 1 &&
      alltrue([for q in aws_cloudwatch_metric_alarm.api_5xx_rate.metric_query : q.metric[0].period == 300 && q.metric[0].namespace == "AWS/ApiGateway" if length(q.metric) > 0])
    )
    error_message = "The API 5xx alarm must fire above 5% over 5 minutes."
  }
  assert {
    condition = length(aws_cloudwatch_metric_alarm.emf_errors) == 3 && alltrue([
      for a in aws_cloudwatch_metric_alarm.emf_errors :
      a.threshold == 0 && toset([for q in a.metric_query : q.metric[0].metric_name if length(q.metric) > 0]) == toset(["EMFParsingErrors", "EMFValidationErrors"])
    ])
    error_message = "Each function must have an alarm on EMF parsing and validation errors."
  }
  assert {
    condition = alltrue([
      for a in concat(values(aws_cloudwatch_metric_alarm.metric), values(aws_cloudwatch_metric_alarm.queue), values(aws_cloudwatch_metric_alarm.lambda), values(aws_cloudwatch_metric_alarm.emf_errors), [aws_cloudwatch_metric_alarm.api_5xx_rate]) :
      a.alarm_actions == toset([aws_sns_topic.alarms[0].arn])
    ])
    error_message = "Every alarm must notify the alarm topic."
  }
}

run "functions_are_configured_for_provided_al2023_on_arm64" {
  command = apply

  assert {
    condition = alltrue([
      for f in aws_lambda_function.this :
      f.runtime == "provided.al2023" && f.architectures == tolist(["arm64"]) && f.handler == "bootstrap" && f.logging_config[0].log_format == "JSON"
    ])
    error_message = "Every function must run bootstrap on provided.al2023/arm64 with JSON logs."
  }
  assert {
    condition     = alltrue([for fn, f in aws_lambda_function.this : f.logging_config[0].log_group == aws_cloudwatch_log_group.function[fn].name && aws_cloudwatch_log_group.function[fn].retention_in_days == 30])
    error_message = "Every function must log to its own log group with the configured retention."
  }
  assert {
    condition     = aws_lambda_function.this["cleanup"].reserved_concurrent_executions == 1
    error_message = "Cleanup must run one at a time."
  }
  assert {
    condition = alltrue([
      for f in aws_lambda_function.this :
      f.environment[0].variables.DATABASE_SECRET_ARN == var.database_secret_arn && !contains(keys(f.environment[0].variables), "DATABASE_URL") && f.environment[0].variables.ENVIRONMENT == "test"
    ])
    error_message = "Functions must get database credentials from Secrets Manager, never from a plain URL."
  }
  assert {
    condition = (
      aws_lambda_function.this["router"].environment[0].variables.PRODUCTION_QUEUE_URL == aws_sqs_queue.production[0].url &&
      aws_lambda_function.this["cleanup"].environment[0].variables.EXPIRY_WARNING_TOPIC_ARN == aws_sns_topic.expiry_warnings[0].arn
    )
    error_message = "The router must know the production queue and cleanup the expiry topic."
  }
  assert {
    condition = (
      aws_lambda_function.this["router"].environment[0].variables.ROUTER_DEAD_LETTER_QUEUE_URL == aws_sqs_queue.ingress_dlq.url &&
      aws_lambda_function.this["router"].environment[0].variables.ROUTER_REDIS_TIMEOUT == "1s" &&
      aws_lambda_function.this["router"].environment[0].variables.ROUTER_SQS_TIMEOUT == "5s"
    )
    error_message = "The router must dead-letter poison to the ingress dead-letter queue, with the default store deadlines."
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.this : length(f.vpc_config) == 0])
    error_message = "Without subnets the functions must run outside a VPC."
  }
}

run "roles_are_least_privilege" {
  command = apply

  assert {
    condition = alltrue([
      for fn, p in aws_iam_role_policy.function :
      toset(flatten([for s in jsondecode(p.policy).Statement : s.Resource if s.Sid == "WriteOwnLogs"])) == toset(["${aws_cloudwatch_log_group.function[fn].arn}:*"])
    ])
    error_message = "Each function may write only to its own log group."
  }
  assert {
    condition     = alltrue(flatten([for p in aws_iam_role_policy.function : [for s in jsondecode(p.policy).Statement : !contains(s.Resource, "*")]]))
    error_message = "Outside a VPC no statement may grant access to every resource."
  }
  assert {
    condition = (
      [for s in jsondecode(aws_iam_role_policy.function["api"].policy).Statement : s.Sid] == ["WriteOwnLogs", "ReadSecrets"] &&
      [for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : s.Sid] == ["WriteOwnLogs", "ReadSecrets", "ConsumeIngressQueue", "SendToProductionQueue", "SendPoisonToIngressDeadLetterQueue"] &&
      [for s in jsondecode(aws_iam_role_policy.function["cleanup"].policy).Statement : s.Sid] == ["WriteOwnLogs", "ReadSecrets", "PublishExpiryWarnings"]
    )
    error_message = "Each role must hold only the statements its function needs."
  }
  assert {
    condition = (
      one([for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : s.Resource if s.Sid == "SendToProductionQueue"]) == [aws_sqs_queue.production[0].arn] &&
      one([for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : s.Resource if s.Sid == "ConsumeIngressQueue"]) == [aws_sqs_queue.ingress.arn] &&
      one([for s in jsondecode(aws_iam_role_policy.function["cleanup"].policy).Statement : s.Resource if s.Sid == "PublishExpiryWarnings"]) == [aws_sns_topic.expiry_warnings[0].arn] &&
      one([for s in jsondecode(aws_iam_role_policy.function["api"].policy).Statement : s.Resource if s.Sid == "ReadSecrets"]) == [var.database_secret_arn]
    )
    error_message = "Statements must name exactly the queue, topic or secret they are for."
  }
  assert {
    condition = (
      one([for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : s.Resource if s.Sid == "SendPoisonToIngressDeadLetterQueue"]) == [aws_sqs_queue.ingress_dlq.arn] &&
      one([for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : s.Action if s.Sid == "SendPoisonToIngressDeadLetterQueue"]) == ["sqs:SendMessage"] &&
      alltrue([for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : !contains(s.Resource, aws_sqs_queue.ingress_dlq.arn) if s.Sid != "SendPoisonToIngressDeadLetterQueue"])
    )
    error_message = "The router may send to the ingress dead-letter queue, and do nothing else with it."
  }
  assert {
    condition = alltrue([
      for fn, p in aws_iam_role_policy.function :
      !contains(flatten([for s in jsondecode(p.policy).Statement : s.Resource]), aws_sqs_queue.ingress_dlq.arn) if fn != "router"
    ])
    error_message = "Only the router may touch the ingress dead-letter queue."
  }
}

run "vpc_and_existing_resources" {
  command = apply

  variables {
    vpc_subnet_ids            = ["subnet-0a1b2c3d", "subnet-1a2b3c4d"]
    vpc_security_group_ids    = ["sg-0a1b2c3d"]
    redis_password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sandboxes/redis-XyZ123"
    secrets_kms_key_arn       = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    existing_production_queue = {
      url = "https://sqs.eu-west-1.amazonaws.com/123456789012/bot-production"
      arn = "arn:aws:sqs:eu-west-1:123456789012:bot-production"
    }
    alarm_topic_arn          = "arn:aws:sns:eu-west-1:123456789012:ops-alarms"
    expiry_warning_topic_arn = "arn:aws:sns:eu-west-1:123456789012:sandbox-expiry"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : toset(f.vpc_config[0].subnet_ids) == toset(var.vpc_subnet_ids) && toset(f.vpc_config[0].security_group_ids) == toset(var.vpc_security_group_ids)])
    error_message = "With subnets every function must run in the VPC."
  }
  assert {
    condition     = alltrue([for p in aws_iam_role_policy.function : contains([for s in jsondecode(p.policy).Statement : s.Sid], "ManageVpcNetworkInterfaces")])
    error_message = "In a VPC every role must be allowed to manage its network interfaces."
  }
  assert {
    condition     = length(aws_sqs_queue.production) == 0 && length(aws_sns_topic.alarms) == 0 && length(aws_sns_topic.expiry_warnings) == 0
    error_message = "Existing queues and topics must not be created again."
  }
  assert {
    condition = (
      aws_lambda_function.this["router"].environment[0].variables.PRODUCTION_QUEUE_URL == var.existing_production_queue.url &&
      one([for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : s.Resource if s.Sid == "SendToProductionQueue"]) == [var.existing_production_queue.arn] &&
      aws_lambda_function.this["cleanup"].environment[0].variables.EXPIRY_WARNING_TOPIC_ARN == var.expiry_warning_topic_arn &&
      aws_cloudwatch_metric_alarm.metric["cleanup-failures"].alarm_actions == toset([var.alarm_topic_arn])
    )
    error_message = "Existing queues and topics must be used in their place."
  }
  assert {
    condition = (
      toset(one([for s in jsondecode(aws_iam_role_policy.function["api"].policy).Statement : s.Resource if s.Sid == "ReadSecrets"])) == toset([var.database_secret_arn, var.redis_password_secret_arn]) &&
      one([for s in jsondecode(aws_iam_role_policy.function["api"].policy).Statement : s.Resource if s.Sid == "DecryptSecrets"]) == [var.secrets_kms_key_arn] &&
      aws_lambda_function.this["api"].environment[0].variables.REDIS_PASSWORD_SECRET_ARN == var.redis_password_secret_arn
    )
    error_message = "The Redis password secret and the secrets' KMS key must be readable."
  }
}

run "half_configured_vpc_is_rejected" {
  command = plan

  variables {
    vpc_subnet_ids = ["subnet-0a1b2c3d"]
  }

  expect_failures = [var.vpc_security_group_ids]
}

run "missing_package_is_reported" {
  command = plan

  variables {
    package_dir = "tests/no-such-dir"
  }

  expect_failures = [aws_lambda_function.this]
}

run "migrate_step_follows_every_api_update" {
  command = apply

  assert {
    condition = (
      length(aws_lambda_invocation.migrate) == 1 &&
      aws_lambda_invocation.migrate[0].function_name == aws_lambda_function.this["api"].function_name &&
      jsondecode(aws_lambda_invocation.migrate[0].input) == { migrate = true }
    )
    error_message = "Every apply must invoke the api function's migrate step, {\"migrate\": true}, and grant no role unless asked."
  }
  assert {
    condition     = aws_lambda_invocation.migrate[0].triggers.api_package == filebase64sha256("tests/fixtures/api.zip")
    error_message = "The migrate step must run again whenever the api package changes."
  }
  assert {
    condition     = output.migrated_schema_version == "0012_teardown_claims"
    error_message = "The output must carry the version the migrate step reported."
  }
}

run "migrate_step_can_be_left_to_the_operator" {
  command = plan

  variables {
    run_migrations = false
  }

  assert {
    condition     = length(aws_lambda_invocation.migrate) == 0 && output.migrated_schema_version == null
    error_message = "run_migrations = false must invoke nothing."
  }
}

run "router_runs_on_its_own_database_role" {
  command = plan

  variables {
    router_database_role       = "sandbox_router"
    router_database_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sandboxes/router-XyZ123"
  }

  assert {
    condition     = jsondecode(aws_lambda_invocation.migrate[0].input) == { migrate = true, router_role = "sandbox_router" }
    error_message = "The migrate step must grant the router's role its privileges."
  }
  assert {
    condition     = aws_lambda_invocation.migrate[0].triggers.router_role == "sandbox_router"
    error_message = "Naming another router role must run the migrate step again, to grant it."
  }
  assert {
    condition = (
      aws_lambda_function.this["router"].environment[0].variables.DATABASE_SECRET_ARN == var.router_database_secret_arn &&
      aws_lambda_function.this["api"].environment[0].variables.DATABASE_SECRET_ARN == var.database_secret_arn &&
      aws_lambda_function.this["cleanup"].environment[0].variables.DATABASE_SECRET_ARN == var.database_secret_arn
    )
    error_message = "The router must connect with its own secret, the api and cleanup with the owner's."
  }
  assert {
    condition = (
      one([for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : s.Resource if s.Sid == "ReadSecrets"]) == [var.router_database_secret_arn] &&
      one([for s in jsondecode(aws_iam_role_policy.function["api"].policy).Statement : s.Resource if s.Sid == "ReadSecrets"]) == [var.database_secret_arn] &&
      one([for s in jsondecode(aws_iam_role_policy.function["cleanup"].policy).Statement : s.Resource if s.Sid == "ReadSecrets"]) == [var.database_secret_arn]
    )
    error_message = "The router must read its own database secret and not the owner's."
  }
}

run "router_secret_needs_its_role" {
  command = plan

  variables {
    router_database_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sandboxes/router-XyZ123"
  }

  expect_failures = [var.router_database_secret_arn]
}

run "sandboxes_live_in_a_worker_database_apart" {
  command = plan

  variables {
    worker_database_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sandboxes/workers-XyZ123"
  }

  assert {
    condition = (
      aws_lambda_function.this["api"].environment[0].variables.WORKER_DATABASE_SECRET_ARN == var.worker_database_secret_arn &&
      aws_lambda_function.this["cleanup"].environment[0].variables.WORKER_DATABASE_SECRET_ARN == var.worker_database_secret_arn &&
      !contains(keys(aws_lambda_function.this["router"].environment[0].variables), "WORKER_DATABASE_SECRET_ARN")
    )
    error_message = "The api and cleanup must reach the sandboxes' database, and the router must not."
  }
  assert {
    condition = (
      contains(one([for s in jsondecode(aws_iam_role_policy.function["api"].policy).Statement : s.Resource if s.Sid == "ReadSecrets"]), var.worker_database_secret_arn) &&
      contains(one([for s in jsondecode(aws_iam_role_policy.function["cleanup"].policy).Statement : s.Resource if s.Sid == "ReadSecrets"]), var.worker_database_secret_arn) &&
      !contains(one([for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : s.Resource if s.Sid == "ReadSecrets"]), var.worker_database_secret_arn)
    )
    error_message = "Only the api and cleanup may read the sandboxes' database secret."
  }
  assert {
    condition     = aws_lambda_invocation.migrate[0].triggers.worker_database == var.worker_database_secret_arn
    error_message = "Naming another worker database must run the migrate step again, to migrate it."
  }
}

run "worker_database_is_another_database" {
  command = plan

  variables {
    worker_database_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sandboxes/db-XyZ123"
    database_secret_arn        = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sandboxes/db-XyZ123"
  }

  expect_failures = [var.worker_database_secret_arn]
}

run "sandboxes_keys_live_in_a_redis_apart" {
  command = plan

  variables {
    worker_redis_addr    = "sandboxes.abc123.euw1.cache.amazonaws.com:6379"
    worker_redis_cluster = true
  }

  assert {
    condition = alltrue([for f in ["api", "router", "cleanup"] :
      aws_lambda_function.this[f].environment[0].variables.WORKER_REDIS_ADDR == var.worker_redis_addr &&
      aws_lambda_function.this[f].environment[0].variables.WORKER_REDIS_CLUSTER == "true" &&
      aws_lambda_function.this[f].environment[0].variables.REDIS_ADDR == var.redis_addr
    ])
    error_message = "Every function must reach the sandboxes' own Redis (the router appends to their streams), and keep the route cache on redis_addr."
  }
}

run "sandboxes_share_redis_by_default" {
  command = plan

  assert {
    condition = alltrue([for f in ["api", "router", "cleanup"] :
      !contains(keys(aws_lambda_function.this[f].environment[0].variables), "WORKER_REDIS_ADDR")
    ])
    error_message = "Without worker_redis_addr the functions must not be told of a Redis apart."
  }
}

run "worker_redis_is_another_server" {
  command = plan

  variables {
    worker_redis_addr = "REDIS.example.internal:6379"
    redis_addr        = "redis.example.internal:6379"
  }

  expect_failures = [var.worker_redis_addr]
}

run "standard_queues_by_default" {
  command = plan

  assert {
    condition = (
      local.queue_suffix == "" && aws_sqs_queue.production[0].name == "discord-sandboxes-test-production" &&
      aws_sqs_queue.ingress.fifo_queue != true && aws_sqs_queue.ingress_dlq.fifo_queue != true && aws_sqs_queue.production[0].fifo_queue != true
    )
    error_message = "Without fifo_queues every queue is a standard queue."
  }
}

run "fifo_queues_make_every_queue_fifo" {
  command = apply

  variables {
    fifo_queues                            = true
    router_maximum_batching_window_seconds = 0
  }

  assert {
    condition = (
      local.queue_suffix == ".fifo" && endswith(aws_sqs_queue.production[0].name, "-production.fifo") &&
      aws_sqs_queue.ingress.fifo_queue && aws_sqs_queue.ingress_dlq.fifo_queue && aws_sqs_queue.production[0].fifo_queue
    )
    error_message = "With fifo_queues the ingress queue, its dead-letter queue and the production queue are FIFO queues named .fifo."
  }
  assert {
    condition = (
      aws_sqs_queue.ingress.deduplication_scope == "queue" && aws_sqs_queue.ingress.fifo_throughput_limit == "perQueue" &&
      aws_sqs_queue.ingress.content_based_deduplication == false
    )
    error_message = "A FIFO ingress queue deduplicates per queue by default, with the ingress service's deduplication ids."
  }
  assert {
    condition = (
      aws_lambda_event_source_mapping.ingress.batch_size <= 10 &&
      (aws_lambda_event_source_mapping.ingress.maximum_batching_window_in_seconds == null || aws_lambda_event_source_mapping.ingress.maximum_batching_window_in_seconds == 0)
    )
    error_message = "A FIFO source mapping takes batches of at most 10 and no batching window."
  }
}

run "fifo_high_throughput_works_per_message_group" {
  command = plan

  variables {
    fifo_queues          = true
    fifo_high_throughput = true
  }

  assert {
    condition = alltrue([for q in [aws_sqs_queue.ingress, aws_sqs_queue.ingress_dlq, aws_sqs_queue.production[0]] :
    q.deduplication_scope == "messageGroup" && q.fifo_throughput_limit == "perMessageGroupId"])
    error_message = "High throughput mode deduplicates and limits throughput per message group, on every queue."
  }
}

run "fifo_batches_above_10_are_rejected" {
  command = plan

  variables {
    fifo_queues                            = true
    router_batch_size                      = 50
    router_maximum_batching_window_seconds = 2
  }

  expect_failures = [var.router_batch_size]
}

run "fifo_settings_need_fifo_queues" {
  command = plan

  variables {
    fifo_high_throughput                = true
    ingress_content_based_deduplication = true
  }

  expect_failures = [var.fifo_high_throughput, var.ingress_content_based_deduplication]
}
