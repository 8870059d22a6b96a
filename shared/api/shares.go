package api

import (
	"context"
	"net/http"
	"regexp"
	"strings"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
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
	status := http.StatusOK
	if change.Previous == "" {
		status = http.StatusCreated
	}
	writeJSON(w, status, apiwire.ShareResponse{Sandbox: sb.Name, SandboxID: sb.ID, Share: shareView(change.Share),
		Changed: change.Changed, PreviousRole: change.Previous})
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
	writeJSON(w, http.StatusOK, apiwire.UnshareResponse{Sandbox: sb.Name, SandboxID: sb.ID, Removed: shareView(removed)})
	return nil
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
