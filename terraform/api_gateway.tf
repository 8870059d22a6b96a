# HTTP API in front of the api function. Every route requires SigV4-signed
# requests (AWS_IAM): the caller's IAM principal is the sandbox owner.

locals {
  # The API contract: every route the api function serves, as API Gateway
  # route keys. tests/unit.tftest.hcl checks every one is IAM-authorized;
  # the api function must serve exactly these.
  api_routes = [
    "GET /health",
    "POST /v1/sandboxes",
    "GET /v1/sandboxes",
    "GET /v1/sandboxes/{name}",
    "POST /v1/sandboxes/{name}/extend",
    "DELETE /v1/sandboxes/{name}",
    "PUT /v1/sandboxes/{name}/guilds/{guild_id}",
    "DELETE /v1/sandboxes/{name}/guilds/{guild_id}",
    "POST /v1/sandboxes/{name}/connect",
    "GET /v1/sandboxes/{name}/health",
    "GET /v1/sandboxes/{name}/events",
    "POST /v1/sandboxes/{name}/events/read",
    "POST /v1/sandboxes/{name}/events/claim",
    "POST /v1/sandboxes/{name}/events/ack",
    "POST /v1/sandboxes/{name}/events/rewind",
    "GET /v1/sandboxes/{name}/shares",
    "POST /v1/sandboxes/{name}/shares",
    "DELETE /v1/sandboxes/{name}/shares",
    "GET /v1/routes/{guild_id}",
    "GET /v1/guilds/parked",
    "POST /v1/guilds/{guild_id}/release",
    "GET /v1/test-guilds",
    "PUT /v1/admin/test-guilds/{guild_id}",
    "DELETE /v1/admin/test-guilds/{guild_id}",
    "GET /v1/admin/protected-guilds",
    "PUT /v1/admin/protected-guilds/{guild_id}",
    "DELETE /v1/admin/protected-guilds/{guild_id}",
    "POST /v1/admin/cleanup",
    "GET /v1/admin/orphans",
    "GET /v1/templates",
    "POST /v1/admin/templates",
    "PATCH /v1/admin/templates/{template}",
    "DELETE /v1/admin/templates/{template}",
  ]

  # API Gateway's own limit on how long it waits for an integration.
  api_integration_timeout_ms = 30000
}

resource "aws_apigatewayv2_api" "this" {
  name          = "${local.name}-api"
  description   = "Discord sandboxes management API."
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_integration" "api" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.this["api"].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = local.api_integration_timeout_ms
}

resource "aws_apigatewayv2_route" "api" {
  for_each = toset(local.api_routes)

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.value
  authorization_type = "AWS_IAM"
  target             = "integrations/${aws_apigatewayv2_integration.api.id}"
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/aws/apigateway/${local.name}-api"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit    = var.api_throttling_rate_limit
    throttling_burst_limit   = var.api_throttling_burst_limit
    detailed_metrics_enabled = true
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      routeKey           = "$context.routeKey"
      path               = "$context.path"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      responseLatency    = "$context.responseLatency"
      integrationLatency = "$context.integrationLatency"
      integrationStatus  = "$context.integrationStatus"
      integrationError   = "$context.integrationErrorMessage"
      errorMessage       = "$context.error.message"
      sourceIp           = "$context.identity.sourceIp"
      userArn            = "$context.identity.userArn"
      userAgent          = "$context.identity.userAgent"
    })
  }
}

resource "aws_lambda_permission" "api_gateway" {
  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["api"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}
