package api_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// reportPercentiles reports p50 and p99 of per-operation durations, in microseconds.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(q * float64(len(d)-1))
		return float64(d[i]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkGetSandbox measures GET /v1/sandboxes/{name} through the Lambda adapter
// (payload-2.0 event in, response out) on local PostgreSQL and Redis.
func BenchmarkGetSandbox(b *testing.B) {
	e := newEnv(b, envOptions{discardOutput: true})
	e.create(b, alice, "alpha", guild1)
	payload := event(b, call{method: "GET", path: "/v1/sandboxes/alpha", principal: alice})
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		r := e.invokeRaw(b, payload)
		durations = append(durations, time.Since(start))
		if r.status != 200 {
			b.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	reportPercentiles(b, durations)
}

// BenchmarkCreateSandbox measures POST /v1/sandboxes (schema clone, role, stream, guild
// mapping) through the Lambda adapter on local PostgreSQL and Redis.
func BenchmarkCreateSandbox(b *testing.B) {
	limits := sandbox.DefaultLimits()
	limits.OwnerQuota = 1 << 30
	limits.DBReservedConnections = -1
	e := newEnv(b, envOptions{limits: limits, discardOutput: true})
	reportPercentiles(b, benchCreate(b, e, ""))
}

// benchCreate creates sandboxes bench-1, bench-2, ... (from template when set) in the
// benchmark's loop and returns each creation's duration; the timer is stopped afterwards.
func benchCreate(b *testing.B, e *env, template string) []time.Duration {
	var durations []time.Duration
	n := 0
	b.ResetTimer()
	for b.Loop() {
		n++
		guild := strconv.Itoa(80351110224700000 + n)
		testenv.RegisterTestGuilds(b, e.pool, guild) // only registered test guilds may be mapped
		body := fmt.Sprintf(`{"name":"bench-%d","ttl":"1h","guilds":["%s"]}`, n, guild)
		if template != "" {
			body = fmt.Sprintf(`{"name":"bench-%d","ttl":"1h","guilds":["%s"],"template":%q}`, n, guild, template)
		}
		start := time.Now()
		r := e.invokeRaw(b, event(b, call{method: "POST", path: "/v1/sandboxes", principal: alice, body: body}))
		durations = append(durations, time.Since(start))
		if r.status != 201 {
			b.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	b.StopTimer()
	return durations
}
