// Package chaos is saturn's kill-anything test: it puts load and checking
// clients on the web server (keep-alive connections, and a new connection
// per request), kills netproc, diskproc and the web app at random moments
// with `saturn kill`, restarts the web app gracefully with `saturn
// restart`, and holds the instance to the promises of docs/restart.md:
//
//   - every response that completes is byte-correct (each file's checksum
//     is known);
//   - every failure is a clean error (a refused or reset connection, or a
//     body cut short and reported so), never a hang or a truncated body
//     passed off as complete;
//   - after each kill the component is running again within a bound, and
//     the restart counters in status equal the kills;
//   - a graceful restart of the web app fails no request at all, of any
//     client or of the load generator (nor does a netproc kill, where the
//     backend keeps every connection and listener across it: Options.Lossless);
//   - at the end nothing leaks: no process, descriptor, shared-memory
//     region or socket of the instance outlives it.
//
// It prints, per kind of event, the count, the median and worst time from
// the event to the first request served again, and the requests failed per
// event (each failure counted against the event before it). TestChaos
// runs a short version in the suite on the kernel-socket backend, and
// TestChaosUserTCP and TestChaosUserTCPResume on the usertcp backend
// (without and with resume) where root and a TUN device are available;
// bench/chaos.sh runs a long one of any (BACKEND=usertcp, usertcp-resume).
//
// On usertcp the web server is reached from inside saturn's namespace:
// the Go clients, the probes and the load generator through a
// NetnsDialer, curl through `ip netns exec`. A client then also fails
// cleanly with "no route" (Unreachable) while netproc's TUN device is
// gone. The run adds the backend's own promises: after each netproc
// restart, status shows the same backend, namespace, address and peer;
// at the end the namespace holds exactly one TUN device (no dead
// incarnation's lingers), and after stop the namespace is gone and no
// persistent TUN device was left.
package chaos
