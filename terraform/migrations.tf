# The migrate step of every deployment (docs/deploy.md, "Database migrations"). The functions
# never change the schema: at cold start they only check that it is the one their code needs.
# Once the api function runs its new code, Terraform invokes it directly with
# {"migrate": true}: it applies the control plane's pending migrations as the database's
# owner, the worker database's too when the sandboxes live apart (worker_database_secret_arn),
# and grants router_database_role the router's privileges. API Gateway cannot send that
# payload; only a caller allowed lambda:InvokeFunction (the deployer) can.
#
# The api package's hash is a trigger, so every update of the code is followed by its
# migrations (and re-applying a package already migrated applies nothing). A failed step
# (the function returns an error) fails the apply: the error says which migration failed.
resource "aws_lambda_invocation" "migrate" {
  count = var.run_migrations ? 1 : 0

  function_name = aws_lambda_function.this["api"].function_name
  input = jsonencode(merge(
    { migrate = true },
    var.router_database_role != null ? { router_role = var.router_database_role } : {},
  ))

  triggers = {
    api_package = aws_lambda_function.this["api"].source_code_hash
    router_role = coalesce(var.router_database_role, "-")
    # A new worker database is migrated before the first sandbox is made in it.
    worker_database = coalesce(var.worker_database_secret_arn, "-")
  }
}
