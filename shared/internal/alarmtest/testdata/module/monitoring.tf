# A module shaped like terraform/monitoring.tf, for the tests of the parser.

variable "environment" {
  type = string
}

locals {
  name              = "fixture-${var.environment}"
  metrics_namespace = "Fixture"
  metric_dimensions = { Environment = var.environment }

  metric_alarms = {
    defaults = {
      metric_name         = "Requests"
      statistic           = "Sum"
      comparison_operator = "GreaterThanThreshold"
      threshold           = 50
      period              = 300
      evaluation_periods  = 2
    }
    three-of-five = {
      metric_name         = "Latency"
      statistic           = "Average"
      comparison_operator = "LessThanOrEqualToThreshold"
      threshold           = 1.5
      period              = 60
      evaluation_periods  = 5
      datapoints_to_alarm = 3
      treat_missing_data  = "ignore"
    }
  }

  # Not read by the alarms: a function the parser does not know is no problem here.
  alarm_actions = [upper(aws_sns_topic.alarms.arn)]
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  alarm_name          = "${local.name}-${each.key}"
  namespace           = local.metrics_namespace
  metric_name         = each.value.metric_name
  dimensions          = local.metric_dimensions
  statistic           = each.value.statistic
  comparison_operator = each.value.comparison_operator
  threshold           = each.value.threshold
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = try(each.value.datapoints_to_alarm, null)
  treat_missing_data  = lookup(each.value, "treat_missing_data", "missing")
  alarm_actions       = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "other" {
  alarm_name  = "${local.name}-other"
  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions  = { QueueName = aws_sqs_queue.q.name }
  statistic   = "Maximum"
}
