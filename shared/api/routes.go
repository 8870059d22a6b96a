package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// guildRequest validates the input of a route on one guild: its {guild_id}, and neither a
// query nor a body.
func guildRequest(r *http.Request) (string, error) {
	guild := r.PathValue("guild_id")
	if err := sandbox.ValidateGuildID(guild); err != nil {
		return "", err
	}
	if _, err := decodeRequest(r, nil); err != nil {
		return "", err
	}
	return guild, nil
}

func (h *Handler) explainRoute(w http.ResponseWriter, r *http.Request, c caller) error {
	guild, err := guildRequest(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	routes, err := h.deps.Sandboxes.LookupRoutes(ctx, []string{guild})
	if err != nil {
		return err
	}
	db := routes[guild]
	db.GuildID = guild
	now := h.now()
	out := apiwire.RouteExplanation{GuildID: guild, Protected: db.Protected, Source: "database"}

	var sb *sandbox.Sandbox
	if db.Mapped() {
		sb, err = h.deps.Sandboxes.Get(ctx, db.SandboxID)
		if err != nil {
			return err
		}
		out.Mapping = &apiwire.RouteMapping{
			SandboxID: sb.ID, SandboxName: sb.Name, Status: sb.DisplayStatus(now),
			StoredStatus: sb.Status, Stream: keys.EventStream(sb.ID),
		}
	}
	out.Destination = db.Destination(now)
	out.Reason = reasonFor(db, sb, now)
	if db.Parked() {
		parked, err := h.deps.Sandboxes.Parked(ctx, guild)
		switch {
		case err == nil:
			shown := apiwire.ParkedGuild(parked)
			out.Parked = &shown
			out.Reason = fmt.Sprintf("parked since %s (sandbox %q %s): events are dropped, never sent to production, until its owner or an admin releases it (sandbox guilds release %s) or maps it again",
				parked.ParkedAt.Format(time.RFC3339), parked.SandboxName, parkedBecause(parked.Reason), guild)
		case !errors.Is(err, sandbox.ErrNotFound):
			return err
		}
	}

	cached, ttl, ok, err := h.deps.Routes.Get(ctx, guild)
	switch {
	case err != nil:
		h.log.WarnContext(ctx, "route cache read failed", logkey.Guild, guild, logkey.Error, err)
		out.Cache.Error = "the route cache could not be read; the router falls back to the database"
	case ok:
		secs := int64(ttl / time.Second)
		out.Cache = apiwire.RouteCacheEntry{
			Present: true, Value: routecache.Encode(cached), TTLSeconds: &secs,
			Destination: cached.Destination(now),
			Agrees:      routecache.Encode(cached) == routecache.Encode(db),
		}
		out.Source = "cache"
		out.Destination = out.Cache.Destination
		if out.Cache.Agrees {
			out.Reason += "; the route cache agrees"
		} else {
			out.Reason += fmt.Sprintf("; but the route cache still says %q for %ds, so the router sends events to %s until the entry expires or is invalidated",
				out.Cache.Value, secs, out.Cache.Destination)
		}
	default:
		out.Reason += "; no route cache entry: the router reads the database and caches the answer"
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parkedBecause says why a guild was parked, from the teardown reason.
func parkedBecause(reason string) string {
	switch reason {
	case "expired":
		return "expired and was torn down"
	case "destroy_requested":
		return "was destroyed"
	}
	return "was torn down (" + reason + ")"
}

// reasonFor explains the database's view of a guild's route.
func reasonFor(r sandbox.Route, sb *sandbox.Sandbox, now time.Time) string {
	switch {
	case r.Protected:
		return "protected guild (production): it can never be mapped, events go to production"
	case r.Mapped() && sb != nil && r.Deliverable(now):
		return fmt.Sprintf("mapped to sandbox %q (running): events go to its stream", sb.Name)
	case r.Mapped() && sb != nil && r.Status == sandbox.StatusRunning:
		return fmt.Sprintf("mapped to sandbox %q, which expired at %s: its events are parked (dropped, never sent to production) until the cleanup tears it down, and the guild stays parked after that",
			sb.Name, r.ExpiresAt.Format(time.RFC3339))
	case r.Mapped() && sb != nil:
		return fmt.Sprintf("mapped to sandbox %q, which is %s: events are dropped (a test guild never falls back to production)", sb.Name, sb.DisplayStatus(now))
	case r.Parked():
		return "parked: events are dropped, never sent to production"
	default:
		return "not mapped to any sandbox: events go to production"
	}
}
