package provision_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// ids returns the entry ids of a page.
func ids(p provision.StreamPage) string {
	out := make([]string, len(p.Entries))
	for i, e := range p.Entries {
		out[i] = e.ID
	}
	return strings.Join(out, " ")
}

// TestReadStream reads a stream of entries with known ids from every kind of position, in
// chunks (more entries than one XRANGE takes), up to a count and a byte budget, and reports
// the stream's length, first, last and greatest deleted ids.
func TestReadStream(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id := sandbox.NewID()
	stream := keys.EventStream(id)

	page, err := e.p.ReadStream(ctx, id, "", 10, 1<<20)
	if err != nil || page.Exists || len(page.Entries) != 0 || page.Key != stream || page.LastGeneratedID != "0-0" {
		t.Fatalf("no stream: %+v %v", page, err)
	}

	// 250 entries 1000-1 ... 1249-1, each 20 bytes of fields.
	pipe := e.rdb.Pipeline()
	for i := range 250 {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: fmt.Sprintf("%d-1", 1000+i), Values: []string{"type", fmt.Sprintf("T%03d", i), "payload", "0123456789"}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	page, err = e.p.ReadStream(ctx, id, "", 1000, 1<<20)
	if err != nil || !page.Exists || page.Length != 250 || len(page.Entries) != 250 || page.More ||
		page.FirstID != "1000-1" || page.LastGeneratedID != "1249-1" || page.MaxDeletedID != "0-0" || page.EntriesAdded != 250 {
		t.Fatalf("whole stream, in three XRANGEs: %+v %v", summary(page), err)
	}
	if e0 := page.Entries[0]; e0.Fields["type"] != "T000" || e0.Fields["payload"] != "0123456789" || e0.Size != 4+4+7+10 {
		t.Errorf("first entry %+v", e0)
	}
	for i, en := range page.Entries {
		if want := fmt.Sprintf("%d-1", 1000+i); en.ID != want {
			t.Fatalf("entry %d is %s, want %s: oldest first, none twice", i, en.ID, want)
		}
	}

	for _, tc := range []struct {
		after        string
		count        int
		budget       int
		first, last  string
		n            int
		more         bool
		whatItProves string
	}{
		{"1009-1", 3, 1 << 20, "1010-1", "1012-1", 3, true, "after is exclusive; count bounds the entries"},
		{"1009-0", 1, 1 << 20, "1009-1", "1009-1", 1, true, "an id between entries"},
		{"1248-1", 10, 1 << 20, "1249-1", "1249-1", 1, false, "the end of the stream: no more"},
		{"1249-1", 10, 1 << 20, "", "", 0, false, "after the last entry"},
		{"0-0", 150, 1 << 20, "1000-1", "1149-1", 150, true, "a count above one XRANGE"},
		{"", 1000, 1, "1000-1", "1099-1", 100, true, "the budget stops reading after the first XRANGE"},
		{provision.MaxStreamID, 10, 1 << 20, "", "", 0, false, "nothing follows the greatest id"},
	} {
		page, err := e.p.ReadStream(ctx, id, tc.after, tc.count, tc.budget)
		if err != nil {
			t.Fatalf("%s: %v", tc.whatItProves, err)
		}
		got := ids(page)
		if len(page.Entries) != tc.n || page.More != tc.more || page.Length != 250 ||
			(tc.n > 0 && (page.Entries[0].ID != tc.first || page.Entries[tc.n-1].ID != tc.last)) {
			t.Errorf("%s: after %q count %d budget %d: %d entries (%.40s...), more %v", tc.whatItProves, tc.after, tc.count, tc.budget, len(page.Entries), got, page.More)
		}
	}

	// Trimming moves the first id, deleting the greatest deleted one; both leave the count of
	// entries ever added.
	if err := e.rdb.XTrimMaxLen(ctx, stream, 200).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XDel(ctx, stream, "1100-1").Err(); err != nil {
		t.Fatal(err)
	}
	page, err = e.p.ReadStream(ctx, id, "", 5, 1<<20)
	if err != nil || page.Length != 199 || page.FirstID != "1050-1" || page.MaxDeletedID != "1100-1" || page.EntriesAdded != 250 || page.Entries[0].ID != "1050-1" {
		t.Fatalf("after trimming and a deletion: %+v %v", summary(page), err)
	}

	// The sandbox's own user may put anything under its stream's key.
	if err := e.rdb.Del(ctx, stream).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Set(ctx, stream, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.ReadStream(ctx, id, "", 5, 1<<20); !errors.Is(err, provision.ErrNotAStream) {
		t.Errorf("a string under the stream's key: %v", err)
	}
	if _, err := e.p.ReadStream(ctx, "BAD*", "", 5, 1<<20); err == nil {
		t.Error("an invalid id was read")
	}
}

func summary(p provision.StreamPage) string {
	return fmt.Sprintf("exists %v length %d added %d first %s last %s deleted %s entries %d more %v",
		p.Exists, p.Length, p.EntriesAdded, p.FirstID, p.LastGeneratedID, p.MaxDeletedID, len(p.Entries), p.More)
}
