package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/gateway"
	"github.com/botplatform/discord-sandboxes/shared/keys"
)

// errStreamGone is an append to a stream that does not exist: the stream is created when the
// sandbox is provisioned and deleted on teardown, so the sandbox is gone.
var errStreamGone = errors.New("sandbox stream does not exist")

// errStreamUnusable is an append the sandbox's own code made impossible: its stream's key
// holds another type (its user deleted the stream and wrote a string there), or the stream's
// last ID is the largest possible (its user added an entry with that ID). Nobody but the
// router and the sandbox's user writes that key, so retrying cannot help: a retried event
// would go round the ingress queue into its dead-letter queue, and one sandbox could keep
// the operators' routing alarms firing. Such events are dropped, like those of a stream
// that is gone, and the sandbox's health check says why.
var errStreamUnusable = errors.New("the sandbox's own code made its stream take no entry")

// unusableStream reports whether an XADD's error is one errStreamUnusable covers.
func unusableStream(err error) bool {
	return redis.HasErrorPrefix(err, "WRONGTYPE") ||
		redis.HasErrorPrefix(err, "The stream has exhausted the last possible ID")
}

// streamEntry is one event bound for a sandbox stream.
type streamEntry struct {
	sandboxID string
	values    []string
}

// newStreamEntry builds the entry fields of one event (keys.StreamField*, the contract with
// workers); receivedAt is in Unix milliseconds.
func newStreamEntry(sandboxID string, m *Message, d gateway.Dispatch, receivedAt int64) streamEntry {
	values := make([]string, 0, 14)
	values = append(values,
		keys.StreamFieldType, d.Type,
		keys.StreamFieldPayload, m.Body,
		keys.StreamFieldMessageID, m.ID,
		keys.StreamFieldGuildID, d.GuildID)
	if d.HasSequence {
		values = append(values, keys.StreamFieldSeq, strconv.FormatInt(d.Sequence, 10))
	}
	values = append(values, keys.StreamFieldReceivedAt, strconv.FormatInt(receivedAt, 10))
	if m.GroupID != "" {
		values = append(values, keys.StreamFieldGroupID, m.GroupID)
	}
	return streamEntry{sandboxID: sandboxID, values: values}
}

// streamWriter appends events to sandbox streams, and counts them in each sandbox's usage
// hash (usage.go).
type streamWriter struct {
	rdb     redis.UniversalClient
	maxLen  int64
	timeout time.Duration // of the whole round trip, retries included
	// now stamps the usage hash's last event; nil means time.Now.
	now func() time.Time
	// log receives the counting failures; nil means slog.Default().
	log *slog.Logger
}

// append adds the entries in one pipelined round trip per primary, in order (so batch order
// holds within each stream), with each sandbox's usage count after its entries, and returns
// one result per entry: nil, errStreamGone, errStreamUnusable or the command's error.
// A pipeline does not stop at a failing command: one broken stream fails only its entries.
// Each round trip has w.timeout: when a primary does not answer by then, every entry sent to
// it fails with an error wrapping context.DeadlineExceeded (the appends may still happen: the
// queue delivers those events again, and workers see them twice, as after any retry).
//
// On a cluster the entries go in one pipeline per primary, each with its own deadline and
// results: go-redis splits a cluster pipeline per node anyway, but waits for every node and,
// when one times out, fails every command of the pipeline, those the other primaries
// executed included. One primary that stops answering (until its replica takes over) would
// fail the whole batch, and the queue would deliver the other sandboxes' events twice.
func (w *streamWriter) append(ctx context.Context, entries []streamEntry) []error {
	errs := make([]error, len(entries))
	if len(entries) == 0 {
		return errs
	}
	groups := w.byPrimary(ctx, entries)
	if len(groups) == 1 {
		w.appendGroup(ctx, entries, groups[0], errs)
		return errs
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() { w.appendGroup(ctx, entries, g, errs) }) // each writes its own indexes
	}
	wg.Wait()
	return errs
}

// byPrimary groups the indexes of entries by the primary serving their stream's slot, as the
// cluster client knows it (no round trip); a standalone server, or a cluster whose slots the
// client cannot tell, makes one group.
func (w *streamWriter) byPrimary(ctx context.Context, entries []streamEntry) [][]int {
	all := func() [][]int {
		g := make([]int, len(entries))
		for i := range g {
			g[i] = i
		}
		return [][]int{g}
	}
	cluster, ok := w.rdb.(*redis.ClusterClient)
	if !ok {
		return all()
	}
	group := map[string]int{}     // primary address -> index in groups
	ofSandbox := map[string]int{} // sandbox id -> index in groups
	var groups [][]int
	for i, e := range entries {
		g, ok := ofSandbox[e.sandboxID]
		if !ok {
			node, err := cluster.MasterForKey(ctx, keys.EventStream(e.sandboxID))
			if err != nil { // the pipeline will meet the same error and report it per entry
				return all()
			}
			addr := node.Options().Addr
			if g, ok = group[addr]; !ok {
				g = len(groups)
				group[addr] = g
				groups = append(groups, nil)
			}
			ofSandbox[e.sandboxID] = g
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// appendGroup appends the entries at indexes idx in one pipelined round trip (see append) and
// sets their results in errs.
func (w *streamWriter) appendGroup(ctx context.Context, entries []streamEntry, idx []int, errs []error) {
	group := make([]streamEntry, len(idx))
	for k, i := range idx {
		group[k] = entries[i]
	}
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(group))
	for k, e := range group {
		cmds[k] = pipe.XAdd(ctx, &redis.XAddArgs{
			Stream:     keys.EventStream(e.sandboxID),
			NoMkStream: true,
			MaxLen:     w.maxLen,
			Approx:     true,
			Values:     e.values,
		})
	}
	at := time.Now
	if w.now != nil {
		at = w.now
	}
	atMS := at().UnixMilli()
	counts := usageCounts(ctx, pipe, group, atMS)
	var late error // the deadline's error, when Exec returned past it
	err := withDeadline(ctx, w.timeout, func(ctx context.Context) error {
		_, _ = pipe.Exec(ctx) // errors are per command, read below
		late = ctx.Err()
		return nil
	})
	if err != nil { // abandoned: the commands are not ours to read any more
		err = fmt.Errorf("sandbox stream append: %w", err)
		for _, i := range idx {
			errs[i] = err
		}
		return
	}
	for k, cmd := range cmds {
		err := cmd.Err()
		switch {
		case errors.Is(err, redis.Nil): // NOMKSTREAM on a missing stream replies nil
			err = errStreamGone
		case unusableStream(err):
			err = fmt.Errorf("%w: %w", errStreamUnusable, err)
		case err != nil && late != nil:
			err = fmt.Errorf("sandbox stream append: %w: %w", late, err)
		}
		errs[idx[k]] = err
	}
	log := w.log
	if log == nil {
		log = slog.Default()
	}
	recountUnloaded(ctx, w.rdb, w.timeout, log, counts, atMS)
}
