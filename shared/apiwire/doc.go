// Package apiwire is the sandbox API's wire format: the request and response bodies of every
// route of docs/api.md, and the problem document of its errors, as Go types with their JSON
// tags. shared/api encodes them and shared/cli decodes them, so each shape has one home and
// the two cannot drift apart.
//
// It imports only the standard library and shared/sandbox (the domain's status and error
// code types), so that the CLI links it without the server's drivers (pgx, go-redis) or the
// Lambda runtime; TestImportsOnlyTheStandardLibraryAndSandbox holds that, and shared/cli's
// TestCLILinksNoServerLibraries holds it for the CLI as a whole.
//
// The types carry no behaviour beyond reading a field: how the API fills them (rendering a
// sandbox for its caller, classifying recorded failures) is shared/api's.
package apiwire
