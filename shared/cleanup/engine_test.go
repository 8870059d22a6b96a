package cleanup

import (
	"context"
	"maps"
	"testing"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// A run's Redis commands do not grow with its sandboxes: the route publication, the ACL users'
// deletion and the keyspace pass are done once for the batch. Runs over 2 and over 8 expired
// sandboxes (one guild and one cached route each, the same small keyspace) cost the very same
// commands, and each sandbox's record still counts its own cache entry and user.
func TestRunRedisCommandsDoNotGrowWithTheSandboxes(t *testing.T) {
	t.Parallel()
	commands := func(t *testing.T, n int) map[string]int {
		e := setup(t)
		ctx := context.Background()
		sbs := make([]*sandbox.Sandbox, n)
		for i := range sbs {
			sbs[i] = e.createExpired(t, "batch-"+string(rune('a'+i)), newGuild())
			e.seed(t, sbs[i], 16/n-1)
		}
		hook := newLatencyHook()
		e.rdb.AddHook(hook)
		rep, err := e.s.Run(ctx, RunOptions{})
		if err != nil || len(rep.Destroyed) != n {
			t.Fatalf("run: %+v %v", rep, err)
		}
		hook.mu.Lock()
		calls := maps.Clone(hook.calls) // before the checks below add theirs
		hook.mu.Unlock()
		for _, sb := range sbs {
			e.assertGone(t, sb.ID, sb.Guilds)
			e.assertTornDownOnce(t, sb.ID)
			got, _ := e.m.Get(ctx, sb.ID)
			rec, _ := ParseRecord(got.Teardown)
			if rec.InvalidateCache.Invalidated != 1 || rec.DeleteRedisUser.Deleted != len(testenv.RedisNodes(t, e.rdb)) || rec.DeleteKeys.Unlinked != int64(16/n) {
				t.Errorf("sandbox %s: record %s", sb.ID, got.Teardown)
			}
		}
		// A script runs as EVALSHA, or as EVAL the first time the server sees it.
		calls["EVALSHA"] += calls["EVAL"]
		delete(calls, "EVAL")
		return calls
	}
	few, many := commands(t, 2), commands(t, 8)
	if !maps.Equal(few, many) {
		t.Fatalf("Redis commands by name: %v for 2 sandboxes, %v for 8", few, many)
	}
	t.Logf("Redis commands of a run over 2 or 8 sandboxes: %v", few)
}
