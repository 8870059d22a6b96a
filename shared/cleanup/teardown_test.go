package cleanup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

func TestRecordKeysAreTheStepNames(t *testing.T) {
	t.Parallel()
	at := time.Now()
	full := Record{StartedAt: &at, MarkDestroying: &MarkStep{}, RemoveMappings: &MappingsStep{}, InvalidateCache: &CacheStep{},
		DeleteRedisUser: &RedisUserStep{}, DeleteKeys: &KeysStep{}, DropDatabase: &DatabaseStep{}, MarkDestroyed: &MarkStep{}}
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range Steps() {
		if _, ok := doc[string(s)]; !ok {
			t.Errorf("step %s has no key of its name in the record: %s", s, b)
		}
	}
	if len(doc) != len(Steps())+1 {
		t.Errorf("record keys %s", b)
	}
	if got := full.Next(sandbox.StatusDestroying); got != StepMarkDestroyed {
		t.Errorf("Next with status destroying = %q: the status decides the last step", got)
	}
	if got := (Record{}).Next(sandbox.StatusRunning); got != StepMarkDestroying {
		t.Errorf("Next of an empty record = %q", got)
	}
}

// TestFaultInjectionBeforeAndAfterEveryStep fails the teardown of one sandbox before each
// step and after each step's effect (before it is recorded), then checks that the next clean
// run leaves nothing of it, that its audit trail shows each step once, and that another
// sandbox's resources are untouched throughout.
func TestFaultInjectionBeforeAndAfterEveryStep(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	other := e.create(t, "bystander", 168*time.Hour, newGuild(), newGuild())
	e.seed(t, other, 5)
	otherBefore := e.state(t, other.ID, other.Guilds)

	n := 0
	for _, step := range Steps() {
		for _, point := range []string{"before", "after"} {
			t.Run(point+"_"+string(step), func(t *testing.T) {
				n++
				target := e.createExpired(t, fmt.Sprintf("target-%d", n), newGuild(), newGuild())
				e.seed(t, target, 20)
				e.s.inject = func(_ context.Context, p string, s Step, id string) error {
					if p == point && s == step && id == target.ID {
						return errInjected
					}
					return nil
				}
				rep, err := e.s.Run(ctx, RunOptions{})
				e.s.inject = nil
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Failed) != 1 || rep.Failed[0].SandboxID != target.ID || rep.Failed[0].Step != step || rep.Remaining != 1 {
					t.Fatalf("first run: %+v", rep)
				}
				sb, err := e.m.Get(ctx, target.ID)
				if err != nil {
					t.Fatal(err)
				}
				rec, _ := ParseRecord(sb.Teardown)
				if sb.CleanupAttempts != 1 || !strings.Contains(sb.LastError, "injected") || rec.LastFailure == nil || rec.LastFailure.Step != step {
					t.Fatalf("failure not recorded: attempts %d, last error %q, record %s", sb.CleanupAttempts, sb.LastError, sb.Teardown)
				}
				if want := rec.Next(sb.Status); point == "before" && want != step {
					t.Fatalf("after a failure before %s the record resumes at %s", step, want)
				}
				if c := e.auditCounts(t, target.ID); c[controlplane.ActionTeardownFailed] != 1 {
					t.Fatalf("failure audit entries: %v", c)
				}

				rep, err = e.s.Run(ctx, RunOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Failed) != 0 {
					t.Fatalf("second run: %+v", rep)
				}
				if destroyedFirst := point == "after" && step == StepMarkDestroyed; destroyedFirst != !slices.Contains(rep.Destroyed, target.ID) {
					t.Fatalf("second run destroyed %v", rep.Destroyed)
				}
				e.assertGone(t, target.ID, target.Guilds)
				e.assertTornDownOnce(t, target.ID)
				if got := e.state(t, other.ID, other.Guilds); !reflect.DeepEqual(got, otherBefore) {
					t.Fatalf("bystander touched:\n got %+v\nwant %+v", got, otherBefore)
				}
			})
		}
	}
}

// TestCacheInvalidatedFromRecordAfterCrash stops a teardown right after the mappings were
// removed: the guilds are only in the record now, and the next run must still invalidate
// their cache entries (which a router could have written back meanwhile).
func TestCacheInvalidatedFromRecordAfterCrash(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	g1, g2 := newGuild(), newGuild()
	target := e.createExpired(t, "crashy", g1, g2)
	e.seed(t, target, 1)
	e.runStoppingBefore(t, StepInvalidateCache)
	st := e.state(t, target.ID, target.Guilds)
	if len(st.Mappings) != 0 || len(st.Cache) != 0 {
		t.Fatalf("after the crash: %+v", st)
	}
	// A router writes the destroying routes back meanwhile (it read the generation after the
	// transition was published): only the record still knows these guilds.
	if err := routecache.New(e.control, 0, 0).SetCurrent(ctx, []sandbox.Route{
		{GuildID: g1, SandboxID: target.ID, Status: sandbox.StatusDestroying, ExpiresAt: target.ExpiresAt},
		{GuildID: g2, SandboxID: target.ID, Status: sandbox.StatusDestroying, ExpiresAt: target.ExpiresAt},
	}); err != nil {
		t.Fatal(err)
	}
	sb, _ := e.m.Get(ctx, target.ID)
	rec, _ := ParseRecord(sb.Teardown)
	if rec.RemoveMappings == nil || !slices.Equal(rec.RemoveMappings.Guilds, []string{g1, g2}) || rec.RemoveMappings.Removed != 2 {
		t.Fatalf("record %s", sb.Teardown)
	}
	if _, err := e.s.Run(ctx, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	e.assertGone(t, target.ID, target.Guilds)
	sb, _ = e.m.Get(ctx, target.ID)
	rec, _ = ParseRecord(sb.Teardown)
	if rec.InvalidateCache == nil || rec.InvalidateCache.Invalidated != 2 {
		t.Fatalf("record %s", sb.Teardown)
	}
}

func TestKeysOfSandboxWithSharedIDPrefixSurvive(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	target := e.createExpired(t, "short-id")
	e.seed(t, target, 3)
	// Namespaces whose ids extend, or are cut from, the target's id.
	longer, shorter := target.ID+"x", target.ID[:12]
	survivors := []string{keys.Namespace(longer) + "k", keys.EventStream(longer), keys.Namespace(shorter) + "k",
		"sandbox:{" + target.ID + "}x", "sandbox:" + target.ID + ":k"}
	for _, k := range survivors {
		if err := e.rdb.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil || len(rep.Destroyed) != 1 {
		t.Fatalf("run: %+v %v", rep, err)
	}
	e.assertGone(t, target.ID, nil)
	for _, k := range survivors {
		if n, err := e.rdb.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("key %s of another sandbox deleted (%v)", k, err)
		}
	}
	sb, _ := e.m.Get(ctx, target.ID)
	rec, _ := ParseRecord(sb.Teardown)
	if rec.DeleteKeys.Unlinked != 4 || rec.DeleteKeys.Primaries != len(testenv.RedisPrimaries(t, e.rdb)) { // 3 keys and the stream
		t.Errorf("keys step %+v", rec.DeleteKeys)
	}
}

// blockingProvisioner provisions for real, then waits until released, so a creation can be
// caught in progress; or fails after provisioning when fail is set.
type blockingProvisioner struct {
	real    *provision.Provisioner
	started chan string
	release chan struct{}
	fail    bool
}

func (b *blockingProvisioner) Provision(ctx context.Context, id string) error {
	if err := b.real.Provision(ctx, id); err != nil {
		return err
	}
	if b.fail {
		return errors.New("provisioning failed after the schema was created")
	}
	b.started <- id
	<-b.release
	return nil
}

func TestStuckCreatingFailedAndDestroyingAreFinished(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	limits := e.m.Limits()

	// A creation that hangs after provisioning, then one that fails after provisioning.
	block := &blockingProvisioner{real: e.p, started: make(chan string, 2), release: make(chan struct{})}
	slow := controlplane.NewManager(e.pool, controlplane.Options{Limits: limits, Provisioner: block, Now: e.clock.Now, Logger: quiet})
	created := make(chan error, 2)
	go func() {
		_, err := slow.Create(ctx, owner, controlplane.CreateInput{Name: "stuck", Owner: owner})
		created <- err
	}()
	stuckID := <-block.started
	e.dropAtEnd(t, stuckID)

	failing := controlplane.NewManager(e.pool, controlplane.Options{Limits: limits, Now: e.clock.Now, Logger: quiet,
		Provisioner: &blockingProvisioner{real: e.p, fail: true}})
	broken := newGuild()
	testenv.RegisterTestGuilds(t, e.pool, broken)
	failed, err := failing.Create(ctx, owner, controlplane.CreateInput{Name: "broken", Owner: owner, Guilds: []string{broken}})
	if !errors.Is(err, sandbox.ErrProvisioningFailed) {
		t.Fatalf("want a failed sandbox, got %v", err)
	}
	e.dropAtEnd(t, failed.ID)

	requested := e.create(t, "requested", 24*time.Hour, newGuild())
	e.seed(t, requested, 2)
	if _, changed, err := e.m.RequestDestroy(ctx, owner, requested.ID); err != nil || !changed {
		t.Fatal(err)
	}

	// Past the stuck limit; then a creation that is only just starting.
	e.clock.Add(config.DefaultStuckCreatingAfter + time.Minute)
	go func() {
		_, err := slow.Create(ctx, owner, controlplane.CreateInput{Name: "young", Owner: owner})
		created <- err
	}()
	youngID := <-block.started
	e.dropAtEnd(t, youngID)

	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.Destroyed)
	want := []string{stuckID, failed.ID, requested.ID}
	slices.Sort(want)
	if !slices.Equal(rep.Destroyed, want) || len(rep.Failed) != 0 {
		t.Fatalf("destroyed %v, want %v (report %+v)", rep.Destroyed, want, rep)
	}
	for _, sb := range []*sandbox.Sandbox{{ID: stuckID}, failed, requested} {
		e.assertGone(t, sb.ID, sb.Guilds)
		e.assertTornDownOnce(t, sb.ID)
	}
	for _, id := range []string{stuckID, failed.ID, requested.ID} {
		sb, _ := e.m.Get(ctx, id)
		rec, _ := ParseRecord(sb.Teardown)
		// The requested one was running when its owner asked for the destroy.
		wantFrom := map[string]sandbox.Status{stuckID: sandbox.StatusCreating, failed.ID: sandbox.StatusFailed, requested.ID: sandbox.StatusRunning}[id]
		if rec.MarkDestroying.From != wantFrom {
			t.Errorf("%s: marked destroying from %s, want %s", id, rec.MarkDestroying.From, wantFrom)
		}
	}

	// The young creation was left alone and finishes; the reclaimed one cannot come back.
	if st := e.state(t, youngID, nil); st.Status != sandbox.StatusCreating || !st.Schema {
		t.Fatalf("young creation touched: %+v", st)
	}
	close(block.release)
	for range 2 {
		err := <-created
		if err != nil && !errors.Is(err, sandbox.ErrInvalidTransition) {
			t.Fatalf("create: %v", err)
		}
	}
	if sb, _ := e.m.Get(ctx, youngID); sb.Status != sandbox.StatusRunning {
		t.Fatalf("young creation ended %s", sb.Status)
	}
	if sb, _ := e.m.Get(ctx, stuckID); sb.Status != sandbox.StatusDestroyed {
		t.Fatalf("reclaimed creation ended %s", sb.Status)
	}
}

// smallTemplate is a one-table template schema, so that 200 sandboxes provision quickly.
func smallTemplate(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `CREATE SCHEMA tmpl_small;
		CREATE TABLE tmpl_small.notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
}

// createMany creates n expired sandboxes in parallel.
func (e *env) createMany(t testing.TB, n, parallel int) []*sandbox.Sandbox {
	t.Helper()
	limits := e.m.Limits()
	limits.OwnerQuota = max(limits.OwnerQuota, n)
	limits.DBReservedConnections = -1
	m := controlplane.NewManager(e.pool, controlplane.Options{Limits: limits, Provisioner: e.p,
		Now: e.clock.Now, Logger: quiet})
	now := e.clock.Now()
	e.clock.Set(now.Add(-2 * time.Hour))
	defer e.clock.Set(now)
	out := make([]*sandbox.Sandbox, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	guilds := make([]string, n)
	for i := range guilds {
		guilds[i] = newGuild()
	}
	testenv.RegisterTestGuilds(t, e.pool, guilds...)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = m.Create(context.Background(), owner,
				controlplane.CreateInput{Name: fmt.Sprintf("many-%04d", i), Owner: owner, TTL: time.Hour, Guilds: []string{guilds[i]}})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("create: %v (cause: %v)", err, controlplane.ProvisioningCause(err))
		}
	}
	for _, sb := range out {
		e.dropAtEnd(t, sb.ID)
	}
	return out
}

func TestConcurrentRunsTearEachSandboxDownOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, envConfig{template: "tmpl_small", prepare: smallTemplate, maxConns: 16})
	ctx := context.Background()
	sbs := e.createMany(t, 200, 8)
	for _, sb := range sbs {
		e.seed(t, sb, 2)
	}

	const runs = 8
	reports := make([]RunReport, runs)
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() { reports[i], errs[i] = e.s.Run(ctx, RunOptions{}) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range reports {
		if len(r.Failed) != 0 {
			t.Fatalf("failures: %+v", r.Failed)
		}
		for _, id := range r.Destroyed {
			seen[id]++
		}
	}
	for _, sb := range sbs {
		if seen[sb.ID] != 1 {
			t.Errorf("sandbox %s reported destroyed by %d runs", sb.ID, seen[sb.ID])
		}
	}
	if len(seen) != len(sbs) {
		t.Fatalf("%d sandboxes destroyed, want %d", len(seen), len(sbs))
	}
	var steps, transitions int
	if err := e.pool.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE action = $1),
		count(*) FILTER (WHERE action = $2 AND details->>'to' IN ('destroying', 'destroyed'))
		FROM sandbox_control.audit_log`, controlplane.ActionTeardownStep, controlplane.ActionTransition).Scan(&steps, &transitions); err != nil {
		t.Fatal(err)
	}
	// One entry per step between the two transitions.
	if steps != 5*len(sbs) || transitions != 2*len(sbs) {
		t.Fatalf("audit: %d step entries (want %d), %d transitions (want %d)", steps, 5*len(sbs), transitions, 2*len(sbs))
	}
	for _, sb := range sbs {
		e.assertTornDownOnce(t, sb.ID)
	}
	var left int
	if err := e.workers.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'sb\_%'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d sandbox schemas left (%v)", left, err)
	}
	left2, err := testenv.RedisKeys(t, testenv.RedisAdminOf(t, e.control), "*")
	if e.rdb != e.control && err == nil {
		var more []string
		more, err = testenv.RedisKeys(t, testenv.RedisAdminOf(t, e.rdb), "*")
		left2 = append(left2, more...)
	}
	if err != nil || len(left2) != 1 || left2[0] != keys.RouteGeneration {
		t.Fatalf("Redis keys left: %v (%v); want only the route generation", left2, err)
	}
}

func TestDeadlineLeavesSandboxesForTheNextRun(t *testing.T) {
	t.Parallel()
	const margin = 5 * time.Second
	e := setup(t, envConfig{options: func(o *Options) { o.Concurrency = 1; o.DeadlineMargin = margin }})
	for i := range 4 {
		e.createExpired(t, fmt.Sprintf("due-%d", i))
	}

	// Already within the margin: nothing is taken, and the orphans are skipped too.
	short, cancel := context.WithTimeout(context.Background(), margin/2)
	rep, err := e.s.Run(short, RunOptions{})
	cancel()
	if err != nil || rep.CandidateCount != 4 || rep.LeftAtDeadline != 4 || rep.Remaining != 4 || len(rep.Destroyed) != 0 ||
		rep.Orphans != nil || !rep.OrphansSkipped {
		t.Fatalf("report %+v %v", rep, err)
	}

	// The first teardown runs into the margin: the rest waits.
	ctx, cancel := context.WithTimeout(context.Background(), margin+3*time.Second)
	defer cancel()
	e.s.inject = func(ctx context.Context, point string, step Step, _ string) error {
		if point == "after" && step == StepMarkDestroyed {
			deadline, _ := ctx.Deadline()
			time.Sleep(time.Until(deadline) - margin + 100*time.Millisecond)
		}
		return nil
	}
	rep, err = e.s.Run(ctx, RunOptions{})
	e.s.inject = nil
	if err != nil || len(rep.Destroyed) != 1 || rep.LeftAtDeadline != 3 || rep.Remaining != 3 || !rep.OrphansSkipped {
		t.Fatalf("report %+v", rep)
	}

	rep, err = e.s.Run(context.Background(), RunOptions{})
	if err != nil || len(rep.Destroyed) != 3 || rep.Remaining != 0 {
		t.Fatalf("next run: %+v %v", rep, err)
	}
}

func TestDestroyTearsDownNowAndDefersToAHolder(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	sb := e.create(t, "on-demand", 24*time.Hour, newGuild())
	if _, _, err := e.m.RequestDestroy(ctx, owner, sb.ID); err != nil {
		t.Fatal(err)
	}
	// After the request invalidated the cache, a router cached the route again: the cache step,
	// where the teardown publishes its changes, counts that entry.
	e.seed(t, sb, 3)

	// Another run holds its claim: Destroy answers at once with the current state.
	held, err := e.m.ClaimTeardown(ctx, sb.ID, "another-run", time.Hour)
	if err != nil || held == nil {
		t.Fatalf("claim: %+v %v", held, err)
	}
	got, err := e.s.Destroy(ctx, "arn:aws:iam::123456789012:user/bob", sb.ID)
	if err != nil || got.Status != sandbox.StatusDestroying {
		t.Fatalf("held: %+v %v", got, err)
	}
	if err := e.m.ReleaseTeardownClaim(ctx, held); err != nil {
		t.Fatal(err)
	}

	got, err = e.s.Destroy(ctx, "arn:aws:iam::123456789012:user/bob", sb.ID)
	if err != nil || got.Status != sandbox.StatusDestroyed {
		t.Fatalf("destroy: %+v %v", got, err)
	}
	rec, err := ParseRecord(got.Teardown)
	if err != nil || rec.MarkDestroyed == nil || rec.MarkDestroyed.Actor != "arn:aws:iam::123456789012:user/bob" ||
		rec.RemoveMappings.Removed != 1 || rec.InvalidateCache.Invalidated != 1 || rec.DeleteKeys.Unlinked != 4 ||
		!rec.DropDatabase.SchemaExisted || !rec.DropDatabase.RoleExisted ||
		rec.MarkDestroying.From != sandbox.StatusRunning { // where it came from, not "destroying"
		t.Fatalf("record %s", got.Teardown)
	}
	e.assertGone(t, sb.ID, sb.Guilds)
	e.assertTornDownOnce(t, sb.ID)

	// Destroy requests the destroy itself: the request is audited, and the publication of its
	// route changes happens in the cache step, which counts the entry it removes.
	direct := e.create(t, "on-demand-direct", 24*time.Hour, newGuild())
	e.seed(t, direct, 1)
	got, err = e.s.Destroy(ctx, "arn:aws:iam::123456789012:user/bob", direct.ID)
	if err != nil || got.Status != sandbox.StatusDestroyed {
		t.Fatalf("direct destroy: %+v %v", got, err)
	}
	rec, err = ParseRecord(got.Teardown)
	if err != nil || rec.MarkDestroying.From != sandbox.StatusRunning || rec.InvalidateCache.Invalidated != 1 ||
		rec.MarkDestroying.Reason != string(controlplane.ReasonDestroyRequested) {
		t.Fatalf("direct destroy's record %s", got.Teardown)
	}
	if n := e.auditCounts(t, direct.ID)[controlplane.ActionDestroyRequested]; n != 1 {
		t.Fatalf("%d destroy requests audited, want 1", n)
	}
	e.assertGone(t, direct.ID, direct.Guilds)
	e.assertTornDownOnce(t, direct.ID)

	// A failed step: the sandbox comes back still destroying, with the recorded StepError.
	failing := e.create(t, "on-demand-fail", 24*time.Hour)
	if _, _, err := e.m.RequestDestroy(ctx, owner, failing.ID); err != nil {
		t.Fatal(err)
	}
	e.s.inject = func(_ context.Context, point string, step Step, _ string) error {
		if point == "before" && step == StepDropDatabase {
			return errors.New("injected drop failure")
		}
		return nil
	}
	stopped, err := e.s.Destroy(ctx, "x", failing.ID)
	e.s.inject = nil
	var stepErr *StepError
	if !errors.As(err, &stepErr) || !stepErr.Recorded || stepErr.Step != StepDropDatabase ||
		stopped == nil || stopped.Status != sandbox.StatusDestroying || stopped.LastError == "" {
		t.Fatalf("failed step: %+v %v", stopped, err)
	}
	if resumed, err := e.s.Destroy(ctx, "x", failing.ID); err != nil || resumed.Status != sandbox.StatusDestroyed {
		t.Fatalf("resume: %+v %v", resumed, err)
	}

	// Idempotent; a creation in progress and an unknown id are refused.
	if again, err := e.s.Destroy(ctx, "x", sb.ID); err != nil || again.Status != sandbox.StatusDestroyed {
		t.Fatalf("again: %v", err)
	}
	if _, err := e.s.Destroy(ctx, "x", sandbox.NewID()); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO sandbox_control.sandboxes (id, name, owner, status, schema_name, db_role, created_at, updated_at, expires_at)
		VALUES ('creatingnow0001', 'creating-now', 'o', 'creating', 'sb_creatingnow0001', 'sb_creatingnow0001', $1, $1, $2)`,
		e.clock.Now(), e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Its creator is alive: it holds the creation lease.
	holder, err := pgx.Connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Close(ctx) }()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, controlplane.CreationLockClass, "creatingnow0001"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Destroy(ctx, "x", "creatingnow0001"); !errors.Is(err, sandbox.ErrInvalidTransition) {
		t.Fatalf("creating: %v", err)
	}
}

func TestBusySchemaFailsTheStepAndIsRetried(t *testing.T) {
	t.Parallel()
	e := setup(t, envConfig{options: func(o *Options) { o.DropLockTimeout = 200 * time.Millisecond }})
	ctx := context.Background()
	sb := e.createExpired(t, "busy")
	tx, err := e.workers.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `LOCK TABLE `+sandbox.SchemaName(sb.ID)+`.members IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil || len(rep.Failed) != 1 || rep.Failed[0].Step != StepDropDatabase || !strings.Contains(rep.Failed[0].Error, "lock timeout") {
		t.Fatalf("busy: %+v %v", rep, err)
	}
	_ = tx.Rollback(ctx)
	rep, err = e.s.Run(ctx, RunOptions{})
	if err != nil || len(rep.Destroyed) != 1 {
		t.Fatalf("retry: %+v %v", rep, err)
	}
	e.assertGone(t, sb.ID, nil)
	got, _ := e.m.Get(ctx, sb.ID)
	if got.CleanupAttempts != 1 {
		t.Fatalf("attempts %d", got.CleanupAttempts)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	sb := e.createExpired(t, "dry", newGuild())
	e.seed(t, sb, 2)
	e.create(t, "soon", 30*time.Minute)
	before := e.state(t, sb.ID, sb.Guilds)
	rep, err := e.s.Run(ctx, RunOptions{DryRun: true, RemoveOrphans: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Candidates) != 1 || rep.Candidates[0].ID != sb.ID || rep.Candidates[0].Reason != string(controlplane.ReasonExpired) ||
		len(rep.ExpiryWarnings.Due) != 1 || rep.ExpiryWarnings.Sent != 0 || len(rep.Destroyed) != 0 || rep.OrphansRemoved != nil {
		t.Fatalf("dry run report %+v", rep)
	}
	if got := e.state(t, sb.ID, sb.Guilds); !reflect.DeepEqual(got, before) || len(e.pub.Sent()) != 0 {
		t.Fatalf("dry run changed things: %+v", got)
	}
	var audits, sightings int
	_ = e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sandbox_control.audit_log WHERE action NOT IN ('sandbox.create', 'sandbox.running')),
		(SELECT count(*) FROM sandbox_control.orphan_sightings)`).Scan(&audits, &sightings)
	if audits != 0 || sightings != 0 {
		t.Fatalf("dry run wrote %d audit entries, %d sightings", audits, sightings)
	}
}

// A sandbox's code names its keys, and the keyspace passes read every sandbox's names: what
// they read must not grow with them. A key named with 65 MiB made a SCAN reply pass the
// server's output limit (64 MB, scripts/redis-server.conf), which closed the control plane's
// connection: every run failed the delete_keys step of every sandbox in its batch (they stayed
// destroying) and its orphan reconciliation, for as long as the hostile sandbox lived, and its
// own teardown then failed forever. Here the run tears another sandbox down and counts the
// hostile one's keys; then the hostile sandbox's own teardown deletes its long key. (On a
// cluster the name is 4 KiB: testenv.OversizedBytes.)
func TestLongKeyNamesCannotStopTheKeyspacePasses(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	hostile := e.create(t, "long-names", 2*time.Hour)
	// Two, so that their teardowns share the pass over every namespace.
	victims := []*sandbox.Sandbox{e.createExpired(t, "long-names-a"), e.createExpired(t, "long-names-b")}
	for _, v := range victims {
		e.seed(t, v, 3)
	}
	worker, _ := e.worker(t, hostile.ID)
	long := keys.Namespace(hostile.ID) + strings.Repeat("k", testenv.OversizedBytes(65))
	if err := worker.Set(ctx, long, "v", 0).Err(); err != nil {
		t.Fatalf("the sandbox's own user: %v", err)
	}
	t.Cleanup(func() { _ = e.rdb.Unlink(context.Background(), long).Err() })

	rep, err := e.s.Run(ctx, RunOptions{})
	if err != nil || len(rep.Destroyed) != 2 || len(rep.Failed) != 0 {
		t.Fatalf("run beside a key named with 65 MiB: %+v %.300v", rep, err)
	}
	for _, v := range victims {
		e.assertGone(t, v.ID, nil)
	}
	if n, err := e.rdb.Exists(ctx, long).Result(); err != nil || n != 1 {
		t.Fatalf("the hostile sandbox's key went with another's teardown: %d %v", n, err)
	}
	counted, err := e.rdb.HGet(ctx, keys.Usage(hostile.ID), keys.UsageFieldKeys).Result()
	if err != nil || counted != "2" { // its stream and its long key
		t.Errorf("the hostile sandbox's key count: %q %v, want 2", counted, err)
	}

	e.clock.Add(3 * time.Hour)
	rep, err = e.s.Run(ctx, RunOptions{})
	if err != nil || len(rep.Destroyed) != 1 || rep.Destroyed[0] != hostile.ID || len(rep.Failed) != 0 {
		t.Fatalf("the hostile sandbox's own teardown: %+v %.300v", rep, err)
	}
	e.assertGone(t, hostile.ID, nil)
	got, _ := e.m.Get(ctx, hostile.ID)
	if rec, _ := ParseRecord(got.Teardown); rec.DeleteKeys == nil || rec.DeleteKeys.Unlinked != 2 {
		t.Errorf("keys step %+v, want its stream and its long key", rec.DeleteKeys)
	}
}
