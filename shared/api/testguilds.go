package api

import (
	"net/http"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
)

// listTestGuilds answers GET /v1/test-guilds: the registered test guilds, the only guilds a
// sandbox may map, with whether each is free. Any caller may read it: it names no sandbox.
func (h *Handler) listTestGuilds(w http.ResponseWriter, r *http.Request, _ caller) error {
	if _, err := decodeRequest(r, nil); err != nil {
		return err
	}
	guilds, err := h.deps.Sandboxes.TestGuilds(r.Context())
	if err != nil {
		return err
	}
	out := apiwire.TestGuilds{Guilds: make([]apiwire.TestGuild, len(guilds))}
	for i, g := range guilds {
		out.Guilds[i] = testGuildView(g)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// registerTestGuild answers PUT /v1/admin/test-guilds/{guild_id}: 201 for a new test guild,
// 200 when it was registered already (its note is replaced).
func (h *Handler) registerTestGuild(w http.ResponseWriter, r *http.Request, c caller) error {
	guild := r.PathValue("guild_id")
	var req apiwire.RegisterTestGuildRequest
	if _, err := decodeRequest(r, &req); err != nil {
		return err
	}
	g, created, err := h.deps.Sandboxes.RegisterTestGuild(r.Context(), c.principal, guild, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, createdOrOK(created), testGuildView(g))
	return nil
}

// unregisterTestGuild answers DELETE /v1/admin/test-guilds/{guild_id} with the registration
// it removed.
func (h *Handler) unregisterTestGuild(w http.ResponseWriter, r *http.Request, c caller) error {
	guild, err := guildRequest(r)
	if err != nil {
		return err
	}
	g, err := h.deps.Sandboxes.UnregisterTestGuild(r.Context(), c.principal, guild)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, testGuildView(g))
	return nil
}

func testGuildView(g controlplane.TestGuild) apiwire.TestGuild {
	return apiwire.TestGuild{GuildID: g.GuildID, Note: g.Note, RegisteredAt: g.RegisteredAt,
		RegisteredBy: g.RegisteredBy, State: string(g.State)}
}
