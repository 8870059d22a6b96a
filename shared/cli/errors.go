package cli

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Codes the CLI reports for failures that happen before or without an API answer. They
// share the namespace of the API's codes (sandbox.Codes()) in the --json error document and
// are documented in docs/cli.md; never rename one.
const (
	// CodeUsage: a malformed command line (unknown command or flag, wrong arguments, a bad
	// duration).
	CodeUsage sandbox.Code = "usage"
	// CodeConfig: the CLI is not configured to reach the API (no API URL, no region).
	CodeConfig sandbox.Code = "config"
	// CodeConfirmationRequired: destroy without --yes where nobody can be asked.
	CodeConfirmationRequired sandbox.Code = "confirmation_required"
	// CodeAborted: the person answered no to the confirmation.
	CodeAborted sandbox.Code = "aborted"
	// CodeCredentials: no AWS credentials could be found to sign the request.
	CodeCredentials sandbox.Code = "credentials"
	// CodeUnreachable: the API could not be reached (DNS, connection, timeout).
	CodeUnreachable sandbox.Code = "unreachable"
	// CodeBadResponse: the API answered something this CLI cannot read.
	CodeBadResponse sandbox.Code = "bad_response"
	// CodeInterrupted: Ctrl-C (or SIGTERM) before the command finished.
	CodeInterrupted sandbox.Code = "interrupted"
)

// Exit codes (docs/cli.md, Exit codes).
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitNotFound    = 3
	ExitConflict    = 4
	ExitAuth        = 5
	ExitUnavailable = 6
	ExitInterrupted = 130
)

// exitCodes maps every code, the API's and the CLI's own, to the process exit code.
var exitCodes = map[sandbox.Code]int{
	sandbox.CodeInvalidInput:       ExitUsage,
	sandbox.CodeUnauthenticated:    ExitAuth,
	sandbox.CodeForbidden:          ExitAuth,
	sandbox.CodeNotFound:           ExitNotFound,
	sandbox.CodeNameTaken:          ExitConflict,
	sandbox.CodeGuildAlreadyMapped: ExitConflict,
	sandbox.CodeInvalidTransition:  ExitConflict,
	sandbox.CodeGuildProtected:     ExitConflict,
	sandbox.CodeGuildNotRegistered: ExitConflict,
	sandbox.CodeQuotaExceeded:      ExitConflict,
	sandbox.CodeProvisioningFailed: ExitFailure,
	sandbox.CodeUnavailable:        ExitUnavailable,
	sandbox.CodeInternal:           ExitFailure,

	CodeUsage:                ExitUsage,
	CodeConfig:               ExitUsage,
	CodeConfirmationRequired: ExitUsage,
	CodeAborted:              ExitFailure,
	CodeCredentials:          ExitAuth,
	CodeUnreachable:          ExitUnavailable,
	CodeBadResponse:          ExitFailure,
	CodeInterrupted:          ExitInterrupted,
}

// Error is a failure as the CLI reports it: the API's problem document, or a failure of the
// CLI itself (Status 0).
type Error struct {
	Code    sandbox.Code
	Message string
	// Status is the HTTP status of the API's answer; 0 when the API did not answer.
	Status int
	// Field names the offending input of an invalid_input answer, when there is one.
	Field string
	// RequestID finds the request in the API's logs.
	RequestID string
	// Hint is an extra line for people (never part of the --json document's message).
	Hint string
	// Sandbox is the failed sandbox of a provisioning_failed answer.
	Sandbox *apiwire.Sandbox
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (%s): %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is matches any *Error with the same code, like sandbox.Error.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// errorf builds a CLI-side error.
func errorf(code sandbox.Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ExitCode is the process exit code for err: 0 for nil, the documented mapping for a code,
// and for a code this CLI does not know (a newer API) the class of its HTTP status.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if !errors.As(err, &e) {
		return ExitFailure
	}
	if code, ok := exitCodes[e.Code]; ok {
		return code
	}
	switch e.Status {
	case http.StatusBadRequest:
		return ExitUsage
	case http.StatusUnauthorized, http.StatusForbidden:
		return ExitAuth
	case http.StatusNotFound:
		return ExitNotFound
	case http.StatusConflict:
		return ExitConflict
	case http.StatusServiceUnavailable:
		return ExitUnavailable
	}
	return ExitFailure
}

// asError turns any error into an *Error; errors without a code are generic failures.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: sandbox.CodeInternal, Message: err.Error()}
}

// errorDocument is the --json error document: {"error":{"code","message","status",...}}.
type errorDocument struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code      sandbox.Code     `json:"code"`
	Message   string           `json:"message"`
	Status    int              `json:"status"`
	Field     string           `json:"field,omitempty"`
	RequestID string           `json:"request_id,omitempty"`
	Sandbox   *apiwire.Sandbox `json:"sandbox,omitempty"`
}

func newErrorDocument(e *Error) errorDocument {
	return errorDocument{Error: errorBody{
		Code: e.Code, Message: e.Message, Status: e.Status, Field: e.Field,
		RequestID: e.RequestID, Sandbox: e.Sandbox,
	}}
}
