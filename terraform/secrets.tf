# The secrets themselves (database credentials, optional Redis password) live
# outside this stack: they are created with the database, before the first
# apply, and referenced here by ARN. The functions read them at cold start,
# so credentials never appear in environment variables or in the state.

locals {
  secret_arns = compact([var.database_secret_arn, var.redis_password_secret_arn])

  # Every function reads the same secrets.
  secrets_statements = concat(
    [{
      Sid      = "ReadSecrets"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = local.secret_arns
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
  )
}
