package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// problemTypePrefix makes a problem's type URI from its code.
const problemTypePrefix = "urn:discord-sandboxes:problem:"

// codeStatus is the one mapping from error codes to HTTP statuses (docs/api.md, Errors).
var codeStatus = map[sandbox.Code]int{
	sandbox.CodeInvalidInput:       http.StatusBadRequest,
	sandbox.CodeUnauthenticated:    http.StatusUnauthorized,
	sandbox.CodeForbidden:          http.StatusForbidden,
	sandbox.CodeNotFound:           http.StatusNotFound,
	sandbox.CodeNameTaken:          http.StatusConflict,
	sandbox.CodeGuildAlreadyMapped: http.StatusConflict,
	sandbox.CodeInvalidTransition:  http.StatusConflict,
	sandbox.CodeGuildProtected:     http.StatusConflict,
	sandbox.CodeGuildNotRegistered: http.StatusConflict,
	sandbox.CodeQuotaExceeded:      http.StatusConflict,
	sandbox.CodeProvisioningFailed: http.StatusInternalServerError,
	sandbox.CodeUnavailable:        http.StatusServiceUnavailable,
	sandbox.CodeInternal:           http.StatusInternalServerError,
}

// StatusOf returns the HTTP status of an error code.
func StatusOf(code sandbox.Code) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

var codeTitle = map[sandbox.Code]string{
	sandbox.CodeInvalidInput:       "Invalid input",
	sandbox.CodeUnauthenticated:    "Unauthenticated",
	sandbox.CodeForbidden:          "Forbidden",
	sandbox.CodeNotFound:           "Not found",
	sandbox.CodeNameTaken:          "Name taken",
	sandbox.CodeGuildAlreadyMapped: "Guild already mapped",
	sandbox.CodeInvalidTransition:  "Invalid transition",
	sandbox.CodeGuildProtected:     "Guild protected",
	sandbox.CodeGuildNotRegistered: "Guild not registered",
	sandbox.CodeQuotaExceeded:      "Quota exceeded",
	sandbox.CodeProvisioningFailed: "Provisioning failed",
	sandbox.CodeUnavailable:        "Unavailable",
	sandbox.CodeInternal:           "Internal error",
}

// retryAfterSeconds is the Retry-After of every 503: a store that refused or dropped the
// request usually answers again within seconds (a failover, a restart, a full pool).
const retryAfterSeconds = "5"

// unavailableMessage is the detail of a 503 for a store error: the error's own text names
// addresses and SQL, so it goes to the log.
const unavailableMessage = "a store is unavailable right now; nothing was changed unless the answer says otherwise: retry in a few seconds"

// httpError is a domain error that needs an HTTP status other than its code's default
// (413 and 415 are invalid_input too, 405 as well).
type httpError struct {
	status int
	err    *sandbox.Error
	allow  string // Allow header of a 405
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

// problemFor builds the problem document of err. Errors without a domain code are internal:
// their text stays in the log and the caller gets a generic detail.
func (h *Handler) problemFor(r *http.Request, err error) (apiwire.Problem, string) {
	p := apiwire.Problem{Instance: r.URL.Path, RequestID: requestID(r.Context())}
	var he *httpError
	var de *sandbox.Error
	allow := ""
	switch {
	case errors.As(err, &he):
		de, p.Status, allow = he.err, he.status, he.allow
	case errors.As(err, &de):
		p.Status = StatusOf(de.Code)
	case clients.IsUnavailable(err):
		de, p.Status = &sandbox.Error{Code: sandbox.CodeUnavailable, Message: unavailableMessage}, http.StatusServiceUnavailable
	}
	if de == nil || de.Code == sandbox.CodeInternal {
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			logkey.RequestID, p.RequestID, logkey.Error, err)
		de = &sandbox.Error{Code: sandbox.CodeInternal, Message: "an internal error occurred; the operators can find it in the logs by request id " + p.RequestID}
		p.Status = http.StatusInternalServerError
	} else if p.Status >= 500 {
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			logkey.RequestID, p.RequestID, "code", de.Code, logkey.Error, err)
	}
	p.Code = de.Code
	p.Type = problemTypePrefix + string(de.Code)
	p.Title = codeTitle[de.Code]
	p.Detail = de.Message
	p.Field = de.Field
	return p, allow
}

// writeError answers err as a problem document.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p, allow := h.problemFor(r, err)
	if allow != "" {
		w.Header().Set("Allow", allow)
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p apiwire.Problem) {
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	w.Header().Set("Content-Type", apiwire.ProblemContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeUncached is writeJSON for answers no cache may keep: credentials, and what changes
// from one request to the next (stream pages, health checks).
func writeUncached(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, v)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// createdOrOK is the status of a PUT or POST that creates a record or changes one that
// exists: 201 Created for a new one, 200 OK otherwise.
func createdOrOK(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}
