package sandbox

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Codes are part of the public API contract
// (problem+json "code" member, CLI --json errors): never rename one.
type Code string

// The error codes, the one home of every code the suite returns.
const (
	CodeInvalidInput       Code = "invalid_input"
	CodeNotFound           Code = "not_found"
	CodeNameTaken          Code = "name_taken"
	CodeQuotaExceeded      Code = "quota_exceeded"
	CodeGuildAlreadyMapped Code = "guild_already_mapped"
	CodeGuildProtected     Code = "guild_protected"
	// CodeGuildNotRegistered: only the test guilds an admin registered may be mapped.
	CodeGuildNotRegistered Code = "guild_not_registered"
	CodeInvalidTransition  Code = "invalid_transition"
	CodeProvisioningFailed Code = "provisioning_failed"
	CodeUnauthenticated    Code = "unauthenticated"
	CodeForbidden          Code = "forbidden"
	CodeUnavailable        Code = "unavailable"
	CodeInternal           Code = "internal"
)

// Codes lists every code, for documentation and exhaustive tests.
func Codes() []Code {
	return []Code{
		CodeInvalidInput, CodeNotFound, CodeNameTaken, CodeQuotaExceeded, CodeGuildAlreadyMapped,
		CodeGuildProtected, CodeGuildNotRegistered, CodeInvalidTransition, CodeProvisioningFailed, CodeUnauthenticated,
		CodeForbidden, CodeUnavailable, CodeInternal,
	}
}

// CodeLockTimeout is the code of a recorded failure (a sandbox's last_error, the last failure
// of its teardown record) that was a lock timeout: another session held a lock the step
// needed. It classifies what happened to a sandbox, never an API answer, so it is not among
// Codes().
const CodeLockTimeout Code = "lock_timeout"

// FailureCodes lists the codes the API gives a sandbox's recorded failures: a store that could
// not serve, a lock timeout, anything else.
func FailureCodes() []Code {
	return []Code{CodeUnavailable, CodeLockTimeout, CodeInternal}
}

// Error is a domain error carrying a stable code and a message that is safe to show to the
// caller (it never contains SQL, stack traces or secrets).
type Error struct {
	Code    Code
	Message string
	// Field names the offending input field for invalid_input errors, when there is one.
	Field string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is makes errors.Is(err, ErrNotFound) true for any *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is; compare by code, not by message.
var (
	ErrInvalidInput       = &Error{Code: CodeInvalidInput}
	ErrNotFound           = &Error{Code: CodeNotFound}
	ErrNameTaken          = &Error{Code: CodeNameTaken}
	ErrQuotaExceeded      = &Error{Code: CodeQuotaExceeded}
	ErrGuildAlreadyMapped = &Error{Code: CodeGuildAlreadyMapped}
	ErrGuildProtected     = &Error{Code: CodeGuildProtected}
	ErrGuildNotRegistered = &Error{Code: CodeGuildNotRegistered}
	ErrInvalidTransition  = &Error{Code: CodeInvalidTransition}
	ErrProvisioningFailed = &Error{Code: CodeProvisioningFailed}
	ErrUnauthenticated    = &Error{Code: CodeUnauthenticated}
	ErrForbidden          = &Error{Code: CodeForbidden}
	ErrUnavailable        = &Error{Code: CodeUnavailable}
)

// Errorf builds a domain error with a formatted, caller-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField builds an invalid_input error about one input field.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidInput, Field: field, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first domain error in err's chain, or CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
