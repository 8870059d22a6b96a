package controlplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// First sightings are kept while a resource is seen, forgotten once it is not, and only read
// by OrphanFirstSeen.
func TestOrphanSightingsAgeAndAreForgotten(t *testing.T) {
	m, _ := newManager(t, controlplane.Options{})
	ctx := context.Background()
	a := controlplane.OrphanResource{Type: "schema", Name: "sb_aaaaaaaaaaaaaaaa"}
	b := controlplane.OrphanResource{Type: "role", Name: "sb_aaaaaaaaaaaaaaaa"}
	c := controlplane.OrphanResource{Type: "redis", Name: "sandbox:{bbbbbbbbbbbbbbbb}:"}
	t0 := time.Date(2026, 1, 8, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)

	got, err := m.RecordOrphanSightings(ctx, []controlplane.OrphanResource{a, b}, t0)
	if err != nil || len(got) != 2 || !got[a].Equal(t0) || !got[b].Equal(t0) {
		t.Fatalf("first sightings: %v %v", got, err)
	}
	got, err = m.RecordOrphanSightings(ctx, []controlplane.OrphanResource{b, c}, t1)
	if err != nil || len(got) != 2 || !got[b].Equal(t0) || !got[c].Equal(t1) {
		t.Fatalf("second sightings: %v %v", got, err)
	}
	got, err = m.OrphanFirstSeen(ctx, []controlplane.OrphanResource{a, b, c})
	if err != nil || len(got) != 2 || !got[b].Equal(t0) || !got[c].Equal(t1) {
		t.Fatalf("first seen (a no longer seen, so forgotten): %v %v", got, err)
	}
	if got, err = m.RecordOrphanSightings(ctx, nil, t1); err != nil || len(got) != 0 {
		t.Fatalf("nothing seen: %v %v", got, err)
	}
	if got, err = m.OrphanFirstSeen(ctx, []controlplane.OrphanResource{b, c}); err != nil || len(got) != 0 {
		t.Fatalf("after nothing was seen: %v %v", got, err)
	}
}

// SandboxStates says who owns what; StaleMappings lists the mappings of sandboxes neither
// running nor being created.
func TestSandboxStatesAndStaleMappings(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{})
	ctx := context.Background()
	live := mustCreate(t, m, controlplane.CreateInput{Name: "live", Owner: alice, Guilds: []string{guild1}})
	failed := mustCreate(t, m, controlplane.CreateInput{Name: "failed", Owner: alice, Guilds: []string{guild2}})
	setStatus(t, pool, failed.ID, sandbox.StatusFailed)
	ghost := sandbox.NewID()

	states, err := m.SandboxStates(ctx, []string{live.ID, failed.ID, ghost})
	if err != nil || len(states) != 2 || states[live.ID].Status != sandbox.StatusRunning || states[failed.ID].Status != sandbox.StatusFailed {
		t.Fatalf("states %+v %v", states, err)
	}
	if _, ok := states[ghost]; ok {
		t.Fatal("a sandbox without a row has a state")
	}
	stale, err := m.StaleMappings(ctx)
	if err != nil || len(stale) != 1 || stale[0].GuildID != guild2 || stale[0].SandboxID != failed.ID || stale[0].State.Status != sandbox.StatusFailed {
		t.Fatalf("stale mappings %+v %v", stale, err)
	}
}
