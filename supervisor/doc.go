// Package supervisor runs one saturn instance: it starts the servers
// (netproc, diskproc) and the apps, hands every app its shared-memory
// channels, watches every process, restarts them by policy, and answers the
// CLI over a control socket.
//
// # Concurrency
//
// One goroutine, the loop, owns all of the supervisor's state: components,
// channels, timers. Everything else (process watchers, control sessions,
// timers) hands work to the loop as a closure through do, and waits for a
// result through call when it needs one. Nothing the loop runs may block on
// I/O that depends on another goroutine: slow work (calls to a server over
// its link, waiting for a component to become ready) runs in goroutines of
// its own, which report back through do.
//
// # Lifecycle of a component
//
//	starting ──ready──▶ running ──exit──▶ restarting ──back-off──▶ starting
//	    │                  │                  (policy)
//	    └──────exit────────┴──▶ stopped (policy or request) / failed (intensity)
//
// A server is ready when it says so; an app by its type (apptype.go): a
// simple one at once, a notify one when it attaches or says it is ready, or
// at ready_timeout if it stays silent. Servers start first, in order, and
// must report ready before apps start; stopping runs in reverse: apps, then
// servers. The supervisor creates every channel's region and keeps it for as
// long as the app lives, so a restarted server maps the same rings and bumps
// their epoch (see package ring).
package supervisor
