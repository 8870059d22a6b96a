package clients

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
)

// unavailableStates are the SQLSTATEs that say the database cannot serve now, though the
// request was fine: retrying later can succeed.
var unavailableStates = map[string]bool{
	"57P01": true, // admin_shutdown
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now
	"53300": true, // too_many_connections
	"25006": true, // read_only_sql_transaction (a replica, or a failover in progress)
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
	"55P03": true, // lock_not_available (lock_timeout)
	"57014": true, // query_canceled (statement_timeout)
}

// IsUnavailable reports whether err says that PostgreSQL or Redis could not serve the request
// now (refused or dropped connections, timeouts, a server shutting down or read-only), as
// opposed to a request the stores refused: the API answers such errors 503 with Retry-After.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, pgconn.ErrConnClosed) { // a pooled connection pgx already knew was gone
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true // every network error: dial, read, write, timeouts
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableStates[pgErr.Code] || pgErr.Code[:2] == "08" // connection_exception
	}
	return false
}

// unavailableTexts are what the text of an error IsUnavailable reports carries, for failures
// recorded as text only (a sandbox's last_error, its teardown record): the network errors and
// the go-redis and pgconn messages of a store that could not serve. The SQLSTATEs come from
// unavailableStates.
var unavailableTexts = []string{
	"dial tcp", "dial unix", "connection refused", "connection reset", "broken pipe", "i/o timeout",
	"no route to host", "network is unreachable", "no such host", "use of closed network connection",
	"context deadline exceeded", "unexpected EOF", "failed to connect to", "server closed the connection",
	"conn closed", "redis: client is closed", "redis: connection pool timeout",
	"LOADING ", "READONLY ", "CLUSTERDOWN ", "TRYAGAIN ", "MASTERDOWN ",
}

// IsUnavailableText reports whether a recorded error text says what IsUnavailable says of an
// error: a store that could not serve at the time (a lock timeout is one, see
// IsLockTimeoutText).
func IsUnavailableText(s string) bool {
	if s == "" {
		return false
	}
	if state, ok := sqlState(s); ok && (unavailableStates[state] || strings.HasPrefix(state, "08")) {
		return true
	}
	for _, t := range unavailableTexts {
		if strings.Contains(s, t) {
			return true
		}
	}
	return strings.HasSuffix(s, ": EOF") || s == "EOF"
}

// IsLockTimeoutText reports whether a recorded error text is a lock timeout (SQLSTATE 55P03,
// lock_not_available): another session held a lock the statement waited for in vain.
func IsLockTimeoutText(s string) bool {
	state, ok := sqlState(s)
	return (ok && state == "55P03") || strings.Contains(s, "due to lock timeout")
}

// sqlState finds the last "(SQLSTATE XXXXX)" pgconn puts in a server error's text.
func sqlState(s string) (string, bool) {
	i := strings.LastIndex(s, "(SQLSTATE ")
	if i < 0 || len(s) < i+len("(SQLSTATE ")+5 {
		return "", false
	}
	return s[i+len("(SQLSTATE ") : i+len("(SQLSTATE ")+5], true
}
