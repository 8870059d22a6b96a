# Ingress: the Discord ingress service (not part of this stack) puts every
# gateway dispatch on the ingress queue; the router consumes it and reports
# per-message failures, so one bad message never fails its whole batch.
# The router sends poison messages to the dead-letter queue itself, at once
# (ROUTER_DEAD_LETTER_QUEUE_URL); messages that keep failing, and poison the
# router could not send there, move to it through the redrive policy.

resource "aws_sqs_queue" "ingress_dlq" {
  name                      = "${local.name}-ingress-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "ingress" {
  name                       = "${local.name}-ingress"
  visibility_timeout_seconds = local.ingress_visibility_timeout_seconds
  message_retention_seconds  = var.ingress_message_retention_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.ingress_dlq.arn
    maxReceiveCount     = var.ingress_max_receive_count
  })

  lifecycle {
    # Holds for the derived default too; the variable's validation catches
    # an explicit value first.
    precondition {
      condition     = local.ingress_visibility_timeout_seconds >= 6 * var.router_timeout_seconds
      error_message = "The ingress visibility timeout must be at least 6 x the router's timeout."
    }
  }
}

# The production bot's queue: events of guilds that belong to no sandbox.
resource "aws_sqs_queue" "production" {
  count = var.existing_production_queue == null ? 1 : 0

  name                    = "${local.name}-production"
  sqs_managed_sse_enabled = true
}

resource "aws_lambda_event_source_mapping" "ingress" {
  function_name    = aws_lambda_function.this["router"].arn
  event_source_arn = aws_sqs_queue.ingress.arn

  batch_size                         = var.router_batch_size
  maximum_batching_window_in_seconds = var.router_maximum_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.router_maximum_concurrency
  }
}
