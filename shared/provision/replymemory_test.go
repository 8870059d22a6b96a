package provision_test

// A sandbox's worker may read its own keys. A reply it never reads stays in the server's memory,
// the memory the route cache lives in: without a limit, 20-byte GETs of a 1 MiB value hold
// 1 MiB each. These tests run that attack as a sandbox's Redis user, on raw connections that
// send and never read, against the servers scripts/services.sh starts with
// scripts/redis-server.conf. They read the limits from the server itself, so that a server
// started without them fails here.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
)

// replyValue is the size of the value every GET of the attack answers with.
const replyValue = 1 << 20

// replyAttack is a sandbox's user with a 1 MiB value in its namespace, and an administrator's
// client on the node that holds the value.
type replyAttack struct {
	t          *testing.T
	node       *redis.Client // the administrator, on the node of key
	db         int
	user, pass string
	key        string
}

func newReplyAttack(t *testing.T) replyAttack {
	e := setup(t)
	ctx := t.Context()
	id, _ := provisioned(t, e)
	creds, err := e.p.RotateCredentials(ctx, id, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a := replyAttack{t: t, db: testenv.RedisDBOf(e.rdb), user: creds.RedisUser, pass: creds.RedisPassword, key: keys.Namespace(id) + "blob"}
	sb := testenv.NewRedisClient(t, redis.UniversalOptions{DB: a.db, Username: a.user, Password: a.pass, MaxRetries: -1})
	if err := sb.Set(ctx, a.key, strings.Repeat("x", replyValue), 0).Err(); err != nil {
		t.Fatal(err)
	}
	switch admin := testenv.RedisAdmin(t, a.db).(type) {
	case *redis.ClusterClient:
		if a.node, err = admin.MasterForKey(ctx, a.key); err != nil {
			t.Fatal(err)
		}
	case *redis.Client:
		a.node = admin
	}
	return a
}

// limits reads the node's limits on clients' memory: the hard limit of a normal client's pending
// replies, and maxmemory-clients (all clients together), in bytes.
func (a replyAttack) limits() (hard, total int64) {
	t, ctx := a.t, a.t.Context()
	cfg, err := a.node.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// "normal <hard> <soft> <seconds> slave ... pubsub ..."
	f := strings.Fields(cfg["client-output-buffer-limit"])
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "normal" {
			hard, _ = strconv.ParseInt(f[i+1], 10, 64)
		}
	}
	total, _ = strconv.ParseInt(cfg["maxmemory-clients"], 10, 64)
	if hard <= 0 || total <= 0 {
		t.Fatalf("the server keeps unread replies without bound (client-output-buffer-limit %q, maxmemory-clients %q): "+
			"was it started with scripts/redis-server.conf?", cfg["client-output-buffer-limit"], cfg["maxmemory-clients"])
	}
	return hard, total
}

// send opens a connection as the sandbox's user and sends gets GETs of the value on it without
// ever reading a reply. It returns the connection, its address as the server names it.
func (a replyAttack) send(gets int) (net.Conn, string) {
	t := a.t
	var raw net.Conn
	client := redis.NewClient(&redis.Options{
		Addr: a.node.Options().Addr, DB: a.db, Username: a.user, Password: a.pass, PoolSize: 1, MaxRetries: -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			raw = conn
			return conn, err
		},
	})
	t.Cleanup(func() { _ = client.Close() })
	// The client authenticates (and selects the database) on the connection; from then on the
	// test writes to it itself.
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	get := fmt.Sprintf("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(a.key), a.key)
	if _, err := raw.Write([]byte(strings.Repeat(get, gets))); err != nil {
		t.Fatal(err)
	}
	return raw, raw.LocalAddr().String()
}

// clientState is what CLIENT LIST says of one connection.
type clientState struct {
	pendingReplies int64 // omem
	queryBuffer    int64 // qbuf: 0 once every command sent is processed
}

// clients returns the state of the sandbox user's connections on the node, by address.
func (a replyAttack) clients() map[string]clientState {
	list, err := a.node.ClientList(a.t.Context()).Result()
	if err != nil {
		a.t.Fatal(err)
	}
	states := map[string]clientState{}
	for line := range strings.Lines(list) {
		fields := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			fields[k] = v
		}
		if fields["user"] != a.user {
			continue
		}
		var s clientState
		s.pendingReplies, _ = strconv.ParseInt(fields["omem"], 10, 64)
		s.queryBuffer, _ = strconv.ParseInt(fields["qbuf"], 10, 64)
		states[fields["addr"]] = s
	}
	return states
}

// waitFor polls the node until settled holds of the user's connections, and returns them.
func (a replyAttack) waitFor(what string, settled func(map[string]clientState) bool) map[string]clientState {
	var states map[string]clientState
	waitUntil(a.t, what, func() bool {
		states = a.clients()
		return settled(states)
	})
	return states
}

// One connection that sends twice the hard limit in GETs and reads nothing is closed by the
// server once its pending replies pass the limit: it receives what the sockets held, then the
// end of the connection, and never the rest.
func TestUnreadRepliesOfOneConnectionAreBounded(t *testing.T) {
	a := newReplyAttack(t)
	hard, _ := a.limits()
	gets := int(2 * hard / replyValue)
	raw, addr := a.send(gets)
	a.waitFor("the connection is closed", func(s map[string]clientState) bool {
		st, open := s[addr]
		if open && st.pendingReplies > hard+2*replyValue {
			t.Fatalf("the connection holds %d bytes of unread replies, over the hard limit of %d", st.pendingReplies, hard)
		}
		return !open
	})

	if err := raw.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, raw)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatalf("the server did not end the connection: %v after %d bytes", err, got)
	}
	if full := int64(gets) * replyValue; got >= full/2 {
		t.Fatalf("the connection received %d bytes of %d: the server kept sending what it should have dropped", got, full)
	}
}

// Many connections, each under the hard limit, do not add up past maxmemory-clients: the server
// closes the ones that hold the most.
func TestUnreadRepliesOfManyConnectionsAreBounded(t *testing.T) {
	a := newReplyAttack(t)
	hard, total := a.limits()
	evictedBefore := a.evictedClients()
	perConn := hard - 8*replyValue // under the hard limit, so that only the total can close them
	conns := int(total/perConn) + 3
	sent := map[string]bool{}
	for range conns {
		_, addr := a.send(int(perConn / replyValue))
		sent[addr] = true
	}
	states := a.waitFor("every connection that is open has processed all it sent", func(s map[string]clientState) bool {
		for addr := range sent {
			if st, open := s[addr]; open && st.queryBuffer > 0 {
				return false
			}
		}
		return true
	})

	var open int
	var held int64
	for addr := range sent {
		if st, ok := states[addr]; ok {
			open++
			held += st.pendingReplies
		}
	}
	if open == conns {
		t.Fatalf("all %d connections are open, holding %d bytes of unread replies together (maxmemory-clients %d)", conns, held, total)
	}
	if held > total {
		t.Fatalf("the %d open connections hold %d bytes of unread replies, over maxmemory-clients %d", open, held, total)
	}
	if evicted := a.evictedClients() - evictedBefore; evicted < int64(conns-open) {
		t.Fatalf("%d connections closed, but the server counts %d evicted clients", conns-open, evicted)
	}
}

// evictedClients is the node's count of clients closed for maxmemory-clients.
func (a replyAttack) evictedClients() int64 {
	info, err := a.node.Info(a.t.Context(), "stats").Result()
	if err != nil {
		a.t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "evicted_clients:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	a.t.Fatal("INFO stats has no evicted_clients")
	return 0
}
