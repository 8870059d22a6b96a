# One execution role per function, each allowed only what that function
# touches: its own log group, its secrets, and its own queues and topics.

locals {
  # Lambda manages the network interfaces of a function in a VPC through the
  # function's role. Describe calls cannot be scoped to resources.
  vpc_statements = local.vpc_enabled ? [{
    Sid    = "ManageVpcNetworkInterfaces"
    Effect = "Allow"
    Action = [
      "ec2:CreateNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSubnets",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    Resource = ["*"]
  }] : []

  function_statements = {
    api = []

    router = concat(
      [
        {
          # What the SQS event source mapping needs to poll on the router's behalf.
          Sid      = "ConsumeIngressQueue"
          Effect   = "Allow"
          Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
          Resource = [aws_sqs_queue.ingress.arn]
        },
        {
          Sid      = "SendToProductionQueue"
          Effect   = "Allow"
          Action   = ["sqs:SendMessage"]
          Resource = [local.production_queue.arn]
        },
        {
          # The router dead-letters poison messages itself (SendMessageBatch
          # needs sqs:SendMessage); SSE-SQS needs no KMS permission.
          Sid      = "SendPoisonToIngressDeadLetterQueue"
          Effect   = "Allow"
          Action   = ["sqs:SendMessage"]
          Resource = [aws_sqs_queue.ingress_dlq.arn]
        },
      ],
      var.production_queue_kms_key_arn == null ? [] : [{
        Sid      = "EncryptForProductionQueue"
        Effect   = "Allow"
        Action   = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource = [var.production_queue_kms_key_arn]
      }],
    )

    cleanup = [{
      Sid      = "PublishExpiryWarnings"
      Effect   = "Allow"
      Action   = ["sns:Publish"]
      Resource = [local.expiry_warning_topic_arn]
    }]
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name        = local.function_names[each.key]
  description = "Execution role of the ${local.function_names[each.key]} function."

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name = "least-privilege"
  role = aws_iam_role.function[each.key].id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
      }],
      local.secrets_statements[each.key],
      local.vpc_statements,
      local.function_statements[each.key],
    )
  })
}
