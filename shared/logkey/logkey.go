// Package logkey is the one home of the log attribute keys that more than one package writes,
// so that a query over the three functions' logs finds a request, a sandbox or a message under
// one name. Every key, these and the ones a single package uses, is snake_case; a test
// (shared/internal/archtest) keeps it so, and keeps these values written only through the
// constants. It imports nothing.
package logkey

// Keys shared across packages.
const (
	// RequestID is the Lambda request id (locally a fresh UUID); the API returns the same id
	// in every problem document.
	RequestID = "request_id"
	// Function names the function (api, router, cleanup).
	Function = "function"
	// DurationMS is a duration in milliseconds.
	DurationMS = "duration_ms"
	// ColdStart is true on the first invocation of an execution environment.
	ColdStart = "cold_start"
	// Error is the error's full text, for operators; callers never see it.
	Error = "error"
	// Sandbox is a sandbox id.
	Sandbox = "sandbox"
	// Name is a sandbox name.
	Name = "name"
	// Owner is a sandbox owner's principal.
	Owner = "owner"
	// Guild and Guilds are Discord guild ids.
	Guild  = "guild"
	Guilds = "guilds"
	// MessageID is an SQS message id.
	MessageID = "message_id"
	// GroupID is an SQS FIFO message group id.
	GroupID = "group_id"
	// Reason says why (a teardown, a drop, a refusal).
	Reason = "reason"
	// Step is a teardown step.
	Step = "step"
)
