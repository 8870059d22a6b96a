package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Shared sandboxes: the owner (or an admin) lets another principal act on a sandbox as a
// viewer or a developer (routeAccess says what each may do). A share names a principal in
// the canonical form every caller is compared on (API_OWNER_KEY), so it lets in exactly the
// callers an owner of that name would be.

func (h *Handler) listShares(w http.ResponseWriter, r *http.Request, c caller) error {
	sb, err := h.addressed(r, c, nil, nil)
	if err != nil {
		return err
	}
	shares, err := h.deps.Sandboxes.Shares(r.Context(), sb.ID)
	if err != nil {
		return err
	}
	out := apiwire.SharesResponse{Sandbox: sb.Name, SandboxID: sb.ID, Owner: sb.Owner, Shares: make([]apiwire.Share, 0, len(shares))}
	for _, s := range shares {
		out.Shares = append(out.Shares, shareView(s))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) share(w http.ResponseWriter, r *http.Request, c caller) error {
	var req apiwire.ShareRequest
	var principal string
	role := sandbox.ShareViewer
	sb, err := h.addressed(r, c, &req, func() (err error) {
		if req.Principal == "" {
			return sandbox.InvalidField("principal", `"principal" is required, e.g. {"principal": "arn:aws:iam::123456789012:user/bob", "role": "developer"}`)
		}
		if principal, err = h.sharePrincipal(req.Principal); err != nil {
			return err
		}
		if req.Role != "" {
			role, err = sandbox.ParseShareRole(string(req.Role))
		}
		return err
	})
	if err != nil {
		return err
	}
	change, err := h.deps.Sandboxes.ShareSandbox(r.Context(), c.principal, sb.ID, principal, role)
	if err != nil {
		return err
	}
	status := createdOrOK(change.Previous == "")
	out := apiwire.ShareResponse{Sandbox: sb.Name, SandboxID: sb.ID, Share: shareView(change.Share),
		Changed: change.Changed, PreviousRole: change.Previous}
	if change.Previous == sandbox.ShareDeveloper && role != sandbox.ShareDeveloper {
		out.Revoked, out.Warning = h.revokeFrom(r.Context(), c, sb, principal)
	}
	writeJSON(w, status, out)
	return nil
}

func (h *Handler) unshare(w http.ResponseWriter, r *http.Request, c caller) error {
	var principal string
	sb, err := h.addressedWithQuery(r, c, []string{"principal"}, func(q query) (err error) {
		raw := q.str("principal")
		if raw == "" {
			return sandbox.InvalidField("principal", "the query parameter principal is required: ?principal=<the principal the sandbox is shared with>")
		}
		principal, err = h.sharePrincipal(raw)
		return err
	})
	if err != nil {
		return err
	}
	removed, err := h.deps.Sandboxes.UnshareSandbox(r.Context(), c.principal, sb.ID, principal)
	if err != nil {
		return err
	}
	out := apiwire.UnshareResponse{Sandbox: sb.Name, SandboxID: sb.ID, Removed: shareView(removed)}
	if removed.Role == sandbox.ShareDeveloper {
		out.Revoked, out.Warning = h.revokeFrom(r.Context(), c, sb, principal)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeFrom takes back from principal, whose developer share has just ended, the
// credentials it was handed and the sessions it opened with them, when it ever connected:
// the sandbox's credentials are replaced by ones nobody is handed and every session of them
// is ended, the owner's workers' included (they connect again). A rotation alone would leave
// open what the former developer's workers had opened, for as long as the sandbox lives.
// A sandbox that is not running has nothing to revoke that its teardown does not end. What
// could not be done (a store unavailable) is a warning, not an error: the share is gone
// already, and `sandbox connect NAME --end-sessions` does the rest.
func (h *Handler) revokeFrom(ctx context.Context, c caller, sb *sandbox.Sandbox, principal string) (*apiwire.Revocation, string) {
	rev, err := h.revoke(ctx, c, sb, principal)
	var domain *sandbox.Error
	switch {
	case errors.As(err, &domain) && (domain.Code == sandbox.CodeInvalidTransition || domain.Code == sandbox.CodeNotFound):
		return nil, "" // no longer running, or torn down: the teardown ends every session
	case err != nil && rev != nil:
		h.log.ErrorContext(ctx, "revocation not audited", logkey.Sandbox, sb.ID, logkey.Error, err)
		return rev, fmt.Sprintf("the revocation is done but not in the audit log: %v", err)
	case err != nil:
		h.log.ErrorContext(ctx, "revocation failed", logkey.Sandbox, sb.ID, logkey.Error, err)
		return nil, fmt.Sprintf("the credentials %s may hold could not be revoked (%v): run `sandbox connect %s --end-sessions`",
			principal, err, sb.Name)
	}
	return rev, ""
}

// revoke is revokeFrom's work: nil and no error when principal never connected.
func (h *Handler) revoke(ctx context.Context, c caller, sb *sandbox.Sandbox, principal string) (*apiwire.Revocation, error) {
	connected, err := h.deps.Sandboxes.HasConnected(ctx, sb.ID, principal)
	if err != nil || !connected {
		return nil, err
	}
	creds, err := h.deps.Resources.RotateCredentials(ctx, sb.ID, sb.ExpiresAt, h.whileRunning(sb.ID, "revoke the credentials of"))
	if err != nil {
		return nil, err
	}
	ended, err := h.deps.Resources.EndSessions(ctx, sb.ID)
	if err != nil {
		return nil, err
	}
	rev := &apiwire.Revocation{Rotated: creds.Rotated(), SessionsEnded: *sessionsEndedView(ended)}
	return rev, h.deps.Sandboxes.Audit(ctx, c.principal, controlplane.ActionRevoke, sb.ID, map[string]any{
		"principal": principal, "rotated": rev.Rotated,
		"database_sessions": ended.Database, "redis_connections": ended.Redis,
	})
}

func shareView(s controlplane.Share) apiwire.Share {
	return apiwire.Share{Principal: s.Principal, Role: s.Role, CreatedAt: s.CreatedAt, CreatedBy: s.CreatedBy, UpdatedAt: s.UpdatedAt}
}

// readGrants notes the caller's shares among sandboxes it does not own (list), so that each
// shows the caller's role.
func (h *Handler) readGrants(ctx context.Context, c caller, sbs []*sandbox.Sandbox) error {
	var ids []string
	for _, sb := range sbs {
		if sb.Owner != c.principal {
			ids = append(ids, sb.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	roles, err := h.deps.Sandboxes.ShareRoles(ctx, c.principal, ids)
	if err != nil {
		return err
	}
	for id, role := range roles {
		c.grants[id] = role
	}
	return nil
}

// localPrincipals are the principals of API_LOCAL_TOKENS: outside AWS, a share may name one.
func localPrincipals(cfg Config) map[string]bool {
	out := map[string]bool{}
	for _, p := range cfg.LocalTokens {
		out[p] = true
	}
	return out
}

var (
	// iamUserRE is the resource of an IAM user: user/[PATH/]NAME.
	iamUserRE = regexp.MustCompile(`^user/([\x21-\x2e\x30-\x7e]+/)*[\w+=,.@-]{1,64}$`)
	// federatedUserRE is the resource of an STS federated user.
	federatedUserRE = regexp.MustCompile(`^federated-user/[\w+=,.@-]{2,32}$`)
)

// sharePrincipal checks the principal a share names and returns it in the canonical form
// callers are compared on: a principal some caller can be, never a pattern. In AWS that is an
// IAM user, an assumed-role session (its role under API_OWNER_KEY=role), a role under
// API_OWNER_KEY=role (path dropped), a federated user or an account's root; outside AWS also
// a principal of API_LOCAL_TOKENS. Anything else is invalid_input (field principal).
func (h *Handler) sharePrincipal(raw string) (string, error) {
	if err := sandbox.ValidateOwner(raw); err != nil {
		return "", sandbox.InvalidField("principal", "principal must be 1-512 characters of valid UTF-8, without control characters")
	}
	if !strings.HasPrefix(raw, "arn:") {
		if h.local[raw] {
			return raw, nil
		}
		return "", sandbox.InvalidField("principal", "%q is not an IAM principal ARN (arn:aws:iam::ACCOUNT:user/NAME, arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, ...)%s",
			truncate(raw, 60), h.localHint())
	}
	if _, _, ok := parseAssumedRole(raw); ok {
		return h.admins.canonical(raw), nil
	}
	if role, ok := parseRoleARN(raw); ok {
		if h.admins.key != OwnerKeyRole {
			return "", sandbox.InvalidField("principal", "%q is a role, but with API_OWNER_KEY=session callers are role sessions: share with the session, arn:%s:sts::%s:assumed-role/%s/SESSION",
				truncate(raw, 100), role.partition, role.account, role.name)
		}
		return role.arn(), nil
	}
	if _, account, resource, ok := splitARN(raw, "iam"); ok && (iamUserRE.MatchString(resource) || resource == "root") && account != "" {
		return raw, nil
	}
	if _, _, resource, ok := splitARN(raw, "sts"); ok && federatedUserRE.MatchString(resource) {
		return raw, nil
	}
	return "", sandbox.InvalidField("principal", "%q is not an IAM principal a caller can be: an IAM user, an assumed-role session, a role (with API_OWNER_KEY=role), a federated user or an account's root",
		truncate(raw, 100))
}

// localHint names the local principals a share may name, when there are any.
func (h *Handler) localHint() string {
	if len(h.local) == 0 {
		return ""
	}
	return ", nor a principal of API_LOCAL_TOKENS"
}
