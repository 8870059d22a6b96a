package routing

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
)

// countEvents adds a batch's events to a sandbox's usage hash (keys.Usage), in the pipeline
// of the batch's stream appends, after them: no round trip of its own. The hash is outside
// the sandbox's namespace, so its code cannot forge it, and in the stream's slot, so a
// cluster serves it with the appends. It counts only while the stream exists: a stream the
// teardown has deleted (or the worker, which owns it) took none of the events, and the hash
// the teardown deleted after it is never written again.
//
// KEYS[1] the usage hash, KEYS[2] the stream; ARGV[1] the events, ARGV[2] when (Unix ms),
// ARGV[3] and ARGV[4] the fields (keys.UsageFieldEvents, keys.UsageFieldLastEventMS).
var countEvents = redis.NewScript(`
if redis.call("EXISTS", KEYS[2]) == 0 then
	return 0
end
redis.call("HINCRBY", KEYS[1], ARGV[3], ARGV[1])
local last = tonumber(redis.call("HGET", KEYS[1], ARGV[4]) or "0")
if tonumber(ARGV[2]) > last then
	redis.call("HSET", KEYS[1], ARGV[4], ARGV[2])
end
return 1`)

// usageCount is one sandbox's countEvents of a batch.
type usageCount struct {
	id     string
	events int
	cmd    *redis.Cmd
}

// usageCounts queues one countEvents per sandbox of entries, in order of first appearance.
func usageCounts(ctx context.Context, pipe redis.Pipeliner, entries []streamEntry, atMS int64) []usageCount {
	index := map[string]int{}
	var counts []usageCount
	for _, e := range entries {
		i, ok := index[e.sandboxID]
		if !ok {
			i = len(counts)
			index[e.sandboxID] = i
			counts = append(counts, usageCount{id: e.sandboxID})
		}
		counts[i].events++
	}
	for i := range counts {
		c := &counts[i]
		c.cmd = countEvents.EvalSha(ctx, pipe, usageKeys(c.id), usageArgs(c.events, atMS)...)
	}
	return counts
}

func usageKeys(id string) []string { return []string{keys.Usage(id), keys.EventStream(id)} }

func usageArgs(n int, atMS int64) []any {
	return []any{strconv.Itoa(n), strconv.FormatInt(atMS, 10), keys.UsageFieldEvents, keys.UsageFieldLastEventMS}
}

// recountUnloaded runs again, with the script's text, the counts the server refused because
// it had lost the script (NOSCRIPT: restarted, failed over, SCRIPT FLUSH): one more round
// trip, for those batches only. Counting failures are logged, never the batch's: the events
// are delivered.
func recountUnloaded(ctx context.Context, rdb redis.UniversalClient, timeout time.Duration, log *slog.Logger, counts []usageCount, atMS int64) {
	var retry []usageCount
	for _, c := range counts {
		switch err := c.cmd.Err(); {
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			retry = append(retry, c)
		case err != nil:
			log.WarnContext(ctx, "counting a sandbox's events failed; they are delivered", logkey.Sandbox, c.id, logkey.Error, err)
		}
	}
	if len(retry) == 0 {
		return
	}
	pipe := rdb.Pipeline()
	for i := range retry {
		retry[i].cmd = countEvents.Eval(ctx, pipe, usageKeys(retry[i].id), usageArgs(retry[i].events, atMS)...)
	}
	if err := withDeadline(ctx, timeout, func(ctx context.Context) error {
		_, _ = pipe.Exec(ctx) // errors are per command, read below
		return nil
	}); err != nil {
		log.WarnContext(ctx, "counting sandboxes' events failed; they are delivered", "sandboxes", len(retry), logkey.Error, err)
		return // abandoned: the commands are not ours to read any more
	}
	for _, c := range retry {
		if err := c.cmd.Err(); err != nil {
			log.WarnContext(ctx, "counting a sandbox's events failed; they are delivered", logkey.Sandbox, c.id, logkey.Error, err)
		}
	}
}
