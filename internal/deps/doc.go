// Package deps holds the test that enforces saturn's dependency rules
// (docs/design.md, "Dependency rules"): which of saturn's packages may
// import which. It has no code of its own; `go test ./internal/deps` lists
// every package with `go list` and fails, naming the rule and its reason,
// on any import that breaks one.
//
// The rules hold for the code that ships, not for its tests: a test may
// import what it needs to stand up a peer in-process (appproc's tests run
// netproc through netproc/netproctest, for one).
package deps
