variable "environment" {
  type = string
}

locals {
  greeting = "hello ${var.environment}"
  loop     = local.loop
}
