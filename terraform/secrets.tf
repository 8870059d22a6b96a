# The secrets themselves (database credentials, optional Redis password) live
# outside this stack: they are created with the database, before the first
# apply, and referenced here by ARN. The functions read them at cold start,
# so credentials never appear in environment variables or in the state.

locals {
  # Every function reads the same secrets, but the router reads its own database secret
  # instead when it has one (router_database_secret_arn), and never the sandboxes' database
  # secret (worker_database_secret_arn).
  secret_arns = { for fn in keys(local.functions) : fn => compact([
    fn == "router" && var.router_database_secret_arn != null ? var.router_database_secret_arn : var.database_secret_arn,
    fn == "router" ? null : var.worker_database_secret_arn,
    var.redis_password_secret_arn,
  ]) }

  secrets_statements = { for fn, arns in local.secret_arns : fn => concat(
    [{
      Sid      = "ReadSecrets"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = arns
    }],
    var.secrets_kms_key_arn == null ? [] : [{
      Sid      = "DecryptSecrets"
      Effect   = "Allow"
      Action   = ["kms:Decrypt"]
      Resource = [var.secrets_kms_key_arn]
      Condition = {
        StringEquals = { "kms:ViaService" = "secretsmanager.${local.region}.amazonaws.com" }
      }
    }],
  ) }
}
