# Alarm notifications and expiry warnings (cleanup publishes one message per
# sandbox about to expire; owners or a chat bridge subscribe). Either topic
# can be an existing one instead.

resource "aws_sns_topic" "alarms" {
  count = var.alarm_topic_arn == null ? 1 : 0

  name = "${local.name}-alarms"
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = toset(var.alarm_email_addresses)

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic" "expiry_warnings" {
  count = var.expiry_warning_topic_arn == null ? 1 : 0

  name = "${local.name}-expiry-warnings"
}
