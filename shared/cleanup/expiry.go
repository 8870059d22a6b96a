package cleanup

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/logkey"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// ExtendBy is the extension the warning suggests.
const ExtendBy = "12h"

// ExpiryWarning tells an owner that a sandbox is about to expire: the warning a dry run lists
// (apiwire), and how long the sandbox had left when it was written.
type ExpiryWarning struct {
	apiwire.ExpiryWarning
	TimeLeft time.Duration
}

func warningFor(sb *sandbox.Sandbox, now time.Time) ExpiryWarning {
	return ExpiryWarning{
		ExpiryWarning: apiwire.ExpiryWarning{SandboxID: sb.ID, Name: sb.Name, Owner: sb.Owner, ExpiresAt: sb.ExpiresAt.UTC()},
		TimeLeft:      sb.TimeLeft(now),
	}
}

// ExtendCommand is the CLI command that keeps the sandbox.
func (w ExpiryWarning) ExtendCommand() string {
	return "sandbox extend " + w.Name + " --by " + ExtendBy
}

// Subject is the notification subject: ASCII, one line, well under SNS's 100 characters
// (names are at most 32).
func (w ExpiryWarning) Subject() string {
	return fmt.Sprintf("Sandbox %s expires at %s", w.Name, w.ExpiresAt.Format("2006-01-02 15:04 UTC"))
}

// Message is the notification body.
func (w ExpiryWarning) Message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Sandbox %q (id %s), owned by %s, expires at %s (in %s).\n\n",
		w.Name, w.SandboxID, w.Owner, w.ExpiresAt.Format(time.RFC3339), w.TimeLeft.Round(time.Minute))
	b.WriteString("When it expires it is torn down: its guild mappings, Redis keys and event stream, " +
		"database schema and role are deleted, and its guilds' events go nowhere until they are mapped again.\n\n")
	fmt.Fprintf(&b, "To keep it longer, extend it:\n\n    %s\n", w.ExtendCommand())
	return b.String()
}

// Publisher delivers expiry warnings.
type Publisher interface {
	Publish(ctx context.Context, w ExpiryWarning) error
}

// SNSAPI is the part of the SNS client that SNSPublisher uses.
type SNSAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SNSPublisher publishes warnings to an SNS topic (EXPIRY_WARNING_TOPIC_ARN). The sandbox
// id, name and owner are message attributes too, for subscription filter policies.
type SNSPublisher struct {
	Client   SNSAPI
	TopicARN string
}

// Publish sends one warning.
func (p SNSPublisher) Publish(ctx context.Context, w ExpiryWarning) error {
	attr := func(v string) snstypes.MessageAttributeValue {
		return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	_, err := p.Client.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(p.TopicARN),
		Subject:  aws.String(w.Subject()),
		Message:  aws.String(w.Message()),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"sandbox_id":   attr(w.SandboxID),
			"sandbox_name": attr(w.Name),
			"owner":        attr(w.Owner),
		},
	})
	if err != nil {
		return fmt.Errorf("publish expiry warning for %s to %s: %w", w.SandboxID, p.TopicARN, err)
	}
	return nil
}

// LogPublisher logs warnings, when no topic is configured.
type LogPublisher struct{ Logger *slog.Logger }

// Publish logs one warning.
func (p LogPublisher) Publish(ctx context.Context, w ExpiryWarning) error {
	p.Logger.InfoContext(ctx, "sandbox expiry warning (no EXPIRY_WARNING_TOPIC_ARN: logged only)",
		logkey.Sandbox, w.SandboxID, logkey.Name, w.Name, logkey.Owner, w.Owner, "expires_at", w.ExpiresAt, "subject", w.Subject(),
		"extend", w.ExtendCommand())
	return nil
}

// ExpiryReport is what one round of expiry warnings did (part of the run's report).
type ExpiryReport = apiwire.ExpiryReport

// expiryBatch caps the warnings of one run; the rest go out on the next.
const expiryBatch = 500

// SendExpiryWarnings warns the owner of every running sandbox that expires within the
// warning window and has not been warned: it marks the sandbox warned with one conditional
// update (so concurrent runs send one warning), then publishes, and takes the mark back when
// publishing fails so a later run retries. A crash between the two loses that one warning
// rather than risking two. Extending a sandbox clears the mark.
func (s *Service) SendExpiryWarnings(ctx context.Context) (ExpiryReport, error) {
	var rep ExpiryReport
	now := s.now()
	until := now.Add(s.warnWindow)
	due, err := s.expiry.ExpiringUnwarned(ctx, now, until, expiryBatch)
	if err != nil {
		return rep, fmt.Errorf("cleanup: list sandboxes to warn: %w", err)
	}
	for _, c := range due {
		sb, ok, err := s.expiry.ClaimExpiryWarning(ctx, c.ID, now, until)
		if err != nil {
			return rep, fmt.Errorf("cleanup: mark %s warned: %w", c.ID, err)
		}
		if !ok {
			continue // another run warned it, or it was extended or destroyed meanwhile
		}
		w := warningFor(sb, now)
		if err := s.publisher.Publish(ctx, w); err != nil {
			rep.Failed++
			s.log.ErrorContext(ctx, "expiry warning not delivered; the next run retries", logkey.Sandbox, sb.ID, logkey.Error, err)
			if rerr := s.expiry.ReleaseExpiryWarning(context.WithoutCancel(ctx), sb.ID, now); rerr != nil {
				s.log.ErrorContext(ctx, "expiry warning mark not taken back; this sandbox gets no warning", logkey.Sandbox, sb.ID, logkey.Error, rerr)
			}
			continue
		}
		rep.Sent++
		if err := s.auditor.Audit(ctx, s.actor, controlplane.ActionExpiryWarned, sb.ID, map[string]any{
			"owner": sb.Owner, "expires_at": sb.ExpiresAt,
		}); err != nil {
			s.log.ErrorContext(ctx, "expiry warning sent but not audited", logkey.Sandbox, sb.ID, logkey.Error, err)
		}
	}
	return rep, nil
}

// dueExpiryWarnings lists the warnings SendExpiryWarnings would send, changing nothing.
func (s *Service) dueExpiryWarnings(ctx context.Context) (ExpiryReport, error) {
	now := s.now()
	due, err := s.expiry.ExpiringUnwarned(ctx, now, now.Add(s.warnWindow), expiryBatch)
	if err != nil {
		return ExpiryReport{}, fmt.Errorf("cleanup: list sandboxes to warn: %w", err)
	}
	rep := ExpiryReport{Due: make([]apiwire.ExpiryWarning, len(due))}
	for i, sb := range due {
		rep.Due[i] = warningFor(sb, now).ExpiryWarning
	}
	return rep, nil
}
