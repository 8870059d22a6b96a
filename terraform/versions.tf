terraform {
  # 1.9 brings variable validations that refer to other variables (the
  # visibility timeout rule); 1.7 brings mock providers for `terraform test`.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project     = "discord-sandboxes"
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}
