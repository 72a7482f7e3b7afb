package tcp

import (
	"fmt"
	"time"

	"saturn/netproc/tcp/seqnum"
)

// State is a connection state (RFC 9293, 3.3.2). LISTEN is not among them:
// a listening socket is a Listener.
type State uint8

// The connection states.
const (
	StateClosed State = iota
	StateSynSent
	StateSynReceived
	StateEstablished
	StateFinWait1
	StateFinWait2
	StateCloseWait
	StateClosing
	StateLastAck
	StateTimeWait
	numStates
)

var stateNames = [numStates]string{
	"CLOSED", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
	"FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT",
}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// synchronized reports whether the state is one of RFC 9293's synchronized
// states, in which the RFC 5961 checks apply.
func (s State) synchronized() bool { return s >= StateEstablished }

// Table sizes. They bound a connection's memory: the data itself lives in
// the caller's buffers, these only describe it.
const (
	// oooSlots is the number of disjoint out-of-order ranges kept; a
	// segment that would need another is dropped and retransmitted later.
	oooSlots = 16
	// sackSlots is the number of SACKed ranges the sender remembers.
	sackSlots = 32
)

// Conn is one TCP connection: plain data of fixed size, with no pointers,
// slices, maps or interfaces, so that it may live in shared memory and
// outlive the process that stepped it. Its zero value is a CLOSED
// connection ready for InConnect. Every change goes through Step.
type Conn struct {
	state     State
	passive   bool // opened by a listener: failing in SYN-RECEIVED is silent
	appClosed bool // the application closed it (an orphan from now on)
	err       errCode
	cfg       Config
	tuple     Tuple
	sndSize   uint32 // length of the send buffer, fixed at open
	rcvSize   uint32 // length of the receive buffer, fixed at open

	snd  sendState
	rcv  recvState
	ts   tsState
	sack scoreboard
	rtt  rttState
	cwv  cwvState
	rec  recovery
	rack rackState
	ecn  ecnState
	pmtu pmtuState
	cc   CCState
	tm   timers
	lim  limits
}

// sendState is the send sequence space (RFC 9293, 3.3.1) and the send
// buffer. The buffer holds the bytes from bufStart on: unacknowledged bytes
// first, then bytes not yet sent.
type sendState struct {
	iss    seqnum.Value
	una    seqnum.Value // oldest unacknowledged sequence number
	nxt    seqnum.Value // next new sequence number: one past the highest sent
	wnd    uint32       // peer's window, scaled
	maxWnd uint32       // largest window the peer has offered (RFC 5961 MAX.SND.WND)
	wl1    seqnum.Value // segment sequence number of the last window update
	wl2    seqnum.Value // segment acknowledgment number of the last window update
	shift  uint8        // peer's window scale
	// wsAgreed: both SYNs carried the window-scale option (RFC 7323, 2.2).
	wsAgreed bool
	mss      uint16 // effective send MSS before options (RFC 9293, 3.7.1)

	bufStart  seqnum.Value // sequence number of the send buffer's first byte
	head      uint32       // offset of that byte in the buffer
	buffered  uint32       // bytes in the buffer
	finQueued bool         // shutdown requested: FIN follows the last byte
	lastSend  Time         // when data was last sent (restartAfterIdle)
}

// finSeq returns the sequence number the FIN occupies once queued.
func (s *sendState) finSeq() seqnum.Value { return s.bufStart.Add(seqnum.Size(s.buffered)) }

// finAcked reports whether our FIN has been acknowledged.
func (s *sendState) finAcked() bool { return s.finQueued && s.una.GreaterThan(s.finSeq()) }

// tsState is the RFC 7323 timestamp state.
type tsState struct {
	ok        bool   // negotiated
	offset    uint32 // added to our clock: a per-connection random offset
	recent    uint32 // TS.Recent
	recentAt  Time   // when TS.Recent was set (the 24-day PAWS rule)
	haveRecnt bool
}

// tsNow returns our timestamp clock: milliseconds plus the offset.
func (c *Conn) tsNow(now Time) uint32 {
	return uint32(int64(now)/int64(time.Millisecond)) + c.ts.offset
}

// env is what a single Step works with besides the connection: the time,
// the caller's buffers and counters, and the output being built.
type env struct {
	now      Time
	snd, rcv []byte
	st       *Stats
	out      *Output
	frto     frtoAcked // what the ACK being processed delivered, for F-RTO
}

// newEnv is the environment of one Step at now, over mem's buffers, counting
// into mem.Stats or, when the caller keeps none, into counters thrown away
// after the step. Only that case allocates: a scratch Stats on Step's frame
// would escape through env's pointer and cost an allocation on every Step.
func newEnv(now Time, mem Mem, out *Output) env {
	if now <= 0 {
		panic("tcp: Step called with a non-positive time")
	}
	e := env{now: now, snd: mem.Send, rcv: mem.Recv, st: mem.Stats, out: out}
	if e.st == nil {
		e.st = new(Stats)
	}
	return e
}

// Step advances the connection by one input at time now. Effects are
// appended to out (segments, wake-ups) and out.Timer and out.Readable are
// set to their new values. The error is for application calls that cannot
// be carried out (for example InSend after InShutdown, or any call on a
// failed connection); received segments and timers never return one.
//
// Step panics if mem's buffer lengths differ from those fixed at open: that
// is a broken caller, not a network event.
func (c *Conn) Step(in Input, now Time, mem Mem, out *Output) error {
	e := newEnv(now, mem, out)
	if in.Kind != InConnect && c.state != StateClosed {
		if uint32(len(mem.Send)) != c.sndSize || uint32(len(mem.Recv)) != c.rcvSize {
			panic(ErrBufferSize)
		}
	}
	var err error
	switch in.Kind {
	case InSegment:
		c.segmentArrived(&e, &in.Seg)
	case InTimer:
		c.timerFired(&e)
	case InConnect:
		err = c.connect(&e, &in.Connect)
	case InSend:
		err = c.appSend(&e, in.Data)
	case InRead:
		err = c.appRead(&e, in.Data)
	case InConsume:
		err = c.appConsume(&e, in.N)
	case InShutdown:
		err = c.appShutdown(&e)
	case InClose:
		err = c.appClose(&e)
	case InAbort:
		err = c.appAbort(&e)
	case InSetOption:
		err = c.appSetOption(&e, in.Opt, in.Value)
	case InPacketTooBig:
		c.packetTooBig(&e, &in.PTB)
	default:
		err = ErrInvalid
	}
	out.Timer = c.nextDeadline()
	out.Readable = int(c.rcv.readable)
	return err
}

// State returns the connection's state.
func (c *Conn) State() State { return c.state }

// Err returns the error the connection failed with, or nil.
func (c *Conn) Err() error { return c.err.err() }

// Tuple returns the connection's endpoints.
func (c *Conn) Tuple() Tuple { return c.tuple }

// Readable returns the number of bytes the application can read.
func (c *Conn) Readable() int { return int(c.rcv.readable) }

// PeerClosed reports whether the peer's FIN has arrived: once Readable is
// zero the application reads EOF.
func (c *Conn) PeerClosed() bool { return c.rcv.finRcvd }

// SendSpace returns the number of bytes InSend can queue now.
func (c *Conn) SendSpace() int {
	if c.snd.finQueued {
		return 0
	}
	return int(c.sndSize - c.snd.buffered)
}

// Unsent returns the number of queued bytes not yet acknowledged.
func (c *Conn) Unsent() int { return int(c.snd.buffered) }

// Done reports whether the connection is CLOSED and its application has
// released it (InClose or InAbort), or it is a listener's child that died
// before the application accepted it: the caller may free it.
func (c *Conn) Done() bool { return c.state == StateClosed && c.appClosed }

// ReadableViews returns the readable bytes as at most two slices of the
// receive buffer rcv (two when they wrap around its end). They stay valid
// until the next Step; after copying from them the application reports the
// bytes taken with InConsume.
func (c *Conn) ReadableViews(rcv []byte) (a, b []byte) {
	if uint32(len(rcv)) != c.rcvSize || c.rcv.readable == 0 {
		return nil, nil
	}
	h, n := c.rcv.head, c.rcv.readable
	if h+n <= c.rcvSize {
		return rcv[h : h+n], nil
	}
	return rcv[h:], rcv[:h+n-c.rcvSize]
}

// BufferUse says where the connection's buffers stand, for a shell that
// gives back the memory pages of buffers that have emptied (their contents
// need not be kept once consumed).
type BufferUse struct {
	// SendEmpty: nothing is queued in the send buffer; SendNext is the
	// offset at which the next queued byte will be written, and SendSeq
	// its sequence number.
	SendEmpty bool
	SendNext  uint32
	SendSeq   seqnum.Value
	// RecvEmpty: nothing is readable and no out-of-order data is held;
	// RecvNext is the offset at which the next in-order byte will land,
	// and RecvSeq its sequence number (RCV.NXT).
	RecvEmpty bool
	RecvNext  uint32
	RecvSeq   seqnum.Value
}

// BufferUse reports where the connection's buffers stand. A connection that
// never opened reports both empty at offset zero.
func (c *Conn) BufferUse() BufferUse {
	if c.sndSize == 0 || c.rcvSize == 0 {
		return BufferUse{SendEmpty: true, RecvEmpty: true}
	}
	return BufferUse{
		SendEmpty: c.snd.buffered == 0,
		SendNext:  (c.snd.head + c.snd.buffered) % c.sndSize,
		SendSeq:   c.dataEnd(),
		RecvEmpty: c.rcv.readable == 0 && c.rcv.nOOO == 0,
		RecvNext:  (c.rcv.head + c.rcv.readable) % c.rcvSize,
		RecvSeq:   c.rcv.nxt,
	}
}

// Info is a snapshot of a connection's protocol variables, for status
// output (like `ss -i`) and tests.
type Info struct {
	State            State
	ISS, IRS         seqnum.Value
	SndUna, SndNxt   seqnum.Value
	SndWnd           uint32
	RcvNxt           seqnum.Value
	RcvWnd           uint32
	SndShift         uint8
	RcvShift         uint8
	MSS              uint16
	Cwnd, Ssthresh   uint32
	SRTT, RTTVar     time.Duration
	RTO              time.Duration
	Backoff          uint8
	Buffered         uint32
	Readable         uint32
	OOORanges        int
	SACKed           int
	TS, SACK         bool
	Recovery         string
	CC               CCAlgorithm
	DupAcks          uint8
	AppClosed        bool
	PeerFIN, OurFINq bool
}

// Info returns a snapshot of the connection's variables.
func (c *Conn) Info() Info {
	return Info{
		State: c.state, ISS: c.snd.iss, IRS: c.rcv.irs,
		SndUna: c.snd.una, SndNxt: c.snd.nxt, SndWnd: c.snd.wnd,
		RcvNxt: c.rcv.nxt, RcvWnd: uint32(c.rcv.nxt.Size(seqnum.Max(c.rcv.adv, c.rcv.nxt))),
		SndShift: c.snd.shift, RcvShift: c.rcv.shift, MSS: c.snd.mss,
		Cwnd: c.cc.Cwnd, Ssthresh: c.cc.Ssthresh,
		SRTT: c.rtt.srtt, RTTVar: c.rtt.rttvar, RTO: c.rtt.rto, Backoff: c.rtt.backoff,
		Buffered: c.snd.buffered, Readable: c.rcv.readable,
		OOORanges: int(c.rcv.nOOO), SACKed: int(c.sack.n),
		TS: c.ts.ok, SACK: c.sack.ok, Recovery: c.rec.mode.String(),
		CC: c.cc.Algo, DupAcks: c.rec.dupAcks, AppClosed: c.appClosed,
		PeerFIN: c.rcv.finRcvd, OurFINq: c.snd.finQueued,
	}
}

// setState moves the connection to s, keeping CurrEstab (RFC 1213's
// tcpCurrEstab counts ESTABLISHED and CLOSE-WAIT).
func (c *Conn) setState(e *env, s State) {
	was := c.state == StateEstablished || c.state == StateCloseWait
	is := s == StateEstablished || s == StateCloseWait
	if was && !is {
		e.st.CurrEstab--
	} else if is && !was {
		e.st.CurrEstab++
	}
	c.state = s
}

// closed moves the connection to CLOSED, stops its timers, and wakes the
// application. A non-nil code records why it failed.
func (c *Conn) closed(e *env, code errCode) {
	if c.state == StateClosed {
		return
	}
	if code != errNone {
		if c.state == StateEstablished || c.state == StateCloseWait {
			if code == errReset {
				e.st.EstabResets++
			}
		}
		if c.state == StateSynSent || c.state == StateSynReceived {
			e.st.AttemptFails++
		}
		c.err = code
		// A passive connection that dies before the application saw it
		// goes back to LISTEN quietly (RFC 9293, 3.10.7.4, first check);
		// no application will close it, so it is released at once.
		if c.passive && c.state == StateSynReceived {
			c.appClosed = true
		} else {
			e.out.Wake |= WakeError
			e.out.Err = code.err()
		}
	}
	c.setState(e, StateClosed)
	c.tm = timers{}
	e.out.Wake |= WakeClosed
}
