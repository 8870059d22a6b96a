// Package cli is the `sandbox` command-line tool (docs/cli.md): the commands developers use
// every day (create, list, status, extend, destroy, connect, guilds, route, and the admin
// cleanup commands), the client of the API of docs/api.md that they share, the rendering of
// its answers for people (tables, colors and spinners on a terminal only) and for scripts
// (--json), and request authentication: SigV4 with the standard AWS credential chain against
// API Gateway, a bearer token against the local stack.
//
// cmd/sandbox only wires the process (arguments, streams, signals) to Run. Everything the
// process offers comes in through Env, so tests drive the real commands in-process.
package cli
