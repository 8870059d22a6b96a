package api

import (
	"context"
	"os"

	"github.com/botplatform/discord-sandboxes/shared/lambdakit"
	"github.com/botplatform/discord-sandboxes/shared/metrics"
)

// Run serves the API the way the process is running: in Lambda through the runtime API;
// outside it, once on the payload-2.0 event in invokeFile (printing the response) when that
// is set, else on the local loopback listener until ctx ends.
func Run(ctx context.Context, cfg Config, h *Handler, emitter *metrics.Emitter, invokeFile string) error {
	handler := lambdakit.Wrap("api", emitter, h.HandleEvent)
	switch {
	case lambdakit.InLambda():
		return lambdakit.Start(handler)
	case invokeFile != "":
		return lambdakit.InvokeFile(ctx, handler, invokeFile, os.Stdout)
	default:
		return ServeLocal(ctx, cfg, h, emitter)
	}
}
