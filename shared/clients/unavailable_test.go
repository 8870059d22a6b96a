package clients_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/botplatform/discord-sandboxes/shared/clients"
	"github.com/botplatform/discord-sandboxes/shared/internal/testenv"
)

func TestIsUnavailable(t *testing.T) {
	unavailable := []error{
		context.DeadlineExceeded,
		fmt.Errorf("query: %w", io.ErrUnexpectedEOF),
		fmt.Errorf("dial: %w", syscall.ECONNREFUSED),
		&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
		redis.ErrPoolTimeout,
		&pgconn.PgError{Code: "57P01"}, // admin_shutdown
		&pgconn.PgError{Code: "25006"}, // read_only_sql_transaction
		&pgconn.PgError{Code: "08006"}, // connection_failure
		&pgconn.PgError{Code: "53300"}, // too_many_connections
	}
	for _, err := range unavailable {
		if !clients.IsUnavailable(err) {
			t.Errorf("clients.IsUnavailable(%v) = false", err)
		}
	}
	refused := []error{
		nil,
		errors.New("invalid input"),
		&pgconn.PgError{Code: "23505"}, // unique_violation: the request, not the store
		&pgconn.PgError{Code: "22P05"}, // untranslatable_character
		redis.Nil,
		context.Canceled, // the caller went away
	}
	for _, err := range refused {
		if clients.IsUnavailable(err) {
			t.Errorf("clients.IsUnavailable(%v) = true", err)
		}
	}
}

// A failure recorded as text (last_error, a teardown record) is classified like the error it
// was: the texts of the errors IsUnavailable reports, and of the ones it does not.
func TestUnavailableTextAgreesWithIsUnavailable(t *testing.T) {
	_, dialErr := net.Dial("tcp", testenv.ClosedAddr(t))
	if dialErr == nil {
		t.Fatal("dialing a closed port succeeded")
	}
	lockTimeout := &pgconn.PgError{Severity: "ERROR", Message: "canceling statement due to lock timeout", Code: "55P03"}
	unavailable := []error{
		dialErr,
		context.DeadlineExceeded,
		fmt.Errorf("query: %w", io.ErrUnexpectedEOF),
		fmt.Errorf("dial: %w", syscall.ECONNREFUSED),
		&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
		redis.ErrPoolTimeout,
		redis.ErrClosed,
		fmt.Errorf("provision schema and role of x: %w", pgconn.ErrConnClosed),
		&pgconn.PgError{Severity: "FATAL", Message: "terminating connection due to administrator command", Code: "57P01"},
		&pgconn.PgError{Severity: "ERROR", Message: "cannot execute CREATE SCHEMA in a read-only transaction", Code: "25006"},
		&pgconn.PgError{Severity: "FATAL", Message: "connection failure", Code: "08006"},
		&pgconn.PgError{Severity: "FATAL", Message: "sorry, too many clients already", Code: "53300"},
		fmt.Errorf("drop schema and role of x: %w", lockTimeout),
	}
	for _, err := range unavailable {
		if !clients.IsUnavailable(err) || !clients.IsUnavailableText("delete_keys: "+err.Error()) {
			t.Errorf("%q: IsUnavailable %v, IsUnavailableText %v", err, clients.IsUnavailable(err), clients.IsUnavailableText(err.Error()))
		}
	}
	refused := []error{
		errors.New("invalid input"),
		errors.New("the stream's consumer group could not be created"),
		&pgconn.PgError{Severity: "ERROR", Message: "duplicate key value violates unique constraint", Code: "23505"},
		&pgconn.PgError{Severity: "ERROR", Message: `relation "sandbox_template.t" does not exist`, Code: "42P01"},
		&pgconn.PgError{Severity: "ERROR", Message: "unsupported Unicode escape sequence", Code: "22P05"},
		redis.Nil,
		context.Canceled,
	}
	for _, err := range refused {
		if clients.IsUnavailable(err) || clients.IsUnavailableText(err.Error()) || clients.IsLockTimeoutText(err.Error()) {
			t.Errorf("%q is classified as unavailable or a lock timeout", err)
		}
	}
	if !clients.IsLockTimeoutText(fmt.Errorf("drop_schema_and_role: drop: %w", lockTimeout).Error()) || clients.IsLockTimeoutText(dialErr.Error()) {
		t.Error("lock timeouts are not told from other failures")
	}
	if clients.IsUnavailableText("") || clients.IsLockTimeoutText("") {
		t.Error("no error is no failure")
	}
}
