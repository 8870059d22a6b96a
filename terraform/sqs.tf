# Ingress: the Discord ingress service (not part of this stack) puts every
# gateway dispatch on the ingress queue; the router consumes it and reports
# per-message failures, so one bad message never fails its whole batch.
# The router sends poison messages to the dead-letter queue itself, at once
# (ROUTER_DEAD_LETTER_QUEUE_URL); messages that keep failing, and poison the
# router could not send there, move to it through the redrive policy.

# With fifo_queues the three queues are FIFO queues (docs/deploy.md, "Queue
# kinds"): names end in .fifo, a FIFO queue's dead-letter queue is FIFO too,
# and the router keeps each message group's order and sends production events
# with their group and a deduplication id of its own (no content-based
# deduplication needed on production or the dead-letter queue).
resource "aws_sqs_queue" "ingress_dlq" {
  name                      = "${local.name}-ingress-dlq${local.queue_suffix}"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true

  fifo_queue            = var.fifo_queues ? true : null
  deduplication_scope   = local.fifo_deduplication_scope
  fifo_throughput_limit = local.fifo_throughput_limit
}

resource "aws_sqs_queue" "ingress" {
  name                       = "${local.name}-ingress${local.queue_suffix}"
  visibility_timeout_seconds = local.ingress_visibility_timeout_seconds
  message_retention_seconds  = var.ingress_message_retention_seconds
  sqs_managed_sse_enabled    = true

  fifo_queue = var.fifo_queues ? true : null
  # The ingress service's choice: its own deduplication ids, or the body's hash.
  content_based_deduplication = var.fifo_queues ? var.ingress_content_based_deduplication : null
  deduplication_scope         = local.fifo_deduplication_scope
  fifo_throughput_limit       = local.fifo_throughput_limit

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

  name                    = "${local.name}-production${local.queue_suffix}"
  sqs_managed_sse_enabled = true

  fifo_queue            = var.fifo_queues ? true : null
  deduplication_scope   = local.fifo_deduplication_scope
  fifo_throughput_limit = local.fifo_throughput_limit
}

resource "aws_lambda_event_source_mapping" "ingress" {
  function_name    = aws_lambda_function.this["router"].arn
  event_source_arn = aws_sqs_queue.ingress.arn

  batch_size = var.router_batch_size
  # A FIFO source takes no batching window at all (AWS refuses one).
  maximum_batching_window_in_seconds = var.fifo_queues ? null : var.router_maximum_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.router_maximum_concurrency
  }

  lifecycle {
    precondition {
      condition     = !var.fifo_queues || var.router_batch_size <= 10
      error_message = "A FIFO ingress queue delivers batches of at most 10 messages: set router_batch_size to 10 or less."
    }
  }
}
