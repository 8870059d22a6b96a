package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// provisioningFailedMessage is the caller-safe detail of a provisioning_failed problem.
const provisioningFailedMessage = "the sandbox was recorded but its resources could not be created; it is marked failed and the cleanup tears it down"

func (h *Handler) create(w http.ResponseWriter, r *http.Request, c caller) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	in, err := ParseCreateRequest(body, h.deps.Sandboxes.Limits())
	if err != nil {
		return err
	}
	in.Owner, in.Admin = c.principal, c.admin
	rec := recorderFrom(r.Context())
	start := time.Now()
	sb, err := h.deps.Sandboxes.Create(r.Context(), c.principal, in)
	switch {
	case errors.Is(err, sandbox.ErrProvisioningFailed):
		rec.Milliseconds(metrics.SandboxCreationDuration, time.Since(start))
		rec.Count(metrics.SchemaCreationFailures, 1)
		h.log.ErrorContext(r.Context(), "sandbox provisioning failed", logkey.Name, in.Name, logkey.Owner, c.principal,
			"cause", controlplane.ProvisioningCause(err))
		if sb != nil {
			sb = h.compensate(r.Context(), c.principal, sb)
		}
		p, _ := h.problemFor(r, sandbox.Errorf(sandbox.CodeProvisioningFailed, provisioningFailedMessage))
		if sb != nil {
			view := h.viewFor(c, sb)
			p.Sandbox = &view
		}
		writeProblem(w, p)
		return nil
	case err != nil:
		return err
	}
	rec.Milliseconds(metrics.SandboxCreationDuration, time.Since(start))
	rec.Count(metrics.SandboxesCreated, 1)
	w.Header().Set("Location", "/v1/sandboxes/"+url.PathEscape(sb.Name))
	writeJSON(w, http.StatusCreated, h.viewFor(c, sb))
	return nil
}

// compensate tears a failed creation down at once, with the teardown the scheduled cleanup
// runs: best effort within the request (the caller may be gone, so it runs on), and what it
// cannot finish the next cleanup run does, the sandbox being failed. It returns the sandbox
// as the teardown left it.
func (h *Handler) compensate(ctx context.Context, actor string, failed *sandbox.Sandbox) *sandbox.Sandbox {
	if h.deps.Teardown == nil {
		return failed
	}
	after, err := h.deps.Teardown.Destroy(context.WithoutCancel(ctx), actor, failed.ID)
	if err != nil {
		h.log.WarnContext(ctx, "compensating a failed creation stopped; the next cleanup run finishes it",
			logkey.Sandbox, failed.ID, logkey.Error, err)
	}
	if after == nil {
		return failed
	}
	return after
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, c caller) error {
	if err := noRequestBody(r); err != nil {
		return err
	}
	q, err := parseQuery(r, "owner", "all", "status", "include_destroyed", "limit", "cursor")
	if err != nil {
		return err
	}
	all, err := q.boolean("all")
	if err != nil {
		return err
	}
	includeDestroyed, err := q.boolean("include_destroyed")
	if err != nil {
		return err
	}
	limit, err := q.integer("limit", 50, 1, 200)
	if err != nil {
		return err
	}
	owner, sharedWith := q.str("owner"), ""
	switch {
	case all && owner != "":
		return sandbox.InvalidField("all", "all=true and owner exclude each other")
	case all && !c.admin:
		return sandbox.Errorf(sandbox.CodeForbidden, "listing every owner's sandboxes is for admins only")
	case owner == "" && !all:
		// The caller's own, and those shared with it.
		owner, sharedWith = c.principal, c.principal
	case owner != "" && owner != c.principal && !c.admin:
		return sandbox.Errorf(sandbox.CodeForbidden, "listing another owner's sandboxes is for admins only")
	}
	if owner != "" {
		if err := sandbox.ValidateOwner(owner); err != nil {
			return err
		}
	}
	page, err := h.deps.Sandboxes.List(r.Context(), controlplane.ListFilter{
		Owner: owner, SharedWith: sharedWith, Status: q.str("status"), IncludeDestroyed: includeDestroyed, Limit: limit, Cursor: q.str("cursor"),
	})
	if err != nil {
		return err
	}
	if err := h.readGrants(r.Context(), c, page.Sandboxes); err != nil {
		return err
	}
	out := apiwire.ListResponse{Sandboxes: make([]apiwire.Sandbox, 0, len(page.Sandboxes)), NextCursor: page.NextCursor}
	for _, sb := range page.Sandboxes {
		out.Sandboxes = append(out.Sandboxes, h.viewFor(c, sb))
	}
	h.addUsage(r.Context(), page.Sandboxes, out.Sandboxes)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// addressed validates the request's path, query (none allowed) and body (decoded into body;
// nil: the route takes none), then runs validate, and only then looks the named sandbox up
// and checks that the caller's role on it is at least the route's (authorize). Bad input is
// refused the same way whoever asks.
func (h *Handler) addressed(r *http.Request, c caller, body any, validate func() error) (*sandbox.Sandbox, error) {
	return h.address(r, c, body, nil, func(query) error {
		if validate == nil {
			return nil
		}
		return validate()
	})
}

// addressedBody is addressed for a route whose JSON body, a B, parse validates and turns
// into the route's arguments.
func addressedBody[B, A any](h *Handler, r *http.Request, c caller, parse func(B) (A, error)) (*sandbox.Sandbox, A, error) {
	var req B
	var args A
	sb, err := h.addressed(r, c, &req, func() (err error) {
		args, err = parse(req)
		return err
	})
	return sb, args, err
}

// addressedWithQuery is addressed for a route that takes the query parameters allowed and no
// body: validate checks the parameters.
func (h *Handler) addressedWithQuery(r *http.Request, c caller, allowed []string, validate func(query) error) (*sandbox.Sandbox, error) {
	return h.address(r, c, nil, allowed, validate)
}

// address is addressed and addressedWithQuery: validate runs on the parsed query.
func (h *Handler) address(r *http.Request, c caller, body any, allowed []string, validate func(query) error) (*sandbox.Sandbox, error) {
	name := r.PathValue("name")
	if err := sandbox.ValidateName(name); err != nil {
		return nil, err
	}
	q, err := decodeRequest(r, body, allowed...)
	if err != nil {
		return nil, err
	}
	if err := validate(q); err != nil {
		return nil, err
	}
	sb, err := h.deps.Sandboxes.GetByName(r.Context(), name)
	if err != nil {
		return nil, err
	}
	if err := h.authorize(r.Context(), c, sb); err != nil {
		return nil, err
	}
	return sb, nil
}

// guildPath validates the {guild_id} path segment.
func guildPath(r *http.Request) func() error {
	return func() error { return sandbox.ValidateGuildID(r.PathValue("guild_id")) }
}

// decodeRequest validates the request's query (the parameters allowed, no others) and
// decodes its JSON body into body (nil: the route takes none; an empty one or {} is fine).
func decodeRequest(r *http.Request, body any, allowed ...string) (query, error) {
	q, err := parseQuery(r, allowed...)
	if err != nil {
		return q, err
	}
	if body == nil {
		return q, noRequestBody(r)
	}
	raw, err := readBody(r)
	if err != nil {
		return q, err
	}
	return q, decodeJSON(raw, body)
}

// noRequestBody refuses a body on routes that take none (an empty one or {} is fine).
func noRequestBody(r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeJSON(body, &noBody{})
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, c caller) error {
	sb, err := h.addressed(r, c, nil, nil)
	if err != nil {
		return err
	}
	views := []apiwire.Sandbox{h.viewFor(c, sb)}
	h.addUsage(r.Context(), []*sandbox.Sandbox{sb}, views)
	writeJSON(w, http.StatusOK, views[0])
	return nil
}

func (h *Handler) extend(w http.ResponseWriter, r *http.Request, c caller) error {
	sb, by, err := addressedBody(h, r, c, extendBy)
	if err != nil {
		return err
	}
	ext, err := h.deps.Sandboxes.ExtendExpiry(r.Context(), c.principal, sb.ID, by)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiwire.ExtendResponse{
		Sandbox:           h.viewFor(c, ext.Sandbox),
		PreviousExpiresAt: ext.From.UTC(),
		ExpiresAt:         ext.To.UTC(),
		ExtendedBySeconds: int64(ext.By / time.Second),
		Capped:            ext.Capped,
		MaxExpiresAt:      ext.MaxExpiresAt.UTC(),
	})
	return nil
}

func (h *Handler) destroy(w http.ResponseWriter, r *http.Request, c caller) error {
	sb, err := h.addressed(r, c, nil, nil)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if sb.Status == sandbox.StatusDestroyed {
		writeJSON(w, http.StatusOK, apiwire.DestroyResponse{Sandbox: h.viewFor(c, sb)})
		return nil
	}
	if h.deps.Teardown == nil {
		// Without a teardown here, the scheduled cleanup takes the request.
		requested, changed, err := h.deps.Sandboxes.RequestDestroy(ctx, c.principal, sb.ID)
		if err != nil {
			return err
		}
		return h.writeDestroyed(w, c, apiwire.DestroyResponse{Changed: changed}, requested)
	}
	// The teardown requests the destroy itself, so that its record says where the sandbox
	// came from and its cache step counts the entries the request's publication removes.
	before := sb.Status
	done, terr := h.deps.Teardown.Destroy(ctx, c.principal, sb.ID)
	if done == nil {
		return terr // nothing changed: not found, still being created, or the store failed
	}
	resp := apiwire.DestroyResponse{Changed: before != sandbox.StatusDestroying && before != sandbox.StatusDestroyed}
	if terr != nil {
		h.log.WarnContext(ctx, "teardown through destroy stopped; the scheduled cleanup resumes it",
			logkey.Sandbox, sb.ID, logkey.Error, terr)
		resp.TeardownError = "the teardown stopped at a failed step; the scheduled cleanup resumes it (see the teardown record)"
		if code := sandbox.CodeOf(terr); code != sandbox.CodeInternal {
			var de *sandbox.Error
			if errors.As(terr, &de) && de.Message != "" {
				resp.TeardownError = de.Message
			}
		}
	} else if done.Status == sandbox.StatusDestroyed {
		recorderFrom(ctx).Count(metrics.SandboxesDestroyed, 1)
	}
	return h.writeDestroyed(w, c, resp, done)
}

// writeDestroyed answers a destroy: 200 once the sandbox is destroyed, 202 while its
// teardown is still to finish.
func (h *Handler) writeDestroyed(w http.ResponseWriter, c caller, resp apiwire.DestroyResponse, sb *sandbox.Sandbox) error {
	resp.Sandbox = h.viewFor(c, sb)
	status := http.StatusAccepted
	if sb.Status == sandbox.StatusDestroyed {
		status = http.StatusOK
	}
	writeJSON(w, status, resp)
	return nil
}

func (h *Handler) addGuild(w http.ResponseWriter, r *http.Request, c caller) error {
	sb, err := h.addressed(r, c, nil, guildPath(r))
	if err != nil {
		return err
	}
	guild := r.PathValue("guild_id")
	if slices.Contains(sb.Guilds, guild) {
		writeJSON(w, http.StatusOK, h.viewFor(c, sb))
		return nil
	}
	if err := h.deps.Sandboxes.AddGuild(r.Context(), c.principal, sb.ID, guild, c.admin); err != nil {
		return err
	}
	return h.writeChanged(w, r, c, http.StatusCreated, sb.ID)
}

func (h *Handler) removeGuild(w http.ResponseWriter, r *http.Request, c caller) error {
	sb, err := h.addressed(r, c, nil, guildPath(r))
	if err != nil {
		return err
	}
	if err := h.deps.Sandboxes.RemoveGuild(r.Context(), c.principal, sb.ID, r.PathValue("guild_id")); err != nil {
		return err
	}
	return h.writeChanged(w, r, c, http.StatusOK, sb.ID)
}

// writeChanged answers with the sandbox as a change left it, read again.
func (h *Handler) writeChanged(w http.ResponseWriter, r *http.Request, c caller, status int, id string) error {
	updated, err := h.deps.Sandboxes.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, status, h.viewFor(c, updated))
	return nil
}
