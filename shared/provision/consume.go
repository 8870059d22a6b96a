package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
)

// Consumer-group reads of a sandbox's stream, for the API's consume routes (docs/api.md,
// "Consuming through the API"). The stream is the sandbox's own key (keys.EventStream of its
// id), whatever the caller passes; group and consumer names are validated by the caller.
// These never create a stream: a group is created only on a stream that exists (XGROUP
// CREATE without MKSTREAM), so a torn-down sandbox's stream cannot come back.

var (
	// ErrNoStream is a sandbox's stream key that does not exist (torn down, or deleted by
	// the sandbox's own worker), or that was deleted while a read waited.
	ErrNoStream = errors.New("the sandbox's stream does not exist")
	// ErrNoGroup is a consumer group the stream does not have.
	ErrNoGroup = errors.New("the sandbox's stream has no such consumer group")
	// ErrTooManyGroups refuses to create a group on a stream that has MaxGroups already.
	ErrTooManyGroups = errors.New("the sandbox's stream has too many consumer groups")
)

// MaxGroups bounds the consumer groups a stream may have for ReadGroup to create one more.
const MaxGroups = 16

// GroupReadArgs are the arguments of ReadGroup.
type GroupReadArgs struct {
	Group, Consumer string
	// After, when set, reads the consumer's own pending entries after that id; "" reads new
	// entries (">").
	After string
	Count int
	// Wait is how long to block for new entries when there are none; 0 does not block.
	Wait time.Duration
	// Create creates the group at the stream's start when it is missing.
	Create bool
}

// GroupPage is what ReadGroup or ClaimGroup got: entries now pending on the consumer.
type GroupPage struct {
	Key     string
	Entries []StreamEntry
	// Deleted are ids pending on the consumer whose entries the stream no longer holds.
	Deleted []string
	// Created is set when ReadGroup created the group.
	Created bool
	// Next is the XAUTOCLAIM cursor of ClaimGroup ("0-0": the scan is complete).
	Next string
}

// ReadGroup reads with XREADGROUP as the consumer of the group on the sandbox's stream: at
// most Count entries, new ones (blocking up to Wait when there are none) or, with After, the
// consumer's own pending ones after that id. Entries a pending read finds deleted are
// Deleted. A missing group is created when Create is set and the stream has fewer than
// MaxGroups groups.
func (p *Provisioner) ReadGroup(ctx context.Context, id string, a GroupReadArgs) (GroupPage, error) {
	page := GroupPage{Key: keys.EventStream(id)}
	if err := p.checkStream(id, page.Key, "read group of"); err != nil {
		return page, err
	}
	start, block := ">", time.Duration(-1) // -1: no BLOCK argument (0 would block forever)
	if a.After != "" {
		start = a.After
	} else if a.Wait > 0 {
		block = max(a.Wait, time.Millisecond)
	}
	read := func() ([]redis.XStream, error) {
		return p.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: a.Group, Consumer: a.Consumer, Streams: []string{page.Key, start},
			Count: int64(a.Count), Block: block,
		}).Result()
	}
	res, err := read()
	if isNoGroup(err) && a.Create {
		if err := p.createGroup(ctx, page.Key, a.Group); err != nil {
			return page, err
		}
		page.Created = true
		res, err = read()
	}
	switch {
	case errors.Is(err, redis.Nil):
		return page, nil // nothing arrived within Wait
	case err != nil:
		return page, p.groupError(ctx, page.Key, "XREADGROUP", err)
	}
	for _, st := range res {
		page.add(st.Messages)
	}
	return page, nil
}

// add puts msgs on the page: as entries, or as Deleted where the stream no longer holds the
// entry (a pending id read or claimed after its entry was deleted).
func (page *GroupPage) add(msgs []redis.XMessage) {
	for _, m := range msgs {
		if m.Values == nil {
			page.Deleted = append(page.Deleted, m.ID)
			continue
		}
		page.Entries = append(page.Entries, entryOf(m))
	}
}

// GroupClaimArgs are the arguments of ClaimGroup.
type GroupClaimArgs struct {
	Group, Consumer string
	MinIdle         time.Duration
	Start           string
	Count           int
}

// ClaimGroup takes over, with XAUTOCLAIM, at most Count entries of the group that have been
// pending on any consumer for at least MinIdle, from Start on. Next is where the scan goes on
// ("0-0" once complete); Deleted are the ids XAUTOCLAIM found gone from the stream (Redis
// drops them from the pending list itself).
func (p *Provisioner) ClaimGroup(ctx context.Context, id string, a GroupClaimArgs) (GroupPage, error) {
	page := GroupPage{Key: keys.EventStream(id)}
	if err := p.checkStream(id, page.Key, "claim in"); err != nil {
		return page, err
	}
	msgs, next, deleted, err := p.rdb.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
		Stream: page.Key, Group: a.Group, Consumer: a.Consumer, MinIdle: a.MinIdle,
		Start: a.Start, Count: int64(a.Count),
	}).Result()
	if err != nil {
		return page, p.groupError(ctx, page.Key, "XAUTOCLAIM", err)
	}
	page.Next, page.Deleted = next, deleted
	page.add(msgs)
	return page, nil
}

// AckGroup acknowledges entries of the group with XACK and returns how many were pending.
func (p *Provisioner) AckGroup(ctx context.Context, id, group string, ids []string) (int64, error) {
	key := keys.EventStream(id)
	if err := p.checkStream(id, key, "ack in"); err != nil {
		return 0, err
	}
	n, err := p.rdb.XAck(ctx, key, group, ids...).Result()
	if err != nil {
		return 0, p.groupError(ctx, key, "XACK", err)
	}
	return n, nil
}

// createGroup creates the group at the start of the stream, never the stream itself, and
// only while the stream has fewer than MaxGroups groups. A group another request created
// meanwhile is no error.
func (p *Provisioner) createGroup(ctx context.Context, key, group string) error {
	info, err := p.rdb.XInfoStream(ctx, key).Result()
	if err != nil {
		return p.groupError(ctx, key, "XINFO STREAM", err)
	}
	if info.Groups >= MaxGroups {
		return ErrTooManyGroups
	}
	err = p.rdb.XGroupCreate(ctx, key, group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return p.groupError(ctx, key, "XGROUP CREATE", err)
	}
	return nil
}

// groupError classifies a Redis error of a group command: a stream that is missing or of
// another type, a missing group, or the error itself (a store error).
func (p *Provisioner) groupError(ctx context.Context, key, command string, err error) error {
	switch {
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		return ErrNotAStream
	case redis.HasErrorPrefix(err, "UNBLOCKED"): // the stream was deleted while the read waited
		return ErrNoStream
	case isNoSuchKey(err), redis.HasErrorPrefix(err, "The XGROUP subcommand requires the key to exist"):
		// XINFO STREAM's and XGROUP CREATE's answers for a missing key: a plain ERR, which
		// HasErrorPrefix strips, and no code of their own.
		return ErrNoStream
	case isNoGroup(err):
		// The same error for a missing key and a missing group: tell them apart.
		n, xerr := p.rdb.Exists(ctx, key).Result()
		switch {
		case xerr != nil:
			return fmt.Errorf("%s %s: %w", command, key, err)
		case n == 0:
			return ErrNoStream
		}
		return ErrNoGroup
	}
	return fmt.Errorf("%s %s: %w", command, key, err)
}

// isNoGroup reports a NOGROUP error: no such key or no such consumer group.
func isNoGroup(err error) bool {
	return redis.HasErrorPrefix(err, "NOGROUP")
}
