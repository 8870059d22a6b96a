package clients

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
		if !IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = false", err)
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
		if IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = true", err)
		}
	}
}
