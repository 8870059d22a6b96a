package controlplane_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

func TestCreateAndRead(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "feature-x", Owner: alice, TTL: 2 * time.Hour,
		Guilds: []string{guild2, guild1, guild2}, Metadata: map[string]string{"ticket": "BOT-42"}})
	if sb.Status != sandbox.StatusRunning || sb.SchemaName != "sb_"+sb.ID || sb.DBRole != "sb_"+sb.ID {
		t.Fatalf("created %+v", sb)
	}
	if got := sb.ExpiresAt.Sub(sb.CreatedAt); got != 2*time.Hour {
		t.Fatalf("ttl %s", got)
	}
	for name, get := range map[string]func() (*sandbox.Sandbox, error){
		"id":    func() (*sandbox.Sandbox, error) { return m.Get(ctx, sb.ID) },
		"name":  func() (*sandbox.Sandbox, error) { return m.GetByName(ctx, "feature-x") },
		"guild": func() (*sandbox.Sandbox, error) { return m.GetByGuild(ctx, guild2) },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("get by %s: %v", name, err)
		}
		if got.ID != sb.ID || len(got.Guilds) != 2 || got.Guilds[0] != guild1 || got.Metadata["ticket"] != "BOT-42" {
			t.Fatalf("get by %s: %+v", name, got)
		}
	}
	if _, err := m.Get(ctx, "nosuchsandbox1"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("missing id: %v", err)
	}
	if _, err := m.GetByGuild(ctx, guild3); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("unmapped guild: %v", err)
	}
	entries, err := m.AuditLog(ctx, sb.ID)
	if err != nil || len(entries) != 2 || entries[0].Action != controlplane.ActionCreate || entries[1].Action != controlplane.ActionRunning {
		t.Fatalf("audit %+v %v", entries, err)
	}
	if entries[0].Actor != alice {
		t.Fatalf("audit actor %q", entries[0].Actor)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.guild_mappings WHERE sandbox_id = $1`, sb.ID); n != 2 {
		t.Fatalf("%d mappings", n)
	}
}

func TestCreateRejectsBadInputAndWritesNothing(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{})
	ctx := context.Background()
	bad := []controlplane.CreateInput{
		{Name: "X", Owner: alice},
		{Name: "ok-name", Owner: ""},
		{Name: "ok-name", Owner: alice, TTL: 169 * time.Hour},
		{Name: "ok-name", Owner: alice, TTL: time.Second},
		{Name: "ok-name", Owner: alice, Guilds: []string{"12"}},
		{Name: "ok-name", Owner: alice, Metadata: map[string]string{"": "x"}},
	}
	for _, in := range bad {
		if _, err := m.Create(ctx, alice, in); !errors.Is(err, sandbox.ErrInvalidInput) {
			t.Errorf("%+v: want invalid_input, got %v", in, err)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.sandboxes`); n != 0 {
		t.Fatalf("%d sandboxes written by invalid creates", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log`); n != 0 {
		t.Fatalf("%d audit entries written by invalid creates", n)
	}
}

func TestDefaultTTL(t *testing.T) {
	m, _ := newManager(t, controlplane.Options{})
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "default-ttl", Owner: alice})
	if got := sb.ExpiresAt.Sub(sb.CreatedAt); got != 24*time.Hour {
		t.Fatalf("default ttl %s", got)
	}
}

func TestNameTakenAndReusedAfterDestroy(t *testing.T) {
	m, _ := newManager(t, controlplane.Options{})
	ctx := context.Background()
	first := mustCreate(t, m, controlplane.CreateInput{Name: "reused", Owner: alice})
	if _, err := m.Create(ctx, bob, controlplane.CreateInput{Name: "reused", Owner: bob}); !errors.Is(err, sandbox.ErrNameTaken) {
		t.Fatalf("want name_taken, got %v", err)
	}
	if _, _, err := m.RequestDestroy(ctx, alice, first.ID); err != nil {
		t.Fatal(err)
	}
	// Still destroying: the name is still taken.
	if _, err := m.Create(ctx, bob, controlplane.CreateInput{Name: "reused", Owner: bob}); !errors.Is(err, sandbox.ErrNameTaken) {
		t.Fatalf("while destroying: want name_taken, got %v", err)
	}
	if _, err := m.Transition(ctx, "cleanup", first.ID, sandbox.StatusDestroyed, nil); err != nil {
		t.Fatal(err)
	}
	second := mustCreate(t, m, controlplane.CreateInput{Name: "reused", Owner: bob})
	if second.ID == first.ID {
		t.Fatal("reused id")
	}
	got, err := m.GetByName(ctx, "reused")
	if err != nil || got.ID != second.ID {
		t.Fatalf("GetByName prefers the live sandbox: %+v %v", got, err)
	}
}

func TestQuotaUnderConcurrency(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{})
	ctx := context.Background()
	const attempts = 20
	var wg sync.WaitGroup
	errs := make([]error, attempts)
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = m.Create(ctx, alice, controlplane.CreateInput{Name: fmt.Sprintf("quota-%02d", i), Owner: alice})
		}()
	}
	wg.Wait()
	ok, quota := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, sandbox.ErrQuotaExceeded):
			quota++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 5 || quota != 15 {
		t.Fatalf("%d created, %d refused; want 5 and 15", ok, quota)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.sandboxes WHERE owner = $1`, alice); n != 5 {
		t.Fatalf("%d rows for the owner, want 5", n)
	}
	// Another owner is not affected.
	mustCreate(t, m, controlplane.CreateInput{Name: "bobs", Owner: bob})
}

func TestGuildConflictsAndProtection(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{ProtectedGuilds: []string{guild3}})
	ctx := context.Background()
	a := mustCreate(t, m, controlplane.CreateInput{Name: "owner-a", Owner: alice, Guilds: []string{guild1}})
	before := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log`)

	if _, err := m.Create(ctx, bob, controlplane.CreateInput{Name: "owner-b", Owner: bob, Guilds: []string{guild2, guild1}}); !errors.Is(err, sandbox.ErrGuildAlreadyMapped) {
		t.Fatalf("want guild_already_mapped, got %v", err)
	}
	if _, err := m.Create(ctx, bob, controlplane.CreateInput{Name: "owner-b", Owner: bob, Guilds: []string{guild3}}); !errors.Is(err, sandbox.ErrGuildProtected) {
		t.Fatalf("config-protected: want guild_protected, got %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.sandboxes WHERE name = 'owner-b'`); n != 0 {
		t.Fatal("a refused create left a sandbox row")
	}
	if n := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log`); n != before {
		t.Fatal("a refused create left audit entries")
	}
	// Table-protected guilds: protecting a mapped guild is refused, an unmapped one works.
	if _, _, err := m.ProtectGuild(ctx, "operator", guild1, "production"); !errors.Is(err, sandbox.ErrGuildAlreadyMapped) {
		t.Fatalf("protect mapped: %v", err)
	}
	if _, _, err := m.ProtectGuild(ctx, "operator", guild2, "production"); err != nil {
		t.Fatal(err)
	}
	if err := m.AddGuild(ctx, alice, a.ID, guild2, false); !errors.Is(err, sandbox.ErrGuildProtected) {
		t.Fatalf("add protected: %v", err)
	}
	if err := m.AddGuild(ctx, alice, a.ID, guild3, false); !errors.Is(err, sandbox.ErrGuildProtected) {
		t.Fatalf("add config-protected: %v", err)
	}

	// The database itself enforces one sandbox per guild, whatever the application checks.
	b := mustCreate(t, m, controlplane.CreateInput{Name: "owner-b", Owner: bob})
	_, err := pool.Exec(ctx, `INSERT INTO sandbox_control.guild_mappings (guild_id, sandbox_id, created_by) VALUES ($1, $2, 'x')`, guild1, b.ID)
	if err == nil {
		t.Fatal("the database accepted a second mapping of one guild")
	}

	routes, err := m.LookupRoutes(ctx, []string{guild1, guild2, guild3, "80351110224678999"})
	if err != nil {
		t.Fatal(err)
	}
	if r := routes[guild1]; r.SandboxID != a.ID || r.Status != sandbox.StatusRunning || !r.Deliverable(time.Now()) {
		t.Fatalf("guild1 route %+v", r)
	}
	if r := routes[guild2]; r.Mapped() || !r.Protected {
		t.Fatalf("guild2 route %+v", r)
	}
	if r := routes[guild3]; r.Mapped() || !r.Protected {
		t.Fatalf("guild3 route %+v", r)
	}
	if r := routes["80351110224678999"]; r.Mapped() || r.Protected {
		t.Fatalf("unknown guild route %+v", r)
	}
}

func TestAddAndRemoveGuild(t *testing.T) {
	m, _ := newManager(t, controlplane.Options{})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "guilds", Owner: alice})
	if err := m.AddGuild(ctx, alice, sb.ID, guild1, false); err != nil {
		t.Fatal(err)
	}
	if err := m.AddGuild(ctx, alice, sb.ID, guild1, false); !errors.Is(err, sandbox.ErrGuildAlreadyMapped) {
		t.Fatalf("re-add: %v", err)
	}
	if err := m.AddGuild(ctx, alice, sb.ID, "nope", false); !errors.Is(err, sandbox.ErrInvalidInput) {
		t.Fatalf("bad id: %v", err)
	}
	if err := m.RemoveGuild(ctx, alice, sb.ID, guild2); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("remove unmapped: %v", err)
	}
	if err := m.RemoveGuild(ctx, alice, sb.ID, guild1); err != nil {
		t.Fatal(err)
	}
	got, _ := m.Get(ctx, sb.ID)
	if len(got.Guilds) != 0 {
		t.Fatalf("guilds %v", got.Guilds)
	}
	if _, _, err := m.RequestDestroy(ctx, alice, sb.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.AddGuild(ctx, alice, sb.ID, guild1, false); !errors.Is(err, sandbox.ErrInvalidTransition) {
		t.Fatalf("add to destroying: %v", err)
	}
	entries, _ := m.AuditLog(ctx, sb.ID)
	actions := []string{}
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	want := []string{controlplane.ActionCreate, controlplane.ActionRunning, controlplane.ActionGuildAdd, controlplane.ActionGuildRemove, controlplane.ActionDestroyRequested}
	if fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
}

func TestMaxGuilds(t *testing.T) {
	limits := sandbox.DefaultLimits()
	limits.MaxGuilds = 2
	m, _ := newManager(t, controlplane.Options{Limits: limits})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "max-guilds", Owner: alice, Guilds: []string{guild1, guild2}})
	if err := m.AddGuild(ctx, alice, sb.ID, guild3, false); !errors.Is(err, sandbox.ErrInvalidInput) {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestEveryTransition(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{Limits: func() sandbox.Limits {
		l := sandbox.DefaultLimits()
		l.OwnerQuota, l.DBReservedConnections = 1000, -1
		return l
	}()})
	ctx := context.Background()
	for _, from := range sandbox.Statuses() {
		for _, to := range sandbox.Statuses() {
			sb := mustCreate(t, m, controlplane.CreateInput{Name: fmt.Sprintf("t-%s-%s", from[:4], to[:4]), Owner: alice})
			setStatus(t, pool, sb.ID, from)
			auditBefore := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log WHERE sandbox_id = $1`, sb.ID)
			got, err := m.Transition(ctx, "test", sb.ID, to, nil)
			var status string
			if err := pool.QueryRow(ctx, `SELECT status FROM sandbox_control.sandboxes WHERE id = $1`, sb.ID).Scan(&status); err != nil {
				t.Fatal(err)
			}
			auditAfter := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log WHERE sandbox_id = $1`, sb.ID)
			if sandbox.CanTransition(from, to) {
				if err != nil || got.Status != to || status != string(to) || auditAfter != auditBefore+1 {
					t.Errorf("%s -> %s: legal, got %v (stored %s, audit +%d)", from, to, err, status, auditAfter-auditBefore)
				}
				if to == sandbox.StatusDestroyed && got.DestroyedAt == nil {
					t.Errorf("%s -> destroyed did not set destroyed_at", from)
				}
			} else {
				if !errors.Is(err, sandbox.ErrInvalidTransition) || status != string(from) || auditAfter != auditBefore {
					t.Errorf("%s -> %s: illegal, got %v (stored %s, audit +%d)", from, to, err, status, auditAfter-auditBefore)
				}
			}
			// Free the name for later iterations.
			setStatus(t, pool, sb.ID, sandbox.StatusDestroyed)
		}
	}
	if _, err := m.Transition(ctx, "test", "nosuchsandbox1", sandbox.StatusDestroying, nil); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestRequestDestroyIsIdempotent(t *testing.T) {
	m, pool := newManager(t, controlplane.Options{})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "destroy-me", Owner: alice, Guilds: []string{guild1}})
	got, changed, err := m.RequestDestroy(ctx, alice, sb.ID)
	if err != nil || !changed || got.Status != sandbox.StatusDestroying || len(got.Guilds) != 1 {
		t.Fatalf("first: %+v %v %v", got, changed, err)
	}
	got, changed, err = m.RequestDestroy(ctx, alice, sb.ID)
	if err != nil || changed || got.Status != sandbox.StatusDestroying {
		t.Fatalf("second: %+v %v %v", got, changed, err)
	}
	if _, err := m.Transition(ctx, "cleanup", sb.ID, sandbox.StatusDestroyed, nil); err != nil {
		t.Fatal(err)
	}
	got, changed, err = m.RequestDestroy(ctx, alice, sb.ID)
	if err != nil || changed || got.Status != sandbox.StatusDestroyed {
		t.Fatalf("destroyed: %+v %v %v", got, changed, err)
	}
	creating := mustCreate(t, m, controlplane.CreateInput{Name: "still-creating", Owner: alice})
	setStatus(t, pool, creating.ID, sandbox.StatusCreating)
	if _, _, err := m.RequestDestroy(ctx, alice, creating.ID); !errors.Is(err, sandbox.ErrInvalidTransition) {
		t.Fatalf("creating: %v", err)
	}
	failed := mustCreate(t, m, controlplane.CreateInput{Name: "failed-one", Owner: alice})
	setStatus(t, pool, failed.ID, sandbox.StatusFailed)
	if _, changed, err := m.RequestDestroy(ctx, alice, failed.ID); err != nil || !changed {
		t.Fatalf("failed: %v %v", changed, err)
	}
}

func TestExtend(t *testing.T) {
	clk := testenv.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	m, pool := newManager(t, controlplane.Options{Now: clk.Now})
	ctx := context.Background()
	sb := mustCreate(t, m, controlplane.CreateInput{Name: "extend-me", Owner: alice, TTL: 24 * time.Hour})
	got, capped, err := m.Extend(ctx, alice, sb.ID, 12*time.Hour)
	if err != nil || capped || !got.ExpiresAt.Equal(sb.ExpiresAt.Add(12*time.Hour)) {
		t.Fatalf("extend: %v %v %v", got.ExpiresAt, capped, err)
	}
	// Longer than the whole lifetime: capped, not refused, and the answer says by how much the
	// expiry really moved (168h - 36h), as does the audit entry.
	ext, err := m.ExtendExpiry(ctx, alice, sb.ID, 30*24*time.Hour)
	maxExpiry := sb.CreatedAt.Add(168 * time.Hour)
	if err != nil || !ext.Capped || !ext.To.Equal(maxExpiry) || !ext.Sandbox.ExpiresAt.Equal(maxExpiry) ||
		!ext.From.Equal(sb.ExpiresAt.Add(12*time.Hour)) || ext.By != 132*time.Hour || ext.Requested != 30*24*time.Hour ||
		!ext.MaxExpiresAt.Equal(maxExpiry) {
		t.Fatalf("extend by 30d: %+v %v", ext, err)
	}
	entries, err := m.AuditLog(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	var details struct {
		By       int64 `json:"by_seconds"`
		Extended int64 `json:"extended_by_seconds"`
		Capped   bool  `json:"capped"`
	}
	last := entries[len(entries)-1]
	if err := json.Unmarshal(last.Details, &details); err != nil || last.Action != controlplane.ActionExtend ||
		details.By != 30*24*3600 || details.Extended != 132*3600 || !details.Capped {
		t.Fatalf("audit of the capped extension: %s %s %v", last.Action, last.Details, err)
	}
	// At the cap nothing can move the expiry: a conflict with the sandbox's state.
	before := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log`)
	if _, _, err := m.Extend(ctx, alice, sb.ID, time.Hour); !errors.Is(err, sandbox.ErrInvalidTransition) {
		t.Fatalf("at cap: %v", err)
	}
	if after := count(t, pool, `SELECT count(*) FROM sandbox_control.audit_log`); after != before {
		t.Fatalf("a refused extension wrote %d audit entries", after-before)
	}
	other := mustCreate(t, m, controlplane.CreateInput{Name: "expires", Owner: alice, TTL: time.Hour})
	clk.Add(2 * time.Hour)
	if _, _, err := m.Extend(ctx, alice, other.ID, time.Hour); !errors.Is(err, sandbox.ErrInvalidTransition) {
		t.Fatalf("expired: %v", err)
	}
	setStatus(t, pool, sb.ID, sandbox.StatusFailed)
	if _, _, err := m.Extend(ctx, alice, sb.ID, time.Hour); !errors.Is(err, sandbox.ErrInvalidTransition) {
		t.Fatalf("failed: %v", err)
	}
	if _, _, err := m.Extend(ctx, alice, "nosuchsandbox1", time.Hour); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestListFiltersAndPagination(t *testing.T) {
	clk := testenv.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	limits := sandbox.DefaultLimits()
	limits.OwnerQuota = 100
	limits.DBReservedConnections = -1 // more sandboxes than the test server has connections for
	m, _ := newManager(t, controlplane.Options{Now: clk.Now, Limits: limits})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 7; i++ {
		clk.Add(time.Minute)
		owner := alice
		if i%2 == 1 {
			owner = bob
		}
		ttl := 24 * time.Hour
		if i == 0 {
			ttl = time.Hour
		}
		sb := mustCreate(t, m, controlplane.CreateInput{Name: fmt.Sprintf("list-%d", i), Owner: owner, TTL: ttl})
		ids = append(ids, sb.ID)
	}
	if _, _, err := m.RequestDestroy(ctx, bob, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Transition(ctx, "cleanup", ids[1], sandbox.StatusDestroyed, nil); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour) // list-0 is now expired

	names := func(f controlplane.ListFilter) []string {
		t.Helper()
		var out []string
		for {
			page, err := m.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, sb := range page.Sandboxes {
				out = append(out, sb.Name)
			}
			if page.NextCursor == "" {
				return out
			}
			f.Cursor = page.NextCursor
		}
	}
	check := func(label string, got []string, want ...string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v", label, got, want)
		}
	}
	check("all live", names(controlplane.ListFilter{}), "list-6", "list-5", "list-4", "list-3", "list-2", "list-0")
	check("paged by 2", names(controlplane.ListFilter{Limit: 2}), "list-6", "list-5", "list-4", "list-3", "list-2", "list-0")
	check("with destroyed", names(controlplane.ListFilter{IncludeDestroyed: true, Limit: 3}), "list-6", "list-5", "list-4", "list-3", "list-2", "list-1", "list-0")
	check("owner", names(controlplane.ListFilter{Owner: bob}), "list-5", "list-3")
	check("owner with destroyed", names(controlplane.ListFilter{Owner: bob, IncludeDestroyed: true}), "list-5", "list-3", "list-1")
	check("status destroyed", names(controlplane.ListFilter{Status: "destroyed"}), "list-1")
	check("status expired", names(controlplane.ListFilter{Status: "expired"}), "list-0")
	check("status running", names(controlplane.ListFilter{Status: "running"}), "list-6", "list-5", "list-4", "list-3", "list-2", "list-0")

	for _, f := range []controlplane.ListFilter{{Limit: 201}, {Limit: -1}, {Status: "zombie"}, {Cursor: "garbage!"}, {Cursor: "eyJjIjoxfQ"}} {
		if _, err := m.List(ctx, f); !errors.Is(err, sandbox.ErrInvalidInput) {
			t.Errorf("%+v: want invalid_input, got %v", f, err)
		}
	}
}

// List's cursors are signed: instances sharing the key accept each other's cursors; a cursor
// signed with another key, forged from a well-formed position, truncated or altered is
// invalid_input naming cursor.
func TestListCursorsAreSigned(t *testing.T) {
	key := bytes.Repeat([]byte{7}, controlplane.MinCursorKeyBytes)
	m, pool := newManager(t, controlplane.Options{CursorKey: key})
	ctx := context.Background()
	for _, name := range []string{"page-a", "page-b", "page-c"} {
		mustCreate(t, m, controlplane.CreateInput{Name: name, Owner: alice})
	}
	first, err := m.List(ctx, controlplane.ListFilter{Limit: 1})
	if err != nil || first.NextCursor == "" {
		t.Fatalf("first page: %+v %v", first, err)
	}
	same := controlplane.NewManager(pool, controlplane.Options{Limits: sandbox.DefaultLimits(), CursorKey: bytes.Clone(key)})
	next, err := same.List(ctx, controlplane.ListFilter{Limit: 1, Cursor: first.NextCursor})
	if err != nil || len(next.Sandboxes) != 1 || next.Sandboxes[0].Name != "page-b" {
		t.Fatalf("another instance with the same key: %+v %v", next, err)
	}

	other := controlplane.NewManager(pool, controlplane.Options{Limits: sandbox.DefaultLimits(), CursorKey: bytes.Repeat([]byte{8}, 32)})
	foreign, err := other.List(ctx, controlplane.ListFilter{Limit: 1})
	if err != nil || foreign.NextCursor == "" {
		t.Fatalf("first page of the other key: %+v %v", foreign, err)
	}
	// A position that exists, encoded the way cursors were before they were signed.
	position, _ := json.Marshal(map[string]any{"c": first.Sandboxes[0].CreatedAt, "i": first.Sandboxes[0].ID})
	forged := base64.RawURLEncoding.EncodeToString(position)
	raw, _ := base64.RawURLEncoding.DecodeString(first.NextCursor)
	altered := bytes.Clone(raw)
	altered[len(altered)-3] ^= 1
	for label, c := range map[string]string{
		"signed with another key": foreign.NextCursor,
		"forged":                  forged,
		"mac alone":               base64.RawURLEncoding.EncodeToString(raw[:32]),
		"truncated":               first.NextCursor[:len(first.NextCursor)-2],
		"altered":                 base64.RawURLEncoding.EncodeToString(altered),
		"not base64":              first.NextCursor + "!",
	} {
		_, err := m.List(ctx, controlplane.ListFilter{Limit: 1, Cursor: c})
		var de *sandbox.Error
		if !errors.As(err, &de) || de.Code != sandbox.CodeInvalidInput || de.Field != "cursor" {
			t.Errorf("%s cursor: want invalid_input on cursor, got %v", label, err)
		}
	}
}

func TestStats(t *testing.T) {
	m, _ := newManager(t, controlplane.Options{})
	mustCreate(t, m, controlplane.CreateInput{Name: "stats-a", Owner: alice, Guilds: []string{guild1, guild2}})
	mustCreate(t, m, controlplane.CreateInput{Name: "stats-b", Owner: alice})
	s, err := m.Stats(context.Background())
	if err != nil || s.Active != 2 || s.GuildMappings != 2 {
		t.Fatalf("%+v %v", s, err)
	}
}

// The sandboxes' roles together may not reach into the connections the database server keeps
// for the control plane: with room for two sandboxes' sessions, a third creation is refused
// whoever its owner, saying why, and changes nothing; a destroyed sandbox gives its room back.
// Twenty creations at once take the room once.
func TestSandboxesCannotTakeTheControlPlanesConnections(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	var server int
	if err := pool.QueryRow(ctx, `SELECT current_setting('max_connections')::int
		- current_setting('superuser_reserved_connections')::int`).Scan(&server); err != nil {
		t.Fatal(err)
	}
	limits := sandbox.DefaultLimits()
	limits.DBReservedConnections = server - 2*sandbox.RoleConnectionLimit - sandbox.RoleConnectionLimit/2
	m := controlplane.NewManager(pool, controlplane.Options{Limits: limits})

	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		owner := fmt.Sprintf("arn:aws:iam::123456789012:user/dev%02d", i)
		wg.Go(func() {
			_, errs[i] = m.Create(ctx, owner, controlplane.CreateInput{Name: fmt.Sprintf("room-%02d", i), Owner: owner})
		})
	}
	wg.Wait()
	var created []string
	for i, err := range errs {
		switch {
		case err == nil:
			created = append(created, fmt.Sprintf("room-%02d", i))
		case !errors.Is(err, sandbox.ErrQuotaExceeded) || !strings.Contains(err.Error(), "SANDBOX_DB_RESERVED_CONNECTIONS"):
			t.Fatalf("creation %d: %v, want quota_exceeded naming the reserve", i, err)
		}
	}
	if len(created) != 2 || count(t, pool, `SELECT count(*) FROM sandbox_control.sandboxes`) != 2 {
		t.Fatalf("created %v, want two sandboxes and two rows", created)
	}

	first, err := m.GetByName(ctx, created[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE sandbox_control.sandboxes SET status = 'destroyed', destroyed_at = now() WHERE id = $1`, first.ID); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, m, controlplane.CreateInput{Name: "after", Owner: bob})
	if _, err := m.Create(ctx, alice, controlplane.CreateInput{Name: "one-too-many", Owner: alice}); !errors.Is(err, sandbox.ErrQuotaExceeded) {
		t.Fatalf("with the room taken again: %v", err)
	}
}
