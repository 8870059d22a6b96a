package routing

import (
	"errors"

	"github.com/botplatform/discord-sandboxes/shared/logkey"
)

// From a FIFO ingress queue, SQS hands the router a batch of at most 10 messages whose message
// groups (Message.GroupID, a guild or a shard on Discord's side) each keep their order. If a
// message fails, the queue delivers it again later; a later message of its group delivered
// meanwhile would overtake it. So a FIFO batch is delivered in rounds: the k-th round delivers
// the next message of every group still going, all groups at once (one stream pipeline, one
// SendMessageBatch and one dead-letter send per round). A group whose message failed stops,
// and its later messages in the batch fail too (Result.Blocked), without having been
// delivered: they come back after it, and nothing is delivered twice. Messages with nothing to
// deliver (dropped, parked) pass; a poison message sent to the dead-letter queue passes too,
// so it never blocks its group; one whose send failed stops it like any failure.
//
// The rounds cost one round trip per message of the longest group, at most 10; a batch from a
// standard queue (no groups) keeps its one round.

// ordered reports whether the batch comes from a FIFO queue.
func (b *batchState) ordered() bool {
	for i := range b.messages {
		if b.messages[i].GroupID != "" {
			return true
		}
	}
	return false
}

// settle records how a message with nothing to deliver was counted.
func (b *batchState) settle(i int, dest Destination, reason string) {
	if b.settled == nil {
		b.settled = map[int]settlement{}
	}
	b.settled[i] = settlement{dest: dest, reason: reason}
}

// errBlocked is why a message of a FIFO batch fails when an earlier one of its group did.
var errBlocked = errors.New("an earlier message of its message group failed in this batch: delivered after it")

// deliverInOrder delivers a FIFO batch group by group in order, in rounds (see above).
func (b *batchState) deliverInOrder() {
	inStream := indexSet(b.toStream)
	inProduction := indexSet(b.toProduction)
	poisonAt := make(map[int]poisonMessage, len(b.poison))
	for _, p := range b.poison {
		poisonAt[p.index] = p
	}
	// The groups in order of first appearance; a message without a group is a group of its own.
	var groups [][]int
	groupOf := map[string]int{}
	for i := range b.messages {
		id := b.messages[i].GroupID
		g, ok := groupOf[id]
		if !ok || id == "" {
			g = len(groups)
			groups = append(groups, nil)
			if id != "" {
				groupOf[id] = g
			}
		}
		groups[g] = append(groups[g], i)
	}
	next := make([]int, len(groups)) // position of each group's next message
	stopped := make([]bool, len(groups))
	for {
		var toStream, toProduction, picked []int
		var poison []poisonMessage
		var pickedGroup []int
		for g, members := range groups {
			for !stopped[g] && next[g] < len(members) {
				i := members[next[g]]
				next[g]++
				if b.failed[i] { // failed before delivery: a route lookup, poison without a queue
					stopped[g] = true
					break
				}
				p, isPoison := poisonAt[i]
				switch {
				case inStream[i]:
					toStream = append(toStream, i)
				case inProduction[i]:
					toProduction = append(toProduction, i)
				case isPoison:
					poison = append(poison, p)
				default:
					continue // dropped or parked: nothing to deliver
				}
				picked, pickedGroup = append(picked, i), append(pickedGroup, g)
				break
			}
		}
		if len(picked) == 0 {
			break
		}
		b.deliverSet(toStream, toProduction, poison)
		for k, i := range picked {
			if b.failed[i] {
				stopped[pickedGroup[k]] = true
			}
		}
	}
	for g, members := range groups {
		if !stopped[g] {
			continue
		}
		for _, i := range members[next[g]:] {
			b.block(i)
		}
	}
}

// block fails message i of a stopped group: it was not delivered (a dropped or parked one is
// uncounted), and the queue delivers it again after the message that stopped its group.
func (b *batchState) block(i int) {
	if b.failed[i] {
		return
	}
	if s, ok := b.settled[i]; ok {
		b.result.Routed[s.dest]--
		counts := b.droppedBy
		if s.dest == DestinationParked {
			counts = b.parkedBy
		}
		if counts[s.reason]--; counts[s.reason] == 0 {
			delete(counts, s.reason)
		}
		delete(b.settled, i)
	}
	b.failed[i] = true
	b.result.Blocked++
	b.router.log.DebugContext(b.ctx, "message held back for order", logkey.MessageID, b.messages[i].ID,
		logkey.GroupID, b.messages[i].GroupID, logkey.Error, errBlocked.Error())
}

func indexSet(idx []int) map[int]bool {
	set := make(map[int]bool, len(idx))
	for _, i := range idx {
		set[i] = true
	}
	return set
}
