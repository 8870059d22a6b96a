// Package routing is the core of the router function (docs/architecture.md, "Routing"): for
// each batch of ingress
// messages, each one Discord gateway dispatch, it decides where every event goes and delivers it.
//
//   - Guild extraction: gateway.Parse reads the event type, sequence and guild id without
//     decoding the payload.
//   - Route resolution (Resolver): the batch's distinct guilds are looked up in an in-process
//     cache (seconds), then in the Redis route cache in one round trip, then in PostgreSQL in one
//     query for what Redis did not know; answers are written back to both caches, "no sandbox"
//     included. A failing Redis tier is logged and counted, and resolution goes on without it.
//   - Decisions: a guild mapped to a running sandbox goes to the sandbox's stream; a guild
//     mapped to a sandbox in any other status is dropped and counted (a test guild must never
//     reach the production bot); protected, unmapped and guild-less events go to production.
//     The configured protected guilds (Options.ProtectedGuilds) are checked before any route,
//     so no cache entry, stale or forged, can send them elsewhere.
//   - Delivery: stream entries are appended in one pipelined round trip (XADD NOMKSTREAM with
//     an approximate MAXLEN, batch order kept per stream); production events are sent with
//     SendMessageBatch in groups of at most 10, concurrently, checking every entry's result;
//     poison messages go to the dead-letter queue the same way. The three run at the same
//     time, each under its own deadline (Options.RedisTimeout, Options.SQSTimeout), so a store
//     that does not answer fails only the messages bound for it, and costs the batch its
//     deadline.
//
// The core knows nothing of SQS events: it takes Messages and returns a Result whose Failed
// ids the Lambda adapter (package sqsadapter) reports as batch item failures. Poison messages
// (malformed, not a dispatch, too large, invalid guild id) are sent to the ingress dead-letter
// queue by the router itself (Options.DeadLetterQueueURL), with their reason as message
// attributes (AttributePoisonReason and the others), and are not failures; without that
// queue, or when the send fails, they are failures, so the queue's redrive policy moves them
// there. Transient delivery failures are retried by the queue. Nothing is dropped silently: every outcome is counted in the metrics catalog's
// router metrics, and every failure is logged with the message id and the reason, never the
// payload.
package routing
