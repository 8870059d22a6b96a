package cleanup

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// TestLostClaimIsFencedAndCounted lets the lease of one sandbox of a run run out in the middle
// of its teardowns (the run stalled past it) and starts a second run then, from the fault
// hook: the second run takes that sandbox over and finishes it; the first stops it before its
// next step, writes nothing more and counts a lost claim, not a failure; it finishes its other
// sandboxes, whose leases still run.
func TestLostClaimIsFencedAndCounted(t *testing.T) {
	t.Parallel()
	// A lease of an hour: no renewal ticks during the test; its end is simulated.
	e := setup(t, envConfig{options: func(o *Options) { o.ClaimLease = time.Hour }})
	ctx := context.Background()
	var sbs []*sandbox.Sandbox
	for _, name := range []string{"lease-a", "lease-b", "lease-c"} {
		sb := e.createExpired(t, name, newGuild())
		e.seed(t, sb, 3)
		sbs = append(sbs, sb)
	}

	newRecorder := func() (*metrics.Recorder, *bytes.Buffer) {
		var out bytes.Buffer
		em, err := metrics.NewEmitter(&out, "test")
		if err != nil {
			t.Fatal(err)
		}
		return em.Begin(), &out
	}
	rec1, out1 := newRecorder()
	rec2, out2 := newRecorder()

	var (
		fired   atomic.Bool
		taken   string
		rep2    RunReport
		run2Err error
	)
	e.s.inject = func(_ context.Context, point string, step Step, id string) error {
		if point != "before" || step != StepDropDatabase || !fired.CompareAndSwap(false, true) {
			return nil
		}
		taken = id
		// This sandbox's lease runs out (the run stalled past it).
		if _, err := e.pool.Exec(ctx, `UPDATE sandbox_control.teardown_claims SET expires_at = clock_timestamp() - interval '1 second'
			WHERE sandbox_id = $1`, id); err != nil {
			t.Error(err)
		}
		rep2, run2Err = e.s.Run(ctx, RunOptions{Metrics: rec2})
		return nil
	}
	rep1, err := e.s.Run(ctx, RunOptions{Metrics: rec1})
	e.s.inject = nil
	if err != nil || run2Err != nil {
		t.Fatalf("runs: %v / %v", err, run2Err)
	}
	if taken == "" {
		t.Fatal("the hook never fired")
	}
	if len(rep1.Failed) != 0 || rep1.ClaimsLost != 1 || len(rep1.Destroyed) != 2 || slices.Contains(rep1.Destroyed, taken) {
		t.Fatalf("first run: %+v", rep1)
	}
	if len(rep2.Failed) != 0 || rep2.ClaimsLost != 0 || !slices.Equal(rep2.Destroyed, []string{taken}) {
		t.Fatalf("second run: %+v", rep2)
	}
	if err := rec1.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := rec2.Flush(); err != nil {
		t.Fatal(err)
	}
	m1, _ := emfValues(t, out1.Bytes())
	m2, _ := emfValues(t, out2.Bytes())
	if m1["CleanupClaimsLost"] != 1 || m1["CleanupFailures"] != 0 || m2["CleanupClaimsLost"] != 0 || m2["CleanupFailures"] != 0 {
		t.Fatalf("metrics: first run %v, second run %v", m1, m2)
	}
	for _, sb := range sbs {
		e.assertGone(t, sb.ID, sb.Guilds)
		e.assertTornDownOnce(t, sb.ID) // every step audited once: none ran twice
		got, err := e.m.Get(ctx, sb.ID)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := ParseRecord(got.Teardown)
		if got.CleanupAttempts != 0 || got.LastError != "" || rec.LastFailure != nil {
			t.Errorf("sandbox %s: a failure was recorded: %s", sb.ID, got.Teardown)
		}
		// The first run's entries stand; the second run resumed from them.
		if rec.DeleteKeys == nil || rec.DeleteKeys.Unlinked != 4 || rec.MarkDestroying.Actor != DefaultActor {
			t.Errorf("sandbox %s: record %s", sb.ID, got.Teardown)
		}
	}
	var left int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM sandbox_control.teardown_claims`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d claims left (%v)", left, err)
	}
}

// TestStaleClaimWritesNothing checks the fence at the control plane: once a claim is taken
// over, every write of its former holder is refused and changes nothing.
func TestStaleClaimWritesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	sb := e.createExpired(t, "fenced")
	old, err := e.m.ClaimTeardown(ctx, sb.ID, "run-1", time.Hour)
	if err != nil || old == nil {
		t.Fatalf("claim: %v %v", old, err)
	}
	if again, err := e.m.ClaimTeardown(ctx, sb.ID, "run-2", time.Hour); err != nil || again != nil {
		t.Fatalf("claimed twice: %v %v", again, err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE sandbox_control.teardown_claims SET expires_at = clock_timestamp() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	current, err := e.m.ClaimTeardown(ctx, sb.ID, "run-2", time.Hour)
	if err != nil || current == nil || current.Token <= old.Token {
		t.Fatalf("takeover: %v %v", current, err)
	}
	if _, err := e.m.TransitionClaimed(ctx, old, "x", sandbox.StatusDestroying, nil); !strings.Contains(errString(err), controlplane.ErrClaimLost.Error()) {
		t.Fatalf("transition: %v", err)
	}
	if err := e.m.SaveTeardownClaimed(ctx, old, "x", []byte(`{"stale":true}`), "", nil); !strings.Contains(errString(err), controlplane.ErrClaimLost.Error()) {
		t.Fatalf("save: %v", err)
	}
	if _, err := e.m.RecordTeardownFailureClaimed(ctx, old, "x", []byte(`{"stale":true}`), "boom", nil); !strings.Contains(errString(err), controlplane.ErrClaimLost.Error()) {
		t.Fatalf("failure: %v", err)
	}
	lost, err := e.m.RenewTeardownClaims(ctx, []*controlplane.TeardownClaim{old, current}, time.Hour)
	if err != nil || len(lost) != 1 || lost[0] != old {
		t.Fatalf("renew: %v %v", lost, err)
	}
	got, _ := e.m.Get(ctx, sb.ID)
	if got.Status != sandbox.StatusRunning || len(got.Teardown) > 2 || got.CleanupAttempts != 0 {
		t.Fatalf("a stale write landed: %+v %s", got, got.Teardown)
	}
	if _, err := e.m.TransitionClaimed(ctx, current, "x", sandbox.StatusDestroying, nil); err != nil {
		t.Fatalf("current holder: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// scanPatterns records the MATCH pattern of every scan step (see, through a testenv.CommandHook).
type scanPatterns struct {
	mu       sync.Mutex
	patterns []string
}

func (h *scanPatterns) see(cmd redis.Cmder) {
	// EVALSHA sha 0 cursor pattern ..., or EVAL with the script's text.
	args := cmd.Args()
	if len(args) < 5 || (args[1] != scanStep.Hash() && args[1] != scanStepSource) {
		return
	}
	h.mu.Lock()
	h.patterns = append(h.patterns, args[4].(string))
	h.mu.Unlock()
}

// TestOnePassDeletesOnlyTheBatchsKeys tears down two sandboxes in one run, with one keyspace
// pass, beside keys that the pass must leave: a running sandbox's (one of them with the
// targets' ids inside its suffix), namespaces whose ids extend or are cut from the targets',
// and keys outside the layout.
func TestOnePassDeletesOnlyTheBatchsKeys(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	a, b := e.createExpired(t, "pass-a"), e.createExpired(t, "pass-b")
	e.seed(t, a, 3)
	e.seed(t, b, 5)
	bystander := e.create(t, "pass-bystander", 168*time.Hour)
	e.seed(t, bystander, 4)
	// Keys of the targets whose suffix holds braces and other ids: theirs, to delete.
	for _, k := range []string{keys.Namespace(a.ID) + "x}:y", keys.Namespace(b.ID) + "{" + bystander.ID + "}:z"} {
		if err := e.rdb.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	survivors := []string{
		keys.Namespace(bystander.ID) + "{" + a.ID + "}:k", keys.Namespace(bystander.ID) + "x}:" + b.ID,
		keys.Namespace(a.ID+"x") + "k", keys.Namespace(a.ID[:12]) + "k", keys.EventStream(b.ID + "y"),
		"sandbox:{" + a.ID + "}x", "sandbox:{" + a.ID + "}", "sandbox:" + a.ID + ":k", "other:{" + b.ID + "}:k",
		"sandbox:{" + strings.ToUpper(b.ID) + "}:k", "sandbox:{" + a.ID + "x}:" + b.ID, "sandbox:{{" + a.ID + "}}:k",
	}
	for _, k := range survivors {
		if err := e.rdb.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	bystanderBefore := e.state(t, bystander.ID, bystander.Guilds)
	scans := &scanPatterns{}
	hook := testenv.CommandHook(scans.see)
	e.rdb.AddHook(hook)
	if _, cluster := e.rdb.(*redis.ClusterClient); cluster {
		// A cluster's passes run on each primary's own client, which its hooks do not reach.
		for _, node := range testenv.RedisPrimaries(t, e.rdb) {
			node.AddHook(hook)
		}
	}

	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil || len(rep.Destroyed) != 2 || len(rep.Failed) != 0 {
		t.Fatalf("run: %+v %v", rep, err)
	}
	e.assertGone(t, a.ID, nil)
	e.assertGone(t, b.ID, nil)
	for _, k := range survivors {
		if n, err := e.rdb.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("key %s, not a target's, deleted (%v)", k, err)
		}
	}
	if got := e.state(t, bystander.ID, bystander.Guilds); !slices.Equal(got.Keys, bystanderBefore.Keys) {
		t.Fatalf("bystander's keys: %v, want %v", got.Keys, bystanderBefore.Keys)
	}
	for _, c := range []struct {
		sb   *sandbox.Sandbox
		keys int64
	}{{a, 3 + 1 + 1}, {b, 5 + 1 + 1}} { // seeded keys, the stream, the key with braces
		got, _ := e.m.Get(ctx, c.sb.ID)
		rec, _ := ParseRecord(got.Teardown)
		if rec.DeleteKeys == nil || rec.DeleteKeys.Unlinked != c.keys || rec.DeleteKeys.Primaries != len(testenv.RedisPrimaries(t, e.rdb)) {
			t.Errorf("sandbox %s: keys step %+v, want %d keys", c.sb.ID, rec.DeleteKeys, c.keys)
		}
		e.assertTornDownOnce(t, c.sb.ID)
	}
	scans.mu.Lock()
	defer scans.mu.Unlock()
	if !slices.Contains(scans.patterns, keys.AllNamespacesPattern) {
		t.Fatalf("no pass over every namespace: %v", scans.patterns)
	}
	for _, p := range scans.patterns {
		if p != keys.AllNamespacesPattern && strings.HasPrefix(p, "sandbox:{") {
			t.Errorf("SCAN MATCH %q: the teardowns should share one pass over every namespace", p)
		}
	}
}

// TestReasonSurvivesResume: a teardown started for an expiry and resumed after a crash keeps
// "expired" (its status, destroying, alone would read as destroy_requested).
func TestReasonSurvivesResume(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	g := newGuild()
	sb := e.createExpired(t, "expired-resumed", g)
	e.runStoppingBefore(t, StepRemoveMappings)
	if _, reason, err := e.m.TeardownDue(ctx, sb.ID, e.clock.Now(), e.clock.Now()); err != nil || reason != controlplane.ReasonDestroyRequested {
		t.Fatalf("due: %q %v", reason, err)
	}
	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil || len(rep.Destroyed) != 1 {
		t.Fatalf("resume: %+v %v", rep, err)
	}
	got, _ := e.m.Get(ctx, sb.ID)
	rec, _ := ParseRecord(got.Teardown)
	if rec.MarkDestroying.Reason != string(controlplane.ReasonExpired) || rec.MarkDestroyed.Reason != string(controlplane.ReasonExpired) {
		t.Fatalf("record %s", got.Teardown)
	}
	var parked, transition string
	if err := e.pool.QueryRow(ctx, `SELECT reason FROM sandbox_control.parked_guilds WHERE guild_id = $1`, g).Scan(&parked); err != nil {
		t.Fatal(err)
	}
	if err := e.pool.QueryRow(ctx, `SELECT details->>'reason' FROM sandbox_control.audit_log
		WHERE sandbox_id = $1 AND action = $2 AND details->>'to' = 'destroyed'`, sb.ID, controlplane.ActionTransition).Scan(&transition); err != nil {
		t.Fatal(err)
	}
	if parked != string(controlplane.ReasonExpired) || transition != string(controlplane.ReasonExpired) {
		t.Fatalf("parked for %q, destroyed for %q", parked, transition)
	}
}

// The control plane's locks are rows of sandbox_control.locks, its teardown claims and
// schema_migrations: tables no sandbox's role has any right on. It used advisory locks before,
// and pg_advisory_lock is PUBLIC's: a sandbox's own session could take any key, and needed
// no secret to name them (pg_locks shows every key held to every role, pg_namespace gives the
// other sandboxes' ids, hashtext is PUBLIC's). Holding them kept other owners' sandboxes from
// being torn down, every creation waiting, and the migrate step of a deployment with them.
//
// Here a sandbox's worker holds every key the control plane used, and tries its row locks:
// another owner destroys and creates, and a deployment migrates, as if it did not exist.
func TestASandboxCannotHoldTheControlPlanesLocks(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := t.Context()
	const bob = "arn:aws:iam::123456789012:user/bob"
	const carol = "arn:aws:iam::123456789012:user/carol"
	hostile := e.create(t, "hostile", time.Hour)
	victim, err := e.m.Create(ctx, bob, controlplane.CreateInput{Name: "victim", Owner: bob, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.dropAtEnd(t, victim.ID)

	// The hostile sandbox's worker, with the credentials connect hands out.
	creds, err := e.p.RotateCredentials(ctx, hostile.ID, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	worker, err := testenv.ConnectAs(t, e.workerURL, sandbox.RoleName(hostile.ID), creds.DatabasePassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		// The teardown lock of every other sandbox the catalog names ("sbtd", hashtext(id)).
		`SELECT pg_catalog.count(pg_catalog.pg_advisory_lock(1935832164, pg_catalog.hashtext(pg_catalog.substr(nspname, 4))))
		 FROM pg_catalog.pg_namespace WHERE nspname LIKE 'sb\_%' AND nspname <> current_user`,
		// The lock on the database's ACL that every creation and every role drop took.
		`SELECT pg_catalog.pg_advisory_lock(8314340234605325312)`,
		// Carol's quota lock ("sbq", hashtext(owner)).
		`SELECT pg_catalog.pg_advisory_lock(1935831296, pg_catalog.hashtext('` + carol + `'))`,
		// The migration lock ("sbxmigr").
		`SELECT pg_catalog.pg_advisory_lock(8314340273394512384)`,
	} {
		if _, err := worker.Exec(ctx, sql); err != nil {
			t.Fatalf("as the sandbox role: %s: %v", sql, err)
		}
	}
	// The locks of today are out of its reach.
	for _, sql := range []string{
		`SELECT name FROM sandbox_control.locks FOR UPDATE`,
		`LOCK TABLE sandbox_control.database_acl_lock IN EXCLUSIVE MODE`,
		`LOCK TABLE sandbox_control.schema_migrations IN SHARE ROW EXCLUSIVE MODE`,
		`SELECT sandbox_id FROM sandbox_control.teardown_claims FOR UPDATE`,
	} {
		var pgErr *pgconn.PgError
		tx, err := worker.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, sql); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("as the sandbox role: %s: %v, want permission denied (42501)", sql, err)
		}
		_ = tx.Rollback(ctx)
	}

	// Each of these would wait for the worker's locks for as long as it held them.
	bounded, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()

	// Bob destroys his sandbox: it is torn down, its role and worker credentials gone.
	after, err := e.s.Destroy(bounded, bob, victim.ID)
	if err != nil || after == nil || after.Status != sandbox.StatusDestroyed {
		t.Errorf("bob's destroy while another owner's sandbox holds the old locks: %+v, %v; want destroyed", after, err)
	}
	if res, err := e.p.Inspect(ctx, victim.ID); err != nil || res.RoleExists {
		t.Errorf("bob's sandbox's role still exists after his destroy (%v)", err)
	}

	// Carol creates a sandbox.
	sb, err := e.m.Create(bounded, carol, controlplane.CreateInput{Name: "carols", Owner: carol, TTL: time.Hour})
	if sb != nil {
		e.dropAtEnd(t, sb.ID)
	}
	if err != nil || sb.Status != sandbox.StatusRunning {
		t.Errorf("carol's create while another owner's sandbox holds the old locks: %+v, %v", sb, err)
	}

	// A deployment's migrate step.
	if _, err := controlplane.MigrateStep(bounded, e.pool, nil, controlplane.MigrateRequest{Migrate: true}); err != nil {
		t.Errorf("the migrate step while a sandbox holds the old migration lock: %v", err)
	}
}
