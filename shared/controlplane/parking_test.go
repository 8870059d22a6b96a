package controlplane_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// recordingPublisher records what each publication was asked, and can fail.
type recordingPublisher struct {
	mu     sync.Mutex
	calls  [][]string
	failed bool
}

func (p *recordingPublisher) Publish(_ context.Context, guilds ...string) ([]bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed {
		return nil, errors.New("redis down")
	}
	p.calls = append(p.calls, slices.Sorted(slices.Values(guilds)))
	return make([]bool, len(guilds)), nil
}

func pendingChanges(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	return count(t, pool, `SELECT count(*) FROM sandbox_control.route_changes`)
}

// Every committed route change is recorded by the database and published after the commit;
// a failed publication leaves the record for the next one.
func TestRouteChangesAreRecordedAndPublished(t *testing.T) {
	pub := &recordingPublisher{}
	m, pool := newManager(t, controlplane.Options{Routes: pub})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "alpha", Owner: alice, Guilds: []string{guild1}})
	if err := m.AddGuild(ctx, alice, sb.ID, guild2, false); err != nil {
		t.Fatal(err)
	}
	if got := pub.calls[len(pub.calls)-1]; !slices.Equal(got, []string{guild2}) {
		t.Fatalf("the mapping published %v", got)
	}
	// The routes carry the expiry: an extension is a route change of every mapped guild.
	if _, _, err := m.Extend(ctx, alice, sb.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := pub.calls[len(pub.calls)-1]; !slices.Equal(got, []string{guild1, guild2}) {
		t.Fatalf("the extension published %v", got)
	}
	if n := pendingChanges(t, pool); n != 0 {
		t.Fatalf("%d changes left after successful publications", n)
	}

	pub.failed = true
	if err := m.RemoveGuild(ctx, alice, sb.ID, guild2); err != nil {
		t.Fatal(err) // the change is committed whatever Redis says
	}
	if n := pendingChanges(t, pool); n != 1 {
		t.Fatalf("%d changes pending after a failed publication, want 1", n)
	}
	pub.failed = false
	if n, err := m.PublishRouteChanges(ctx); err != nil || n != 1 {
		t.Fatalf("publish pending: %d %v", n, err)
	}
	if got := pub.calls[len(pub.calls)-1]; !slices.Equal(got, []string{guild2}) {
		t.Fatalf("last publication %v", got)
	}
	// A status change is a route change of every mapped guild.
	if _, _, err := m.RequestDestroy(ctx, alice, sb.ID); err != nil {
		t.Fatal(err)
	}
	if got := pub.calls[len(pub.calls)-1]; !slices.Equal(got, []string{guild1}) {
		t.Fatalf("destroy published %v", got)
	}
}

// A Deferred manager's writes are recorded and wait; PublishRoutes then publishes them with
// the caller's own guilds in one publication, and says whose entries existed.
func TestDeferredWritesWaitForOnePublication(t *testing.T) {
	pub := &recordingPublisher{}
	m, pool := newManager(t, controlplane.Options{Routes: pub})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "alpha", Owner: alice, Guilds: []string{guild1}})
	published := len(pub.calls)
	d := m.Deferred()
	if err := d.AddGuild(ctx, alice, sb.ID, guild2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Transition(ctx, alice, sb.ID, sandbox.StatusDestroying, nil); err != nil {
		t.Fatal(err)
	}
	if len(pub.calls) != published {
		t.Fatalf("deferred writes published %v", pub.calls[published:])
	}
	if n := pendingChanges(t, pool); n != 3 { // guild2 mapped; guild1 and guild2 by the status
		t.Fatalf("%d changes pending, want 3", n)
	}
	n, existed, err := d.PublishRoutes(ctx, []string{guild3, guild3})
	if err != nil || n != 3 || len(existed) != 0 {
		t.Fatalf("PublishRoutes: %d %v %v", n, existed, err)
	}
	if got := pub.calls[published:]; len(got) != 1 || !slices.Equal(got[0], []string{guild1, guild2, guild3}) {
		t.Fatalf("publications %v, want one of the three guilds", got)
	}
	if n := pendingChanges(t, pool); n != 0 {
		t.Fatalf("%d changes left", n)
	}
}

// A teardown parks its guilds; mapping a parked guild again unparks it, but only to a
// sandbox of its former owner or by an admin (another owner is refused, nothing changed);
// only a release with the parking's sandbox releases it; parking and release are audited.
func TestTeardownParksGuildsUntilReleasedOrMapped(t *testing.T) {
	m, _ := newManager(t, controlplane.Options{Routes: &recordingPublisher{}})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "alpha", Owner: alice, Guilds: []string{guild1, guild2, guild3}})
	tearDownMappings(t, m, sb.ID, "expired")
	routes, err := m.LookupRoutes(ctx, []string{guild1, guild2, guild3})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{guild1, guild2, guild3} {
		if r := routes[g]; !r.Parked() || r.ParkedBy != sb.ID || r.ParkedAt.IsZero() || r.Destination(sb.CreatedAt) != sandbox.DestinationParked {
			t.Fatalf("route of %s after the teardown: %+v", g, r)
		}
	}
	mine, err := m.ListParked(ctx, alice)
	if err != nil || len(mine) != 3 || mine[0].Reason != "expired" || mine[0].SandboxName != "alpha" || mine[0].Owner != alice {
		t.Fatalf("alice's parked guilds: %+v %v", mine, err)
	}
	if theirs, err := m.ListParked(ctx, bob); err != nil || len(theirs) != 0 {
		t.Fatalf("bob's parked guilds: %+v %v", theirs, err)
	}
	stillParked := func(what string, guilds ...string) {
		t.Helper()
		r, err := m.LookupRoutes(ctx, guilds)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range guilds {
			if !r[g].Parked() || r[g].ParkedBy != sb.ID || r[g].Mapped() {
				t.Fatalf("%s: route of %s %+v, want still parked by alpha and unmapped", what, g, r[g])
			}
		}
	}

	// Another owner is refused, at creation and when adding a guild, and nothing changes: no
	// sandbox, no mapping (not even of a free guild asked with it), the parking intact.
	const free = guild4
	_, err = m.Create(ctx, bob, controlplane.CreateInput{Name: "beta", Owner: bob, Guilds: []string{free, guild2}})
	if !errors.Is(err, sandbox.ErrForbidden) {
		t.Fatalf("bob created a sandbox with alice's parked guild: %v", err)
	}
	if _, err := m.GetByName(ctx, "beta"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("the refused creation left a sandbox: %v", err)
	}
	if r, _ := m.LookupRoutes(ctx, []string{free}); r[free].Mapped() {
		t.Fatalf("the refused creation mapped %s: %+v", free, r[free])
	}
	stillParked("refused creation", guild2)
	beta := mustCreate(t, m, controlplane.CreateInput{Name: "beta", Owner: bob})
	if err := m.AddGuild(ctx, bob, beta.ID, guild2, false); !errors.Is(err, sandbox.ErrForbidden) {
		t.Fatalf("bob mapped alice's parked guild to his sandbox: %v", err)
	}
	stillParked("refused mapping", guild2)

	// The former owner maps it again: no longer parked.
	next := mustCreate(t, m, controlplane.CreateInput{Name: "gamma", Owner: alice, Guilds: []string{guild2}})
	if r, _ := m.LookupRoutes(ctx, []string{guild2}); r[guild2].Parked() || r[guild2].SandboxID != next.ID {
		t.Fatalf("guild2 mapped again by alice: %+v", r[guild2])
	}
	// An admin may map it to any owner's sandbox.
	if err := m.AddGuild(ctx, "admin", beta.ID, guild3, true); err != nil {
		t.Fatalf("an admin mapping alice's parked guild to bob's sandbox: %v", err)
	}
	if r, _ := m.LookupRoutes(ctx, []string{guild3}); r[guild3].Parked() || r[guild3].SandboxID != beta.ID {
		t.Fatalf("guild3 mapped by an admin: %+v", r[guild3])
	}
	// Released: with another sandbox's id nothing happens; with its own, production.
	if err := m.ReleaseGuild(ctx, alice, guild1, next.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("release with the wrong parking: %v", err)
	}
	if err := m.ReleaseGuild(ctx, alice, guild1, sb.ID); err != nil {
		t.Fatal(err)
	}
	if r, _ := m.LookupRoutes(ctx, []string{guild1}); r[guild1].Parked() || r[guild1].Destination(sb.CreatedAt) != sandbox.DestinationProduction {
		t.Fatalf("guild1 released: %+v", r[guild1])
	}
	if _, err := m.Parked(ctx, guild1); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("parked after release: %v", err)
	}
	entries, err := m.AuditLog(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Action]++
	}
	if counts[controlplane.ActionGuildParked] != 3 || counts[controlplane.ActionGuildReleased] != 1 {
		t.Fatalf("audit %v", counts)
	}
}

// A protected guild is never parked: it belongs to production.
func TestProtectedGuildIsNotParked(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{Routes: &recordingPublisher{}})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "alpha", Owner: alice, Guilds: []string{guild1}})
	if _, err := pool.Exec(ctx, `INSERT INTO sandbox_control.protected_guilds (guild_id) VALUES ($1)`, guild1); err != nil {
		t.Fatal(err)
	}
	tearDownMappings(t, m, sb.ID, "destroy_requested")
	if r, _ := m.LookupRoutes(ctx, []string{guild1}); r[guild1].Parked() || r[guild1].Destination(sb.CreatedAt) != sandbox.DestinationProduction {
		t.Fatalf("protected guild after teardown: %+v", r[guild1])
	}
}

// tearDownMappings asks for the sandbox's destruction and runs the teardown's mapping step,
// as cleanup does, for reason.
func tearDownMappings(t *testing.T, m *controlplane.Manager, id, reason string) {
	t.Helper()
	ctx := t.Context()
	if _, _, err := m.RequestDestroy(ctx, alice, id); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RemoveMappingsForTeardown(ctx, "cleanup", id, reason,
		func([]string) ([]byte, map[string]any, error) { return []byte(`{}`), map[string]any{}, nil }); err != nil {
		t.Fatal(err)
	}
}
