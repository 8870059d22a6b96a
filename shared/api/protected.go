package api

import (
	"net/http"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
)

// listProtectedGuilds answers GET /v1/admin/protected-guilds: the guilds of both sources of
// protection, the deployment's configuration and the admins' run-time protections.
func (h *Handler) listProtectedGuilds(w http.ResponseWriter, r *http.Request, _ caller) error {
	if _, err := decodeRequest(r, nil); err != nil {
		return err
	}
	guilds, err := h.deps.Sandboxes.ProtectedGuilds(r.Context())
	if err != nil {
		return err
	}
	out := apiwire.ProtectedGuilds{Guilds: make([]apiwire.ProtectedGuild, len(guilds))}
	for i, g := range guilds {
		out.Guilds[i] = apiwire.ProtectedGuild(g)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// protectGuild answers PUT /v1/admin/protected-guilds/{guild_id}: 201 for a new protection,
// 200 when the guild was protected already (its reason is replaced). The guild leaves the
// registry of test guilds and its parking; a mapped guild is refused.
func (h *Handler) protectGuild(w http.ResponseWriter, r *http.Request, c caller) error {
	guild := r.PathValue("guild_id")
	var req apiwire.ProtectGuildRequest
	if _, err := decodeRequest(r, &req); err != nil {
		return err
	}
	g, created, err := h.deps.Sandboxes.ProtectGuild(r.Context(), c.principal, guild, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, createdOrOK(created), apiwire.ProtectedGuild(g))
	return nil
}

// unprotectGuild answers DELETE /v1/admin/protected-guilds/{guild_id} with the protection it
// took away. A guild the configuration protects is refused.
func (h *Handler) unprotectGuild(w http.ResponseWriter, r *http.Request, c caller) error {
	guild, err := guildRequest(r)
	if err != nil {
		return err
	}
	g, err := h.deps.Sandboxes.UnprotectGuild(r.Context(), c.principal, guild)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiwire.ProtectedGuild(g))
	return nil
}
