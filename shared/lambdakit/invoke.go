package lambdakit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// InvokeFile runs h once outside Lambda on the event in the JSON file at path and writes the
// response JSON to w, ending with a newline. The event goes through aws-lambda-go's own
// decoding and encoding (lambda.NewHandler), so a file that works here works as a Lambda
// test event.
func InvokeFile[In, Out any](ctx context.Context, h Handler[In, Out], path string, w io.Writer) error {
	payload, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading event: %w", err)
	}
	if !json.Valid(payload) {
		return fmt.Errorf("event file %s is not valid JSON", path)
	}
	response, err := lambda.NewHandler(h).Invoke(NewLocalContext(ctx), payload)
	if err != nil {
		return fmt.Errorf("invoking handler with %s: %w", path, err)
	}
	if !bytes.HasSuffix(response, []byte("\n")) {
		// A terminal or a pipe wants whole lines. Copy: response is a pooled buffer's memory.
		response = append(bytes.Clone(response), '\n')
	}
	if _, err := w.Write(response); err != nil {
		return fmt.Errorf("writing response: %w", err)
	}
	return nil
}

// NewLocalContext gives an invocation outside Lambda what the runtime gives one inside: a
// Lambda context with a fresh request id, so logs of one invocation can be told apart. A
// parent that already carries a Lambda context is returned as it is.
func NewLocalContext(parent context.Context) context.Context {
	if _, ok := lambdacontext.FromContext(parent); ok {
		return parent
	}
	return lambdacontext.NewContext(parent, &lambdacontext.LambdaContext{AwsRequestID: newRequestID()})
}

// newRequestID returns a random UUID (version 4), the shape of Lambda request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
