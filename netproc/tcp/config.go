package tcp

import (
	"cmp"
	"time"
)

// Time is an instant on the caller's monotonic clock, in nanoseconds since
// an epoch of the caller's choosing. The core never reads a clock: every
// Step is told the time. Zero is reserved to mean "no deadline", so the
// caller's clock must read above zero (a clock counted from boot does).
type Time int64

// Add returns t moved forward by d.
func (t Time) Add(d time.Duration) Time { return t + Time(d) }

// Sub returns the duration t-u.
func (t Time) Sub(u Time) time.Duration { return time.Duration(t - u) }

// Tuple names a connection: the local and the remote endpoint. Addresses are
// 16 bytes so that IPv6 fits; IPv4 addresses are stored in their first 4
// bytes (the rest zero). The core uses the tuple only to compute ISNs and
// cookies; the caller demultiplexes segments by it.
type Tuple struct {
	LocalAddr, RemoteAddr [16]byte
	LocalPort, RemotePort uint16
}

// CCAlgorithm chooses a congestion-control algorithm.
type CCAlgorithm uint8

// The congestion-control algorithms. The zero value picks the default,
// CUBIC, as Linux does.
const (
	CCDefault CCAlgorithm = iota
	CCReno                // RFC 5681 with NewReno recovery, RFC 6582
	CCCubic               // RFC 9438
	CCBBR                 // draft-cardwell-iccrg-bbr-congestion-control (BBR v1), with pacing
)

func (a CCAlgorithm) String() string {
	switch a {
	case CCReno:
		return "reno"
	case CCCubic, CCDefault:
		return "cubic"
	case CCBBR:
		return "bbr"
	}
	return "unknown"
}

// Config holds a connection's settings. The zero value is the default for
// every field, so callers set only what they change. Config is plain data
// and is kept inside Conn.
type Config struct {
	// MSS is the maximum segment size advertised in our SYN: the path MTU
	// less 40 bytes of IPv4 and TCP headers (RFC 9293, 3.7.1). Default 1460.
	MSS uint16

	// The RFC 7323 and RFC 2018 options are offered unless disabled.
	DisableWindowScale bool
	DisableTimestamps  bool
	DisableSACK        bool

	// NoDelay turns off Nagle's algorithm (RFC 9293, 3.7.4), as TCP_NODELAY.
	NoDelay bool

	// Congestion is the congestion-control algorithm.
	Congestion CCAlgorithm

	// DelayedACK is the longest an ACK is held back (RFC 9293, 3.8.6.3;
	// RFC 5681, 4.2). Default 40ms, as Linux; negative acknowledges every
	// segment at once.
	DelayedACK time.Duration

	// RTO bounds (RFC 6298). MinRTO defaults to 200ms, the value Linux uses,
	// rather than RFC 6298's 1s: real peers expect it and a 1s floor makes
	// every tail loss cost a second. InitialRTO defaults to 1s (RFC 6298,
	// 2.1), MaxRTO to 120s.
	MinRTO, MaxRTO, InitialRTO time.Duration

	// SynRetries is how many times a SYN or SYN-ACK is retransmitted before
	// the attempt fails (default 6, as Linux); Retries is the same for data
	// and FIN (R2 of RFC 9293, 3.8.3; default 15).
	SynRetries, Retries uint8

	// TimeWait is how long TIME-WAIT lasts (2*MSL, RFC 9293, 3.4.2).
	// Default 60s, as Linux; RFC 9293's MSL of 2 minutes gives 4 minutes.
	TimeWait time.Duration

	// FinWait2Timeout ends a FIN-WAIT-2 connection whose application has
	// closed it and whose peer never sends FIN (Linux tcp_fin_timeout).
	// Default 60s.
	FinWait2Timeout time.Duration

	// Keep-alive (RFC 9293, 3.8.4; RFC 1122, 4.2.3.6): off unless KeepAlive.
	// KeepIdle defaults to 2h, KeepInterval to 75s, KeepCount to 9.
	KeepAlive    bool
	KeepIdle     time.Duration
	KeepInterval time.Duration
	KeepCount    uint8

	// ChallengeACKLimit caps the challenge ACKs sent per second
	// (RFC 5961, section 7). Default 100.
	ChallengeACKLimit uint16

	// FastLossRecovery makes loss detection Linux's: RACK-TLP (RFC 8985)
	// with Proportional Rate Reduction (RFC 6937) when SACK is agreed (see
	// the package documentation, "Loss recovery"); without SACK, tail loss
	// probes beside NewReno. RFC 6675 alone leaves to the retransmission
	// timer (200 ms at least) every loss that small windows and lossy paths
	// make, lost retransmissions among them. Off by default, so that most
	// golden scripts pin RFC 6675 alone; netproc's usertcp turns it on.
	FastLossRecovery bool

	// CwndValidation validates the congestion window for an application
	// that sends less than it allows (RFC 7661, see cwv.go): cwnd grows
	// only while the sender uses at least half of it, is kept across idle
	// periods of up to five minutes, and a loss reduces the window in use.
	// Off by default, so that the golden scripts pin RFC 5681's growth and
	// its restart after idle (4.1); netproc's usertcp turns it on.
	CwndValidation bool

	// ECN offers Explicit Congestion Notification (RFC 3168) in the
	// handshake and uses it if the peer agrees (see ecn.go). Off by
	// default; the shell must then carry Segment.CE and Segment.ECT.
	ECN bool

	// DisableMTUProbing turns off packetization-layer path MTU discovery
	// (RFC 4821, RFC 8899; pmtu.go): the search for a black hole after
	// repeated timeouts and the probes that raise the MSS after a
	// reduction. ICMP's reductions (RFC 1191) apply either way.
	DisableMTUProbing bool
}

// Defaults used for zero Config fields.
const (
	DefaultMSS               = 1460
	DefaultDelayedACK        = 40 * time.Millisecond
	DefaultMinRTO            = 200 * time.Millisecond
	DefaultMaxRTO            = 120 * time.Second
	DefaultInitialRTO        = time.Second
	DefaultSynRetries        = 6
	DefaultRetries           = 15
	DefaultTimeWait          = 60 * time.Second
	DefaultFinWait2Timeout   = 60 * time.Second
	DefaultKeepIdle          = 2 * time.Hour
	DefaultKeepInterval      = 75 * time.Second
	DefaultKeepCount         = 9
	DefaultChallengeACKLimit = 100

	// minMSS is the smallest send MSS accepted from a peer; a tiny MSS
	// would let a peer make us send one segment per byte (Linux TCP_MIN_MSS).
	minMSS = 88
	// defaultPeerMSS is assumed when a SYN carries no MSS option
	// (RFC 9293, 3.7.1).
	defaultPeerMSS = 536
	// maxWindowShift is the largest window scale (RFC 7323, 2.3).
	maxWindowShift = 14
	// handshakeRTO is the RTO used after the handshake when a SYN had to be
	// retransmitted and no RTT sample exists (RFC 6298, 5.7).
	handshakeRTO = 3 * time.Second
)

// withDefaults returns c with every zero field set to its default, and
// every duration that must be positive too when it is not.
func (c Config) withDefaults() Config {
	c.MSS = max(cmp.Or(c.MSS, DefaultMSS), minMSS)
	c.Congestion = cmp.Or(c.Congestion, CCCubic)
	c.DelayedACK = cmp.Or(c.DelayedACK, DefaultDelayedACK)
	c.MinRTO = positiveOr(c.MinRTO, DefaultMinRTO)
	c.MaxRTO = max(positiveOr(c.MaxRTO, DefaultMaxRTO), c.MinRTO)
	c.InitialRTO = positiveOr(c.InitialRTO, DefaultInitialRTO)
	c.SynRetries = cmp.Or(c.SynRetries, DefaultSynRetries)
	c.Retries = cmp.Or(c.Retries, DefaultRetries)
	c.TimeWait = positiveOr(c.TimeWait, DefaultTimeWait)
	c.FinWait2Timeout = positiveOr(c.FinWait2Timeout, DefaultFinWait2Timeout)
	c.KeepIdle = positiveOr(c.KeepIdle, DefaultKeepIdle)
	c.KeepInterval = positiveOr(c.KeepInterval, DefaultKeepInterval)
	c.KeepCount = cmp.Or(c.KeepCount, DefaultKeepCount)
	c.ChallengeACKLimit = cmp.Or(c.ChallengeACKLimit, DefaultChallengeACKLimit)
	return c
}

// positiveOr is d when v is zero or negative, v otherwise.
func positiveOr(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}
