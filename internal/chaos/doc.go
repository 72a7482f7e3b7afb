// Package chaos is saturn's kill-anything test: it puts load and checking
// clients on the web server, kills netproc, diskproc and the web app at
// random moments with `saturn kill`, and holds the instance to the promises
// of docs/restart.md:
//
//   - every response that completes is byte-correct (each file's checksum
//     is known);
//   - every failure is a clean error (a refused or reset connection, or a
//     body cut short and reported so), never a hang or a truncated body
//     passed off as complete;
//   - after each kill the component is running again within a bound, and
//     the restart counters in status equal the kills;
//   - at the end nothing leaks: no process, descriptor, shared-memory
//     region or socket of the instance outlives it.
//
// It prints, per component, the kills, the median and worst time from a
// kill to the first request served again, and the requests failed per
// kill. TestChaos runs a short version in the suite on the kernel-socket
// backend, and TestChaosUserTCP on the usertcp backend where root and a
// TUN device are available; bench/chaos.sh runs a long one of either
// (BACKEND=usertcp).
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
