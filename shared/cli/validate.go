package cli

import (
	"errors"

	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// checkName validates a sandbox name with the API's own rule before it becomes a path.
func checkName(name string) error {
	return fromDomain(sandbox.ValidateName(name), "name")
}

// checkGuild validates a guild id with the API's own rule before it becomes a path.
func checkGuild(id string) error {
	return fromDomain(sandbox.ValidateGuildID(id), "guild_id")
}

// fromDomain turns a validation error of the sandbox package into a CLI error.
func fromDomain(err error, field string) error {
	if err == nil {
		return nil
	}
	var de *sandbox.Error
	if errors.As(err, &de) {
		return &Error{Code: de.Code, Message: de.Message, Field: firstNonEmpty(de.Field, field)}
	}
	return &Error{Code: sandbox.CodeInvalidInput, Message: err.Error(), Field: field}
}
