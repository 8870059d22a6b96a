package apiwire

import "github.com/botplatform/discord-sandboxes/shared/sandbox"

// ProblemContentType is the media type of every error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem document with this API's extension members.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Code is the stable error code (sandbox.Codes()); clients branch on it.
	Code sandbox.Code `json:"code"`
	// Field names the offending input of an invalid_input problem, when one is to blame.
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Sandbox is the failed sandbox of a provisioning_failed problem.
	Sandbox *Sandbox `json:"sandbox,omitempty"`
}
