# Cleanup runs every 15 minutes. An EventBridge rule (rather than EventBridge
# Scheduler) delivers the standard "Scheduled Event" envelope the cleanup
# handler takes. Failed deliveries are retried, then parked in a queue.

locals {
  cleanup_schedule_expression = "rate(15 minutes)"

  # A delivery older than one interval is pointless: the next run does the work.
  cleanup_retry_policy = {
    maximum_event_age_in_seconds = 900
    maximum_retry_attempts       = 2
  }
}

resource "aws_cloudwatch_event_rule" "cleanup" {
  name                = "${local.name}-cleanup"
  description         = "Runs the sandbox cleanup job."
  schedule_expression = local.cleanup_schedule_expression
}

resource "aws_cloudwatch_event_target" "cleanup" {
  rule      = aws_cloudwatch_event_rule.cleanup.name
  target_id = "cleanup"
  arn       = aws_lambda_function.this["cleanup"].arn

  retry_policy {
    maximum_event_age_in_seconds = local.cleanup_retry_policy.maximum_event_age_in_seconds
    maximum_retry_attempts       = local.cleanup_retry_policy.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.cleanup_schedule_dlq.arn
  }
}

resource "aws_lambda_permission" "cleanup_schedule" {
  statement_id  = "AllowEventBridgeInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["cleanup"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.cleanup.arn
}

# Once EventBridge has handed a run to Lambda, Lambda's own asynchronous
# retries apply: by default two more attempts after an error, and up to six
# hours of waiting while the single reserved slot is busy. A run that failed
# or is that late is better left to the next scheduled one.
resource "aws_lambda_function_event_invoke_config" "cleanup" {
  function_name                = aws_lambda_function.this["cleanup"].function_name
  maximum_event_age_in_seconds = local.cleanup_retry_policy.maximum_event_age_in_seconds
  maximum_retry_attempts       = 0
}

resource "aws_sqs_queue" "cleanup_schedule_dlq" {
  name                      = "${local.name}-cleanup-schedule-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

# EventBridge delivers to a dead-letter queue with its own service principal,
# limited here to this rule.
resource "aws_sqs_queue_policy" "cleanup_schedule_dlq" {
  queue_url = aws_sqs_queue.cleanup_schedule_dlq.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeDeadLetters"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.cleanup_schedule_dlq.arn
      Condition = {
        ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.cleanup.arn }
      }
    }]
  })
}
