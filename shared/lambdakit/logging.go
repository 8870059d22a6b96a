package lambdakit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/botplatform/discord-sandboxes/shared/logkey"
)

// NewLogger returns a JSON logger writing to w at level. Records logged with a context that
// carries a Lambda context (every invocation's does) get the request id (logkey.RequestID).
// Keys follow Lambda's JSON log format ("timestamp", "level", "message").
//
// aws-lambda-go's lambdacontext.NewLogHandler does the same but writes only to os.Stdout, in
// the format and at the level of AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL; this logger
// is always JSON, takes its writer (tests, local runs) and its level from the caller.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: lambdacontext.ReplaceAttr,
	})
	return slog.New(requestIDHandler{h})
}

// SetupLogging makes NewLogger(w, level from LOG_LEVEL) the default slog logger and returns
// it. LOG_LEVEL is debug, info, warn or error (any case), info when unset; an unknown value
// falls back to info with a warning rather than stopping the function.
func SetupLogging(w io.Writer) *slog.Logger {
	level, err := ParseLevel(os.Getenv("LOG_LEVEL"))
	logger := NewLogger(w, level)
	slog.SetDefault(logger)
	if err != nil {
		logger.Warn("LOG_LEVEL ignored, logging at info", logkey.Error, err)
	}
	return logger
}

// ParseLevel parses a LOG_LEVEL value; empty means info.
func ParseLevel(s string) (slog.Level, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return slog.LevelInfo, nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", s)
	}
	return level, nil
}

// requestIDHandler adds the Lambda request id of the record's context.
type requestIDHandler struct {
	slog.Handler
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String(logkey.RequestID, lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
