package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/botplatform/discord-sandboxes/shared/api"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
)

// schemaCheck stands for controlplane.SchemaGate: outdated until the migrate step ran.
type schemaCheck struct{ err error }

func (s *schemaCheck) Check(context.Context) error { return s.err }

// The api function in Lambda: API events fail with the schema's error while it is outdated,
// the deployer's {"migrate": true} runs the migrate step (and only an exact one does), and API
// events are served once it has run.
func TestFunctionRunsTheMigrateStepAndHoldsAPIEventsUntilIt(t *testing.T) {
	e := newEnv(t, envOptions{})
	latest, err := controlplane.SchemaVersion()
	if err != nil {
		t.Fatal(err)
	}
	schema := &schemaCheck{err: &controlplane.SchemaError{Have: "0001_control_plane", Want: latest}}
	var requests []controlplane.MigrateRequest
	fn := api.Function{API: e.handler, Schema: schema,
		Migrate: func(ctx context.Context, req controlplane.MigrateRequest) (controlplane.MigrateReport, error) {
			requests = append(requests, req)
			report, err := controlplane.MigrateStep(ctx, e.pool, nil, req)
			if err == nil {
				schema.err = nil
			}
			return report, err
		}}
	invoke := lambda.NewHandler(lambdakit.Wrap("api", nil, fn.Handle))
	ctx := lambdakit.NewLocalContext(t.Context())
	health := event(t, call{method: "GET", path: "/health", principal: alice})

	if _, err := invoke.Invoke(ctx, health); err == nil || !strings.Contains(err.Error(), "this build needs "+latest+": run the migrate step") {
		t.Fatalf("an API event before the migrate step: %v, want the schema's error", err)
	}
	for _, bad := range []string{`{"migrate": false}`, `{"migrate": true, "routerRole": "x"}`, `{"migrate": "yes"}`} {
		if _, err := invoke.Invoke(ctx, []byte(bad)); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
	if len(requests) != 0 {
		t.Fatalf("malformed migrate payloads ran the step: %+v", requests)
	}

	out, err := invoke.Invoke(ctx, []byte(`{"migrate": true}`))
	if err != nil {
		t.Fatal(err)
	}
	var report controlplane.MigrateReport
	if err := json.Unmarshal(out, &report); err != nil || report.Version != latest || report.Applied == nil {
		t.Fatalf("migrate response %s (%v)", out, err)
	}
	if len(requests) != 1 || !requests[0].Migrate || requests[0].RouterRole != "" {
		t.Fatalf("the step ran with %+v", requests)
	}

	out, err = invoke.Invoke(ctx, health)
	if err != nil {
		t.Fatalf("an API event after the migrate step: %v", err)
	}
	var resp struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health after the migrate step: %s (%v)", out, err)
	}

	without := lambda.NewHandler(lambdakit.Wrap("api", nil, api.Function{API: e.handler}.Handle))
	if _, err := without.Invoke(ctx, []byte(`{"migrate": true}`)); err == nil {
		t.Error("a function without the migrate step ran one")
	}
}
