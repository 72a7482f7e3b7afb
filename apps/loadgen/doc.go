// Package loadgen is saturn's HTTP/1.1 load generator, as a library.
//
// Run opens Config.Connections keep-alive connections through Config.Dial
// (appproc's dialer on saturn's stack, the kernel's by default) and sends
// GET or HEAD requests for one URL, for a duration or a number of requests:
//
//   - closed loop (Rate 0), like wrk: each connection sends its next
//     request when the previous response has ended;
//   - open loop (Rate > 0), like wrk2: requests are scheduled at a constant
//     total rate, and latency is measured from each request's scheduled
//     time, so that a server stall shows up in every request it delayed
//     (the coordinated-omission correction) instead of in one.
//
// Every response is read to its end as its framing says (Content-Length or
// chunked, RFC 9112 §6.3); a body that ends early is a read error, never a
// success. Each request is counted exactly once: as a response (whose
// status may still be an error) or as a failure of one kind. Failed
// requests are not retried; a connection that failed or was closed by the
// server is dialled again for the next request.
//
// The Report gives responses and bytes per second, latency percentiles from
// an HDR histogram, errors by kind and the status codes seen, as text
// (String) or JSON; with the latency distribution by percentile and the run
// over time (timeline.go), which WriteHTML draws as a self-contained page
// (html.go). Config.Progress reports the run as it goes, with the current
// rate, for a progress line.
package loadgen
