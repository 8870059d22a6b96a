output "api_url" {
  description = "Base URL of the sandbox API (requests must be SigV4-signed for execute-api)."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "api_id" {
  description = "Id of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "ingress_queue_url" {
  description = "Queue the Discord ingress service sends gateway events to."
  value       = aws_sqs_queue.ingress.url
}

output "ingress_queue_arn" {
  description = "ARN of the ingress queue, for the ingress service's send permission."
  value       = aws_sqs_queue.ingress.arn
}

output "ingress_dlq_url" {
  description = "Dead-letter queue of the ingress queue."
  value       = aws_sqs_queue.ingress_dlq.url
}

output "production_queue_url" {
  description = "Queue the router forwards production events to."
  value       = local.production_queue.url
}

output "cleanup_schedule_dlq_url" {
  description = "Queue holding cleanup invocations EventBridge could not deliver."
  value       = aws_sqs_queue.cleanup_schedule_dlq.url
}

output "function_names" {
  description = "Lambda function names by role (api, router, cleanup)."
  value       = { for fn, f in aws_lambda_function.this : fn => f.function_name }
}

output "alarm_topic_arn" {
  description = "SNS topic receiving alarm notifications."
  value       = local.alarm_topic_arn
}

output "expiry_warning_topic_arn" {
  description = "SNS topic cleanup publishes expiry warnings to."
  value       = local.expiry_warning_topic_arn
}

output "dashboard_url" {
  description = "CloudWatch dashboard of the suite."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards/dashboard/${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "migrated_schema_version" {
  description = "Schema version the last migrate step reported (null when run_migrations is off)."
  value       = var.run_migrations ? jsondecode(aws_lambda_invocation.migrate[0].result).version : null
}
