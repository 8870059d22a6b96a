package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// Invocation is one invocation of the api function in Lambda: an API Gateway payload-2.0
// event, or the migrate step of a deployment, {"migrate": true} (controlplane.MigrateRequest).
// API Gateway only ever sends payload-2.0 events, which have no top-level "migrate": only a
// direct invocation (lambda:InvokeFunction, the deployer's right) asks for the migrate step.
type Invocation struct {
	// Migrate is set for the migrate step; Event otherwise.
	Migrate *controlplane.MigrateRequest
	Event   events.APIGatewayV2HTTPRequest
}

// UnmarshalJSON tells the two apart by the top-level "migrate" key. A migrate payload must
// be exactly a MigrateRequest with migrate true: a typo is refused, not served as an API event.
func (inv *Invocation) UnmarshalJSON(b []byte) error {
	var probe struct {
		Migrate json.RawMessage `json:"migrate"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	if probe.Migrate == nil {
		*inv = Invocation{}
		return json.Unmarshal(b, &inv.Event)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var req controlplane.MigrateRequest
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("migrate invocation: %w", err)
	}
	if !req.Migrate {
		return errors.New(`migrate invocation: "migrate" must be true`)
	}
	*inv = Invocation{Migrate: &req}
	return nil
}

// SchemaCheck says whether the database's schema is the one this build needs
// (controlplane.SchemaGate).
type SchemaCheck interface {
	Check(ctx context.Context) error
}

// Function is the api function's Lambda handler (wrap Handle with lambdakit.Wrap): API events
// go to the API once the schema is current, and the migrate step runs on request. The api
// function hosts the migrate step, so an outdated schema cannot stop its cold start: its
// API events fail with the schema's error until the step has run.
type Function struct {
	API *Handler
	// Schema holds API events back while the schema is outdated; nil checks nothing.
	Schema SchemaCheck
	// Migrate runs the migrate step (controlplane.MigrateStep on the api's pool); nil refuses it.
	Migrate func(ctx context.Context, req controlplane.MigrateRequest) (controlplane.MigrateReport, error)
}

// Handle serves one invocation: a migrate step answers its controlplane.MigrateReport, an API
// event its payload-2.0 response.
func (f Function) Handle(ctx context.Context, rec *metrics.Recorder, inv Invocation) (any, error) {
	if inv.Migrate != nil {
		if f.Migrate == nil {
			return nil, errors.New("this function does not run the migrate step")
		}
		report, err := f.Migrate(ctx, *inv.Migrate)
		if err != nil {
			return nil, err
		}
		f.API.log.InfoContext(ctx, "migrate step done", "applied", report.Applied, "version", report.Version, "router_role", report.RouterRole,
			"worker_applied", report.WorkerApplied, "worker_version", report.WorkerVersion)
		for _, w := range report.Warnings {
			f.API.log.WarnContext(ctx, "server setting", "warning", w)
		}
		return report, nil
	}
	if f.Schema != nil {
		if err := f.Schema.Check(ctx); err != nil {
			return nil, err
		}
	}
	return f.API.HandleEvent(ctx, rec, inv.Event)
}
