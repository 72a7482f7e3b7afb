// Package usertcp is netproc's "usertcp" backend: saturn's own TCP/IPv4
// stack over a TUN device, as the imperative shell around the purely
// functional TCP core (package tcp) and IP layer (package ipv4). It runs
// on netproc's event loop and offers the readiness boundary of package
// backend, so that netproc's handler, the rings and the apps are the same
// whichever stack moves the bytes.
//
// # The pieces
//
//   - The link (device.go): a TUN device in a network namespace (package
//     link), with the virtio-net header and the kernel's checksum and TSO
//     offloads when it takes them. Its descriptor sits in the loop's epoll
//     set and is read in batches with TryRead, with no goroutine in
//     between; an impaired link (netproc's own netem) or a test's device is
//     read by a goroutine that hands batches over through an eventfd.
//     Everything passes a capture tap (capture.go), for `saturn capture`.
//   - IP (input.go): every packet goes through ipv4.Endpoint, which
//     validates it, reassembles fragments, answers pings and sends
//     protocol-unreachable; TCP segments are parsed and checked (checksum,
//     offsets, options) by package header before the core sees them.
//   - Demultiplexing (input.go, listener.go, ports.go): a map from the
//     tuple to the connection, then the listener of the port (with its SYN
//     backlog, SYN cookies and accept queue), then a RST for a closed port.
//   - Connections (conn.go, stack.go): each lives in a record of the
//     connection table, in persistent memory (table.go), where the core
//     steps it in place; its buffers are the record's slot. After every
//     Step the shell carries out the core's output: segments become IPv4
//     packets (output.go; consecutive full segments become one GSO packet),
//     the deadline goes to the timer heap (timers.go: one heap entry per
//     connection at most, one timerfd for all), wake-ups become readiness
//     events for the handler.
//   - Loopback (output.go): segments to our own address or to 127/8 stay
//     in the stack, queued and delivered when the operation settles.
//   - Memory (reclaim.go): idle connections give back the pages of their
//     emptied buffers; the table is sparse until used.
//   - Restarts (recover.go, resume.go, listenrec.go): a new incarnation
//     finds the table the dead one left, takes over the connections their
//     apps had closed, and resets those apps held, unless resume is on (the
//     default): then it rebuilds the apps' listeners from their records,
//     puts their half-open and not-yet-accepted children back in their
//     queues, keeps the connections (those still connecting included) and
//     listeners for their apps' channels to claim, and serves sends and
//     receives by stream offsets so that what appproc replays is done
//     exactly once. A hold route in the namespace (link.EnsureHold) drops
//     what is sent to saturn while no TUN device is there, so that it is
//     sent again rather than refused.
//
// # Operations and wake-ups
//
// Everything the stack does runs inside an operation: a call from the
// handler (Read, Write, Accept, ...) or an event (packets to read, a timer).
// An operation's Steps queue packets and wake-ups; when the outermost one
// ends it settles: packets are written in one batch, local segments are
// delivered, and wake-ups reach the handler's Notify, which may call back
// in (those calls settle with the outer operation). Wake-ups raised during
// a call from the handler are not delivered inside that call, since the
// handler may not yet hold the socket it is making (Accept, Connect): the
// stack posts their delivery to the loop instead.
package usertcp
