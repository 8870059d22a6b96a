# Applies the whole stack to a local moto_server, reads it back and destroys
# it. scripts/terraform-check.sh starts moto and passes its address:
#   terraform test -filter=tests/moto.tftest.hcl -var='moto_endpoint="http://127.0.0.1:PORT"'
# (the value is an HCL expression, hence the inner quotes: the stack itself
# declares no such variable).
# moto stores every resource but cannot run Lambda code: the functions are
# created from the fixture zips.

# moto_endpoint has no default here: a value set in this file would win over
# the command line's -var.
variables {
  region      = "us-east-1"
  environment = "moto"
  package_dir = "tests/fixtures"
  redis_addr  = "redis.internal:6379"

  # moto checks neither that the secret exists nor that the subnets do, and
  # every extra run costs this suite several provider start-ups, so the
  # prerequisites of a real deployment (docs/deploy.md) are only named here.
  database_secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sandboxes/database-AbCdEf"

  # moto stores the functions but cannot run them: the migrate step (an invocation of the
  # api function) is the operator's here, as docs/deploy.md describes.
  run_migrations         = false
  vpc_subnet_ids         = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
  vpc_security_group_ids = ["sg-0a1b2c3d4e5f60001"]
}

# Replaces the stack's provider configuration for this file only, so the
# production root never carries test endpoints.
provider "aws" {
  region     = var.region
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    apigatewayv2   = var.moto_endpoint
    cloudwatch     = var.moto_endpoint
    ec2            = var.moto_endpoint
    events         = var.moto_endpoint
    iam            = var.moto_endpoint
    lambda         = var.moto_endpoint
    logs           = var.moto_endpoint
    secretsmanager = var.moto_endpoint
    sns            = var.moto_endpoint
    sqs            = var.moto_endpoint
    sts            = var.moto_endpoint
  }
}

run "apply" {
  assert {
    condition     = length(aws_lambda_function.this) == 3 && alltrue([for f in aws_lambda_function.this : f.runtime == "provided.al2023"])
    error_message = "moto must hold the three functions."
  }
  assert {
    condition     = startswith(output.api_url, "https://") && startswith(output.ingress_queue_url, "http")
    error_message = "The outputs must carry the API and queue URLs."
  }
  assert {
    condition     = length(aws_lambda_invocation.migrate) == 0
    error_message = "With run_migrations = false nothing invokes the api function."
  }
}

# A refresh-only plan reads every resource back from moto, so the assertions
# below check what the AWS APIs hold, not what Terraform sent.
run "read_back" {
  command = plan

  plan_options {
    mode = refresh-only
  }

  assert {
    condition = [
      for name, want in local.metric_alarms : name if !(
        aws_cloudwatch_metric_alarm.metric[name].metric_name == want.metric_name &&
        aws_cloudwatch_metric_alarm.metric[name].namespace == "DiscordSandboxes" &&
        aws_cloudwatch_metric_alarm.metric[name].dimensions == tomap({ Environment = "moto" }) &&
        aws_cloudwatch_metric_alarm.metric[name].statistic == want.statistic &&
        aws_cloudwatch_metric_alarm.metric[name].comparison_operator == want.comparison_operator &&
        aws_cloudwatch_metric_alarm.metric[name].threshold == want.threshold &&
        aws_cloudwatch_metric_alarm.metric[name].period == want.period &&
        aws_cloudwatch_metric_alarm.metric[name].evaluation_periods == want.evaluation_periods &&
        aws_cloudwatch_metric_alarm.metric[name].treat_missing_data == want.treat_missing_data
      )
    ] == []
    error_message = "Custom-metric alarms read back differently from their definition."
  }
  assert {
    condition = [
      for name, want in local.queue_alarms : name if !(
        aws_cloudwatch_metric_alarm.queue[name].metric_name == want.metric_name &&
        aws_cloudwatch_metric_alarm.queue[name].dimensions == tomap({ QueueName = want.queue_name }) &&
        aws_cloudwatch_metric_alarm.queue[name].threshold == want.threshold &&
        aws_cloudwatch_metric_alarm.queue[name].period == want.period
      )
    ] == []
    error_message = "Queue alarms read back differently from their definition."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.lambda) == 6 && length(aws_cloudwatch_metric_alarm.emf_errors) == 3 && length(aws_cloudwatch_metric_alarm.api_5xx_rate.metric_query) == 3
    error_message = "Function, EMF and API alarms must read back."
  }
  assert {
    condition     = alltrue([for a in aws_cloudwatch_metric_alarm.metric : a.alarm_actions == toset([aws_sns_topic.alarms[0].arn])])
    error_message = "Alarms must read back with the alarm topic as action."
  }

  assert {
    condition     = aws_cloudwatch_event_rule.cleanup.schedule_expression == "rate(15 minutes)"
    error_message = "The cleanup schedule must read back as every 15 minutes."
  }
  assert {
    condition = (
      aws_cloudwatch_event_target.cleanup.arn == aws_lambda_function.this["cleanup"].arn &&
      aws_cloudwatch_event_target.cleanup.retry_policy[0].maximum_retry_attempts == local.cleanup_retry_policy.maximum_retry_attempts &&
      aws_cloudwatch_event_target.cleanup.dead_letter_config[0].arn == aws_sqs_queue.cleanup_schedule_dlq.arn &&
      aws_lambda_function_event_invoke_config.cleanup.maximum_retry_attempts == 0
    )
    error_message = "The cleanup target must read back with its retry policy and dead-letter queue."
  }

  assert {
    condition = (
      aws_lambda_event_source_mapping.ingress.function_response_types == toset(["ReportBatchItemFailures"]) &&
      aws_lambda_event_source_mapping.ingress.event_source_arn == aws_sqs_queue.ingress.arn &&
      aws_lambda_event_source_mapping.ingress.batch_size == var.router_batch_size
    )
    error_message = "The event source mapping must read back reporting batch item failures."
  }
  assert {
    condition     = aws_sqs_queue.ingress.visibility_timeout_seconds == 6 * var.router_timeout_seconds && jsondecode(aws_sqs_queue.ingress.redrive_policy).deadLetterTargetArn == aws_sqs_queue.ingress_dlq.arn
    error_message = "The ingress queue must read back with its visibility timeout and redrive policy."
  }
  assert {
    condition = (
      aws_lambda_function.this["router"].environment[0].variables.ROUTER_DEAD_LETTER_QUEUE_URL == aws_sqs_queue.ingress_dlq.url &&
      one([for s in jsondecode(aws_iam_role_policy.function["router"].policy).Statement : s.Resource if s.Sid == "SendPoisonToIngressDeadLetterQueue"]) == [aws_sqs_queue.ingress_dlq.arn]
    )
    error_message = "The router must read back knowing the ingress dead-letter queue and allowed to send to it."
  }

  assert {
    condition     = toset([for r in aws_apigatewayv2_route.api : r.route_key]) == toset(local.api_routes)
    error_message = "The API routes must read back as the API contract."
  }
  assert {
    condition     = alltrue([for r in aws_apigatewayv2_route.api : r.authorization_type == "AWS_IAM"])
    error_message = "Every route must read back as AWS_IAM-authorized."
  }
  assert {
    condition     = aws_apigatewayv2_integration.api.payload_format_version == "2.0"
    error_message = "The integration must read back with payload format 2.0."
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : toset(f.vpc_config[0].subnet_ids) == toset(var.vpc_subnet_ids)])
    error_message = "The functions must read back inside the VPC."
  }
}

# The same stack switched to FIFO queues: SQS cannot turn a standard queue
# into a FIFO one, so the three queues are replaced (new names ending in
# .fifo) and the event source mapping follows the new ingress queue.
run "apply_fifo" {
  variables {
    fifo_queues          = true
    fifo_high_throughput = true
    router_batch_size    = 10
  }

  assert {
    condition = alltrue([
      for q in [aws_sqs_queue.ingress, aws_sqs_queue.ingress_dlq, aws_sqs_queue.production[0]] :
      q.fifo_queue && endswith(q.name, ".fifo") && endswith(q.url, ".fifo")
    ])
    error_message = "With fifo_queues the three queues must be FIFO queues named *.fifo."
  }
  assert {
    condition     = aws_lambda_function.this["router"].environment[0].variables.PRODUCTION_QUEUE_URL == aws_sqs_queue.production[0].url
    error_message = "The router must send to the FIFO production queue."
  }
}

run "read_back_fifo" {
  command = plan

  variables {
    fifo_queues          = true
    fifo_high_throughput = true
    router_batch_size    = 10
  }

  plan_options {
    mode = refresh-only
  }

  assert {
    condition = alltrue([
      for q in [aws_sqs_queue.ingress, aws_sqs_queue.ingress_dlq, aws_sqs_queue.production[0]] :
      q.fifo_queue && q.deduplication_scope == "messageGroup" && q.fifo_throughput_limit == "perMessageGroupId"
    ])
    error_message = "The FIFO queues must read back in high throughput mode."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.ingress.redrive_policy).deadLetterTargetArn == aws_sqs_queue.ingress_dlq.arn && !aws_sqs_queue.ingress.content_based_deduplication
    error_message = "The FIFO ingress queue must read back redriving to the FIFO dead-letter queue, without content-based deduplication."
  }
  assert {
    condition = (
      aws_lambda_event_source_mapping.ingress.event_source_arn == aws_sqs_queue.ingress.arn &&
      aws_lambda_event_source_mapping.ingress.batch_size == 10 &&
      aws_lambda_event_source_mapping.ingress.function_response_types == toset(["ReportBatchItemFailures"])
    )
    error_message = "The event source mapping must read back on the FIFO ingress queue, batches of 10, reporting batch item failures."
  }
}
