package routing_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/routecache"
	"github.com/botplatform/discord-sandboxes/shared/routing"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

const (
	owner           = "arn:aws:iam::123456789012:user/alice"
	productionQueue = "https://sqs.us-east-1.amazonaws.com/123456789012/production"
	memoryTTL       = 5 * time.Second
)

// env is a migrated control plane with a provisioner, on a database and a Redis of its own.
type env struct {
	pool    *pgxpool.Pool
	rdb     redis.UniversalClient
	manager *controlplane.Manager
	cache   *routecache.Cache
	clock   *testenv.Clock
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, testenv.Redis(t))
}

// newEnvOn is newEnv on the Redis client rdb.
func newEnvOn(t testing.TB, rdb redis.UniversalClient) *env {
	t.Helper()
	pool, _ := testenv.Postgres(t)
	if _, err := controlplane.Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	cache := routecache.New(rdb, 0, 0)
	limits := sandbox.DefaultLimits()
	limits.OwnerQuota = 100
	limits.DBReservedConnections = -1 // more sandboxes than the test server has connections for
	limits.MaxGuilds = 100
	return &env{
		pool:  pool,
		rdb:   rdb,
		cache: cache,
		manager: controlplane.NewManager(pool, controlplane.Options{
			Limits: limits, Provisioner: provision.New(pool, rdb, "sandbox_template"), Routes: cache,
		}),
		clock: testenv.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)),
	}
}

// register registers guilds as test guilds, as an admin does before they are mapped.
func (e *env) register(t testing.TB, guilds ...string) {
	t.Helper()
	testenv.RegisterTestGuilds(t, e.pool, guilds...)
}

// sandbox creates a running sandbox (schema, role and stream provisioned) owning guilds,
// registered as test guilds first.
func (e *env) sandbox(t testing.TB, name string, guilds ...string) *sandbox.Sandbox {
	t.Helper()
	e.register(t, guilds...)
	sb, err := e.manager.Create(t.Context(), owner, controlplane.CreateInput{Name: name, Owner: owner, Guilds: guilds})
	if err != nil {
		t.Fatalf("create sandbox %s: %v", name, err)
	}
	return sb
}

// oneSandbox is the start of many tests: a new env with one running sandbox named name
// owning guild, and a router delivering production events to an in-memory queue.
func oneSandbox(t testing.TB, name, guild string) (*env, *sandbox.Sandbox, *queue, *routing.Router) {
	t.Helper()
	e := newEnv(t)
	sb := e.sandbox(t, name, guild)
	q := &queue{}
	return e, sb, q, e.router(t, q)
}

// tearDown does the part of sandbox id's teardown that parks its guilds: destroy requested,
// mappings removed (and parked), destroyed.
func (e *env) tearDown(t testing.TB, id string) {
	t.Helper()
	ctx := t.Context()
	if _, _, err := e.manager.RequestDestroy(ctx, owner, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.manager.RemoveMappingsForTeardown(ctx, "cleanup", id, "destroy_requested",
		func([]string) ([]byte, map[string]any, error) { return []byte(`{}`), map[string]any{}, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.manager.Transition(ctx, "cleanup", id, sandbox.StatusDestroyed, nil); err != nil {
		t.Fatal(err)
	}
}

// router returns a Router on e's stores with production events going to queue.
func (e *env) router(t testing.TB, queue routing.QueueSender, edit ...func(*routing.Options)) *routing.Router {
	t.Helper()
	o := routing.Options{
		Store:              e.manager,
		Cache:              e.cache,
		Redis:              e.rdb,
		Production:         queue,
		ProductionQueueURL: productionQueue,
		MemoryCacheTTL:     memoryTTL,
		Now:                e.clock.Now,
		Logger:             slog.New(slog.DiscardHandler),
	}
	for _, f := range edit {
		f(&o)
	}
	r, err := routing.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// removeStream deletes a sandbox's stream, as a teardown (or the runbook's "stop routing")
// does while the sandbox's routes may still be cached.
func (e *env) removeStream(t testing.TB, sandboxID string) {
	t.Helper()
	if err := e.rdb.Del(t.Context(), keys.EventStream(sandboxID)).Err(); err != nil {
		t.Fatal(err)
	}
}

// streamEntries reads a sandbox's whole stream.
func (e *env) streamEntries(t testing.TB, sandboxID string) []redis.XMessage {
	t.Helper()
	msgs, err := e.rdb.XRange(context.Background(), keys.EventStream(sandboxID), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// streamIDs lists the message_id field of a sandbox's stream entries, in stream order.
func (e *env) streamIDs(t testing.TB, sandboxID string) []string {
	t.Helper()
	var ids []string
	for _, m := range e.streamEntries(t, sandboxID) {
		ids = append(ids, fmt.Sprint(m.Values[keys.StreamFieldMessageID]))
	}
	return ids
}

// queue is an in-memory stand-in for the production queue's SendMessageBatch: it records
// what it accepted and rejects the entries (or whole calls) its hooks choose. It checks the
// request the way SQS does (at most 10 entries, valid and unique entry ids).
type queue struct {
	// reject, when set, fails the entries whose ingress message id it returns true for.
	reject func(ingressID string) bool
	// failCall, when set, fails the whole call when it returns an error.
	failCall func(in *sqs.SendMessageBatchInput) error

	mu       sync.Mutex
	calls    int
	inFlight int
	maxLive  int
	accepted []types.SendMessageBatchRequestEntry
}

// validEntryID is SQS's rule for batch entry ids.
func validEntryID(id string) bool {
	if id == "" || len(id) > 80 {
		return false
	}
	for _, c := range id {
		if c != '-' && c != '_' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

func (q *queue) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	q.mu.Lock()
	q.calls++
	q.inFlight++
	q.maxLive = max(q.maxLive, q.inFlight)
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.inFlight--
		q.mu.Unlock()
	}()
	time.Sleep(time.Millisecond) // long enough for concurrent calls to overlap

	if aws.ToString(in.QueueUrl) != productionQueue {
		return nil, fmt.Errorf("unexpected queue %q", aws.ToString(in.QueueUrl))
	}
	if len(in.Entries) == 0 || len(in.Entries) > 10 {
		return nil, fmt.Errorf("AWS.SimpleQueueService.TooManyEntriesInBatchRequest: %d entries", len(in.Entries))
	}
	if q.failCall != nil {
		if err := q.failCall(in); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		id := aws.ToString(e.Id)
		if !validEntryID(id) || seen[id] {
			return nil, fmt.Errorf("AWS.SimpleQueueService.InvalidBatchEntryId: %q", id)
		}
		seen[id] = true
		if q.reject != nil && q.reject(ingressID(e)) {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{
				Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again"), SenderFault: false,
			})
			continue
		}
		q.mu.Lock()
		q.accepted = append(q.accepted, e)
		q.mu.Unlock()
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("prod-" + id)})
	}
	return out, nil
}

func ingressID(e types.SendMessageBatchRequestEntry) string {
	return aws.ToString(e.MessageAttributes[routing.AttributeIngressMessageID].StringValue)
}

// acceptedIDs lists the ingress ids of the accepted entries, sorted (calls run concurrently).
func (q *queue) acceptedIDs() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return ingressIDs(q.accepted)
}

// ingressIDs lists the ingress ids of entries, sorted.
func ingressIDs(entries []types.SendMessageBatchRequestEntry) []string {
	var ids []string
	for _, e := range entries {
		ids = append(ids, ingressID(e))
	}
	slices.Sort(ids)
	return ids
}

// motoQueue creates a uniquely named queue with attributes attrs on the test SQS endpoint.
func motoQueue(t *testing.T, name string, attrs map[string]string) (*sqs.Client, string) {
	t.Helper()
	client := testenv.SQS(t)
	return client, testenv.SQSQueue(t, client, name, attrs)
}

// receiveAll receives from url until n messages arrived (or 30 s passed), by ingress id.
func receiveAll(t *testing.T, client *sqs.Client, url string, n int) map[string]types.Message {
	t.Helper()
	got := map[string]types.Message{}
	for deadline := time.Now().Add(30 * time.Second); len(got) < n && time.Now().Before(deadline); {
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			got[aws.ToString(m.MessageAttributes[routing.AttributeIngressMessageID].StringValue)] = m
		}
	}
	return got
}

// dispatch builds a gateway dispatch payload; guild "" leaves guild_id out.
func dispatch(eventType string, seq int, guild string) string {
	d := `{"id":"1112409876543210987","channel_id":"1081240586957934662","content":"hello \"world\""`
	if guild != "" {
		d += `,"guild_id":"` + guild + `"`
	}
	d += "}"
	return fmt.Sprintf(`{"op":0,"t":%q,"s":%d,"d":%s}`, eventType, seq, d)
}

func msg(id, body string) routing.Message { return routing.Message{ID: id, Body: body} }

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func equal(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}
