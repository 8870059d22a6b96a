# The three functions. Terraform only deploys the zips `make package` built
# (scripts/package.sh): one `bootstrap` each, linux/arm64, for provided.al2023.

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "this" {
  for_each = local.functions

  function_name = local.function_names[each.key]
  description   = each.value.description
  role          = aws_iam_role.function[each.key].arn

  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"

  filename         = local.package_paths[each.key]
  source_code_hash = fileexists(local.package_paths[each.key]) ? filebase64sha256(local.package_paths[each.key]) : null

  timeout                        = each.value.timeout
  memory_size                    = each.value.memory_size
  reserved_concurrent_executions = each.value.reserved_concurrency

  environment {
    # The api function's owner key (API_OWNER_KEY; docs/api.md, "Who owns a sandbox") and,
    # when set, its cursor key (API_CURSOR_KEY, sensitive: kept out of local.functions,
    # whose keys drive for_each). The router connects as its own database role when it has
    # one (router_database_secret_arn; docs/deploy.md), a role that may run no DDL.
    variables = merge(
      local.common_environment,
      each.value.environment,
      each.key == "api" ? { API_OWNER_KEY = var.api_owner_key } : {},
      each.key == "api" && var.api_cursor_key != null ? { API_CURSOR_KEY = var.api_cursor_key } : {},
      each.key == "router" && var.router_database_secret_arn != null ? { DATABASE_SECRET_ARN = var.router_database_secret_arn } : {},
    )
  }

  # JSON system logs; the functions write JSON (slog and EMF) themselves, which
  # Lambda passes through unchanged, so CloudWatch still extracts EMF metrics.
  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  dynamic "vpc_config" {
    for_each = local.vpc_enabled ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = var.vpc_security_group_ids
    }
  }

  # The role's permissions must exist before the function first runs (and,
  # for a VPC function, before Lambda creates its network interfaces).
  depends_on = [aws_iam_role_policy.function]

  lifecycle {
    precondition {
      condition     = fileexists(local.package_paths[each.key])
      error_message = "No package at ${local.package_paths[each.key]}: run `make package` first, or set package_dir."
    }
  }
}
