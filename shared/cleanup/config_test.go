package cleanup

import (
	"strings"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/config"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://x/y", "REDIS_ADDR": "localhost:6379"}
	c, err := LoadConfig(config.MapLookup(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoveOrphans || c.Teardown.StuckCreatingAfter != 30*time.Minute || c.Teardown.OrphanGrace != time.Hour ||
		c.Teardown.DropLockTimeout != 5*time.Second || c.Teardown.ClaimLease != 5*time.Minute || c.DeadlineMargin != 30*time.Second ||
		c.ExpiryWarningWindow != time.Hour || c.ExpiryWarningTopicARN != "" || c.Environment != "dev" {
		t.Fatalf("defaults %+v", c)
	}
	set := map[string]string{"CLEANUP_ORPHANED": "true", "CLEANUP_STUCK_CREATING_AFTER": "45m", "CLEANUP_ORPHAN_GRACE": "2h",
		"CLEANUP_DROP_LOCK_TIMEOUT": "2s", "CLEANUP_CLAIM_LEASE": "10m",
		"CLEANUP_DEADLINE_MARGIN": "10s", "EXPIRY_WARNING_WINDOW": "1d", "EXPIRY_WARNING_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:expiry"}
	for k, v := range base {
		set[k] = v
	}
	c, err = LoadConfig(config.MapLookup(set))
	if err != nil {
		t.Fatal(err)
	}
	if !c.RemoveOrphans || c.Teardown.StuckCreatingAfter != 45*time.Minute || c.Teardown.OrphanGrace != 2*time.Hour ||
		c.Teardown.DropLockTimeout != 2*time.Second || c.Teardown.ClaimLease != 10*time.Minute || c.DeadlineMargin != 10*time.Second ||
		c.ExpiryWarningWindow != 24*time.Hour || c.ExpiryWarningTopicARN != "arn:aws:sns:eu-west-1:123456789012:expiry" {
		t.Fatalf("set %+v", c)
	}
	_, err = LoadConfig(config.MapLookup(map[string]string{"CLEANUP_ORPHANED": "maybe", "CLEANUP_STUCK_CREATING_AFTER": "10s",
		"CLEANUP_DROP_LOCK_TIMEOUT": "5m", "CLEANUP_CLAIM_LEASE": "10s", "EXPIRY_WARNING_TOPIC_ARN": "expiry-topic"}))
	for _, want := range []string{"CLEANUP_ORPHANED", "CLEANUP_STUCK_CREATING_AFTER", "CLEANUP_DROP_LOCK_TIMEOUT", "CLEANUP_CLAIM_LEASE",
		"EXPIRY_WARNING_TOPIC_ARN", "DATABASE_URL", "REDIS_ADDR"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
