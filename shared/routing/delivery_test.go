package routing_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
	"github.com/botplatform/discord-sandboxes/shared/routing"
)

func TestProductionDeliveryOnSQS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	client, url := motoQueue(t, "routing-production", nil)
	r := e.router(t, client, func(o *routing.Options) { o.ProductionQueueURL = url })

	want := map[string]string{} // ingress id -> body
	var batch []routing.Message
	for i := range 23 {
		m := msg(fmt.Sprintf("ingress-%02d", i), dispatch("MESSAGE_CREATE", i, ""))
		if i%2 == 1 {
			m.Body = dispatch("MESSAGE_CREATE", i, gUnmapped)
		}
		if i == 0 {
			m.Attributes = map[string]routing.Attribute{
				"shard":  {DataType: "Number", StringValue: "3"},
				"trace":  {DataType: "Binary", BinaryValue: []byte{1, 2, 3}},
				"empty":  {DataType: "String"}, // carries nothing: not forwarded
				"origin": {DataType: "String.gateway", StringValue: "eu-1"},
			}
		}
		want[m.ID] = m.Body
		batch = append(batch, m)
	}
	res := r.Route(t.Context(), nil, batch)
	equal(t, "failed", res.Failed, nil)

	received := receiveAll(t, client, url, len(want))
	got := map[string]string{}
	for id, m := range received {
		got[id] = aws.ToString(m.Body)
	}
	first := received["ingress-00"]
	if !maps.Equal(got, want) {
		t.Fatalf("production queue holds %d messages, want %d; differences in %v", len(got), len(want), diffKeys(got, want))
	}
	names := slices.Sorted(maps.Keys(first.MessageAttributes))
	equal(t, "forwarded attribute names", names, []string{routing.AttributeIngressMessageID, "origin", "shard", "trace"})
	if a := first.MessageAttributes["shard"]; aws.ToString(a.DataType) != "Number" || aws.ToString(a.StringValue) != "3" {
		t.Errorf("shard attribute %+v", a)
	}
	if a := first.MessageAttributes["trace"]; aws.ToString(a.DataType) != "Binary" || !bytes.Equal(a.BinaryValue, []byte{1, 2, 3}) {
		t.Errorf("trace attribute %+v", a)
	}
}

func diffKeys(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// emfValues reads EMF lines into "Metric{Dim=value,...}" -> value, for every metric each line
// declares, over the line's non-Environment dimensions.
func emfValues(t *testing.T, out []byte) map[string]float64 {
	t.Helper()
	values := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("EMF line %q: %v", sc.Text(), err)
		}
		var directive struct {
			CloudWatchMetrics []struct {
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		}
		raw, _ := json.Marshal(line["_aws"])
		if err := json.Unmarshal(raw, &directive); err != nil {
			t.Fatal(err)
		}
		for _, d := range directive.CloudWatchMetrics {
			dims := map[string]bool{}
			for _, set := range d.Dimensions {
				for _, name := range set {
					if name != string(metrics.DimEnvironment) {
						dims[name] = true
					}
				}
			}
			var parts []string
			for _, name := range slices.Sorted(maps.Keys(dims)) {
				parts = append(parts, fmt.Sprintf("%s=%v", name, line[name]))
			}
			for _, m := range d.Metrics {
				if v, ok := line[m.Name].(float64); ok {
					values[m.Name+"{"+strings.Join(parts, ",")+"}"] += v
				}
			}
		}
	}
	return values
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.sandbox(t, "metered", gRun)
	var out bytes.Buffer
	emitter, err := metrics.NewEmitter(&out, "test")
	if err != nil {
		t.Fatal(err)
	}
	rec := emitter.Begin()
	r := e.router(t, &queue{})
	res := r.Route(t.Context(), rec, []routing.Message{
		msg("s1", dispatch("MESSAGE_CREATE", 1, gRun)),
		msg("s2", dispatch("MESSAGE_CREATE", 2, gRun)),
		msg("p1", dispatch("MESSAGE_CREATE", 3, gUnmapped)),
		msg("x1", `{"op":0,"t":"MESSAGE_CREATE","d":{"guild_id":"0"}}`),
		msg("x2", `[]`),
	})
	equal(t, "failed", res.Failed, []string{"x1", "x2"})
	if err := rec.Err(); err != nil {
		t.Fatalf("recordings rejected by the catalog: %v", err)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	got := emfValues(t, out.Bytes())
	for key, want := range map[string]float64{
		"RouterBatchSize{}":                    5,
		"EventsRouted{Destination=sandbox}":    2,
		"EventsRouted{Destination=production}": 1,
		"RoutingErrors{Kind=invalid_guild_id}": 1,
		"RoutingErrors{Kind=malformed}":        1,
		"RouteLookups{Tier=database}":          2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
	for _, key := range []string{"RouterBatchDuration{}", "RouteLookupLatency{}"} {
		if _, ok := got[key]; !ok {
			t.Errorf("%s missing (all: %v)", key, got)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	base := map[string]string{
		"DATABASE_URL":         "postgres://localhost/sandbox",
		"REDIS_ADDR":           "localhost:6379",
		"PRODUCTION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/production",
	}
	cfg, err := routing.LoadConfig(config.MapLookup(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StreamMaxLen != 10000 || cfg.MemoryCacheTTL != 5*time.Second || cfg.RouteCacheTTL != 5*time.Minute ||
		cfg.RouteCacheNegativeTTL != time.Minute || cfg.IngressQueueURL != "" || cfg.SQSEndpoint != "" ||
		cfg.DeadLetterQueueURL != "" || cfg.RedisTimeout != time.Second || cfg.SQSTimeout != 5*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}

	set := maps.Clone(base)
	maps.Copy(set, map[string]string{
		"ROUTER_STREAM_MAXLEN": "500", "ROUTER_MEMORY_CACHE_TTL": "0s", "ROUTE_CACHE_TTL": "1d",
		"ROUTE_CACHE_NEGATIVE_TTL": "30s", "INGRESS_QUEUE_URL": "http://localhost:4566/000000000000/ingress",
		"SQS_ENDPOINT": "http://localhost:4566", "ROUTER_DEAD_LETTER_QUEUE_URL": "http://localhost:4566/000000000000/ingress-dlq",
		"ROUTER_REDIS_TIMEOUT": "250ms", "ROUTER_SQS_TIMEOUT": "2s",
	})
	cfg, err = routing.LoadConfig(config.MapLookup(set))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StreamMaxLen != 500 || cfg.MemoryCacheTTL != 0 || cfg.RouteCacheTTL != 24*time.Hour ||
		cfg.RouteCacheNegativeTTL != 30*time.Second || cfg.SQSEndpoint != "http://localhost:4566" ||
		cfg.DeadLetterQueueURL != "http://localhost:4566/000000000000/ingress-dlq" ||
		cfg.RedisTimeout != 250*time.Millisecond || cfg.SQSTimeout != 2*time.Second {
		t.Errorf("explicit values: %+v", cfg)
	}

	bad := maps.Clone(base)
	delete(bad, "PRODUCTION_QUEUE_URL")
	maps.Copy(bad, map[string]string{"ROUTER_STREAM_MAXLEN": "0", "ROUTER_MEMORY_CACHE_TTL": "10m", "ROUTE_CACHE_TTL": "-1s",
		"ROUTER_REDIS_TIMEOUT": "0s", "ROUTER_SQS_TIMEOUT": "1m"})
	_, err = routing.LoadConfig(config.MapLookup(bad))
	for _, name := range []string{"PRODUCTION_QUEUE_URL", "ROUTER_STREAM_MAXLEN", "ROUTER_MEMORY_CACHE_TTL", "ROUTE_CACHE_TTL",
		"ROUTER_REDIS_TIMEOUT", "ROUTER_SQS_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
	for value, ok := range map[string]bool{"10ms": true, "9ms": false, "10s": true, "11s": false, "soon": false} {
		_, err := routing.LoadConfig(config.MapLookup(map[string]string{
			"DATABASE_URL": base["DATABASE_URL"], "REDIS_ADDR": base["REDIS_ADDR"],
			"PRODUCTION_QUEUE_URL": base["PRODUCTION_QUEUE_URL"], "ROUTER_REDIS_TIMEOUT": value,
		}))
		if (err == nil) != ok {
			t.Errorf("ROUTER_REDIS_TIMEOUT=%s: error %v, want accepted %t", value, err, ok)
		}
	}
}
