package cleanup

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// The primary of an expired sandbox's keys becomes unreachable just before a step of its
// teardown that needs it: the step fails and is recorded (the run reports it, the sandbox
// stays destroying with the failure), and the next run, after the replica took over,
// resumes at that step and completes the teardown: keys gone from the new primary, the ACL
// user gone from every node, the sandbox destroyed, each step recorded once.
func TestFailoverDuringTeardown(t *testing.T) {
	// Asleep past the whole first run (every call that reaches the sleeper waits out the
	// client's 2 s ReadTimeout) and the failover: a call that reached the woken node would
	// make the step's outcome a matter of timing.
	const asleep = 12 * time.Second
	for _, step := range []Step{StepDeleteRedisUser, StepDeleteKeys} {
		t.Run(string(step), func(t *testing.T) {
			e := setup(t, envConfig{redis: testenv.ProductionRedis})
			cluster := testenv.FailoverCluster(t)
			ctx := context.Background()
			target := e.createExpired(t, "failover-target", newGuild())
			e.seed(t, target, 50)
			victim := cluster.PrimaryOf(keys.EventStream(target.ID))
			user := e.p.RedisUserName(target.ID)
			if with := cluster.NodesWithUser(user); len(with) != len(cluster.Addrs()) {
				t.Fatalf("ACL user %s on %v only, want every node", user, with)
			}

			var hooked time.Time
			e.s.inject = func(_ context.Context, point string, s Step, id string) error {
				if point == "before" && s == step && id == target.ID {
					cluster.Unreachable(victim, asleep)
					hooked = time.Now()
				}
				return nil
			}
			rep, err := e.s.Run(ctx, RunOptions{})
			e.s.inject = nil
			if err != nil { // the orphan pass scans every primary, the sleeper included
				t.Logf("the first run's own problems, the node still asleep: %v", err)
			}
			t.Logf("first run %s after %s went unreachable: %d failed", time.Since(hooked).Round(time.Millisecond), victim, len(rep.Failed))
			if hooked.IsZero() {
				t.Fatalf("the run never reached %s: %+v", step, rep)
			}
			if len(rep.Failed) != 1 || rep.Failed[0].SandboxID != target.ID || rep.Failed[0].Step != step || len(rep.Destroyed) != 0 {
				t.Fatalf("first run: want %s failed at %s, got %+v", target.ID, step, rep)
			}
			sb, err := e.m.Get(ctx, target.ID)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := ParseRecord(sb.Teardown)
			if err != nil {
				t.Fatal(err)
			}
			if sb.Status != sandbox.StatusDestroying || sb.CleanupAttempts != 1 || sb.LastError == "" ||
				rec.LastFailure == nil || rec.LastFailure.Step != step || rec.Next(sb.Status) != step {
				t.Fatalf("failure not recorded: status %s, attempts %d, last error %q, record %s",
					sb.Status, sb.CleanupAttempts, sb.LastError, sb.Teardown)
			}
			t.Logf("recorded failure: %s", sb.LastError)

			promoted := cluster.WaitPromoted(victim, keys.EventStream(target.ID))
			cluster.WaitHealthy() // the sleeper is back, a replica of promoted
			if role := cluster.Role(victim); role != "slave" {
				t.Fatalf("%s woke up as %s, want a replica of %s", victim, role, promoted)
			}

			rep, err = e.s.Run(ctx, RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Failed) != 0 || !slices.Contains(rep.Destroyed, target.ID) {
				t.Fatalf("second run: %+v", rep)
			}
			e.assertGone(t, target.ID, target.Guilds)
			if with := cluster.NodesWithUser(user); len(with) != 0 {
				t.Errorf("ACL user %s survived on %v", user, with)
			}
			e.assertTornDownOnce(t, target.ID)
			c := e.auditCounts(t, target.ID)
			if c["step:"+string(StepDeleteRedisUser)] != 1 || c[controlplane.ActionTeardownFailed] != 1 {
				t.Errorf("audit: want %s once and one failure, got %v", StepDeleteRedisUser, c)
			}
		})
	}
}
