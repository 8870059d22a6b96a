// Package archtest keeps the directions in which the project's packages import each other
// (docs/architecture.md, "Dependency rules"). It has no code: its test lists every package of
// the module with the project packages it may import, derived from the layers, and fails on
// an import the table does not allow and on a package the table does not know.
package archtest
