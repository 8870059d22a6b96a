package api

import (
	"net/http"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// listParked answers GET /v1/guilds/parked: the caller's parked guilds, every owner's for an
// admin.
func (h *Handler) listParked(w http.ResponseWriter, r *http.Request, c caller) error {
	if _, err := decodeRequest(r, nil); err != nil {
		return err
	}
	owner := c.principal
	if c.admin {
		owner = ""
	}
	parked, err := h.deps.Sandboxes.ListParked(r.Context(), owner)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiwire.ParkedGuilds{Guilds: parkedGuilds(parked)})
	return nil
}

// releaseGuild answers POST /v1/guilds/{guild_id}/release: a parked test guild's events go
// to production from the next batch on. Only its former owner or an admin may.
func (h *Handler) releaseGuild(w http.ResponseWriter, r *http.Request, c caller) error {
	guild, err := guildRequest(r)
	if err != nil {
		return err
	}
	parked, err := h.deps.Sandboxes.Parked(r.Context(), guild)
	if err != nil {
		return err
	}
	if !parked.EndableBy(c.principal, c.admin) {
		return sandbox.Errorf(sandbox.CodeForbidden, "guild %s was parked by a sandbox of another owner", guild)
	}
	if err := h.deps.Sandboxes.ReleaseGuild(r.Context(), c.principal, guild, parked.SandboxID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiwire.ReleasedGuild{GuildID: guild, Destination: DestinationProduction, Released: apiwire.ParkedGuild(parked)})
	return nil
}
