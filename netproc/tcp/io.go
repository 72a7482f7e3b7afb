package tcp

import (
	"saturn/netproc/tcp/seqnum"
)

// InputKind says what an Input carries.
type InputKind uint8

// The inputs Step accepts: a received segment, a timer expiry, or a call
// from the application.
const (
	InSegment      InputKind = iota + 1 // Seg arrived from the peer
	InTimer                             // the deadline last reported in Output.Timer passed
	InConnect                           // active open (Connect)
	InSend                              // queue Data for sending
	InRead                              // copy readable bytes into Data and consume them
	InConsume                           // the app has taken N bytes through ReadableViews
	InShutdown                          // no more sends: queue a FIN (shutdown(SHUT_WR))
	InClose                             // the app is done with the connection (close(2))
	InAbort                             // reset the connection (close with SO_LINGER 0)
	InSetOption                         // set Opt to Value
	InPacketTooBig                      // an ICMP "fragmentation needed" for this connection (PTB)
)

// Option names a setting changed with InSetOption.
type Option uint8

// The options InSetOption understands. Durations are given in nanoseconds.
const (
	OptNoDelay      Option = iota + 1 // Value != 0 turns Nagle off
	OptKeepAlive                      // Value != 0 turns keep-alive on
	OptKeepIdle                       // idle time before the first probe
	OptKeepInterval                   // time between probes
	OptKeepCount                      // unanswered probes before the connection fails
)

// ConnectParams are the arguments of an active open. The ISS and the
// timestamp offset are inputs so that the core holds no secret and draws no
// random numbers: the shell computes them with ISN and TSOffset.
type ConnectParams struct {
	Tuple    Tuple
	ISS      seqnum.Value
	TSOffset uint32
	Config   Config
}

// Input is one event for Step. Only the fields of its Kind are read.
type Input struct {
	Kind InputKind

	// Seg is the received segment (InSegment). Its Payload is read during
	// the call only: the bytes that fit the window are copied into the
	// receive buffer, so the caller may reuse the packet once Step returns.
	Seg Segment

	// Data is the bytes to queue (InSend; copied, not retained) or the
	// destination of InRead.
	Data []byte

	// N is the byte count of InConsume.
	N int

	// Opt and Value are the option and its new value (InSetOption).
	Opt   Option
	Value int64

	// Connect holds the arguments of InConnect.
	Connect ConnectParams

	// PTB is what an ICMP "fragmentation needed" says (InPacketTooBig).
	PTB PacketTooBig
}

// Wake is a set of application wake-ups raised by a Step.
type Wake uint8

// The wake-ups. The shell turns them into completions for blocked app calls.
const (
	WakeConnected  Wake = 1 << iota // the handshake completed (ESTABLISHED)
	WakeReadable                    // bytes became readable
	WakeWritable                    // send-buffer space was freed
	WakePeerClosed                  // the peer's FIN arrived: EOF after the readable bytes
	WakeError                       // the connection failed; Output.Err says why
	WakeClosed                      // the connection reached CLOSED and takes no more input
)

func (w Wake) String() string {
	names := [...]string{"connected", "readable", "writable", "peer-closed", "error", "closed"}
	s := ""
	for i, n := range names {
		if w&(1<<i) != 0 {
			if s != "" {
				s += " "
			}
			s += n
		}
	}
	return s
}

// Output collects what Steps want done. The caller owns it and may pass the
// same Output to several Steps (of one connection) before acting on it;
// Reset empties it and keeps the segment slice's storage.
type Output struct {
	// Segments are to be transmitted in order. A segment's Payload and
	// Payload2 alias the connection's send buffer; the caller copies or
	// transmits them before the connection's next InSend. (The core writes
	// the send buffer only during InSend, and only over bytes already
	// acknowledged, so other inputs, batched into the same Output, leave
	// earlier payloads intact.) Segments from a Listener carry no payload.
	Segments []Segment

	// Wake accumulates wake-ups; Err is set with WakeError.
	Wake Wake
	Err  error

	// N is the number of bytes an InSend queued or an InRead copied.
	N int

	// Freed accumulates the send-buffer bytes released by acknowledgments.
	Freed int

	// Readable is the number of bytes readable after the last Step.
	Readable int

	// Timer is the connection's single earliest deadline after the last
	// Step, or zero for none. It replaces any deadline reported before: the
	// caller arms one timer per connection at this instant and, when it
	// fires, Steps the connection with InTimer. A spurious or early InTimer
	// is harmless.
	Timer Time

	// Reuse is set when a TIME-WAIT connection received a SYN that may open
	// a new incarnation of the same tuple (RFC 9293, 3.10.7.4; RFC 6191).
	// The connection is now CLOSED; the caller frees it and hands the same
	// segment to the listener.
	Reuse bool
}

// Reset empties o for reuse.
func (o *Output) Reset() {
	*o = Output{Segments: o.Segments[:0]}
}

// Mem is the memory a caller lends the core for one Step: the connection's
// two circular byte buffers and the counters to update. The buffers' sizes
// are fixed when the connection opens and must be the same on every Step
// (Step panics otherwise); their contents must be preserved between Steps,
// which is what lets them live in shared memory. The core holds no reference
// to any of them after Step returns. Stats may be nil.
type Mem struct {
	Send, Recv []byte
	Stats      *Stats
}
