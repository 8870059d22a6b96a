variable "environment" {
  type = string
}

locals {
  metric_alarms = {
    percentile = {
      metric_name = "Latency"
      statistic   = "p99"
      period      = 90.5
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  namespace           = "Fixture"
  metric_name         = each.value.metric_name
  statistic           = each.value.statistic
  comparison_operator = "GreaterThanUpperThreshold"
  threshold           = 1
  period              = each.value.period
  evaluation_periods  = 1
  treat_missing_data  = "sometimes"
}
