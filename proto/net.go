package proto

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// netproc's part of the ABI beyond the opcodes: what each socket operation
// reads from a submission and writes into its buffer and completion.
//
//	op           handle    buffer (in → out)                  args                                  result
//	OpListen     -         SockAddr → bound SockAddr          [0] backlog, [1] ListenFlag           handle; Aux: ListenAdopted
//	OpAccept     listener  - → AddrPair (optional, Len ≥ 48)  -                                     handle
//	OpConnect    -         SockAddr → AddrPair (if Len ≥ 48)  [0] timeout in ns (0: none)           handle
//	OpSend       socket    bytes to send                      -                                     bytes sent (all of Len, unless cancelled or failed part-way)
//	OpRecv       socket    - → bytes received                 [0] RecvFlag                          bytes (0: end of stream)
//	OpShutdown   socket    -                                  [0] ShutRead, ShutWrite or ShutBoth   0
//	OpClose      socket    -                                  -                                     0
//	OpSetsockopt socket    -                                  [0] SockOpt, [1] value (int64)        0
//	OpGetsockname socket   - → SockAddr                       -                                     SockAddrSize
//	OpGetpeername socket   - → SockAddr                       -                                     SockAddrSize
//	OpCancel     -         -                                  [0] the user_data to cancel           0, or ENOENT if nothing waits under it
//	OpProvide    -         a buffer for waits' output          -                                     none while it is kept (see below)
//
// OpAccept, OpConnect and OpRecv are waits (Op.Waits): they hold no call
// slot, and with FlagSelect no buffer either. A FlagSelect wait's output
// goes into a buffer the app provided (OpProvide), which its completion
// names and so hands back; OpConnect with FlagSelect finds its address in
// the entry (Offset, Args[1] and Args[2]: see InlineSockAddr) instead of a
// buffer. An OpProvide that netproc keeps has no completion of its own:
// the buffer comes back with the completion of the wait that used it. One
// that netproc refuses (a bad buffer) completes with the error and the
// buffer. Provided buffers a netproc incarnation kept die with it: the
// app provides them again to the next (see ring.Region.ServerEpoch).
//
// A cancelled operation completes with ECANCELED, except a send that has
// already sent some of its bytes, which completes with that count. Closing
// a socket completes the receives and accepts waiting on it with
// ECANCELED at once; sends queued on it still go out first, as with
// close(2) (for at most a few seconds), and so do they before an
// OpShutdown of the sending side.
//
// Handles are per app and unguessable: an app can name only sockets it
// created, on its own channel. A handle from an earlier incarnation of
// netproc, whose sockets died with it, is answered with ECONNRESET.

// ListenFlag is OpListen's Args[1].
type ListenFlag uint64

const (
	// ListenV6Only: an IPv6 wildcard listener accepts IPv6 connections
	// only. Without it, [::] accepts IPv4 too (dual stack), as Go's
	// net.Listen("tcp", ":80") does.
	ListenV6Only ListenFlag = 1 << iota
	// ListenReusePort sets SO_REUSEPORT, so that several listeners share a
	// port and the kernel spreads connections among them.
	ListenReusePort

	KnownListenFlags = ListenV6Only | ListenReusePort
)

// MaxBacklog bounds OpListen's backlog; 0 asks for the system's default.
const MaxBacklog = 65535

// ListenAdopted in an OpListen completion's Aux says that the listener is
// the one the app's previous incarnation left open on that address, with
// the connections that queued while no incarnation was accepting.
const ListenAdopted = 1

// CloseKeep in OpClose's Args[0] on a listener: leave it to the app's
// next incarnation instead of closing it, as when the app dies. netproc
// keeps it under the app's name and user, still queueing connections, and
// the next incarnation's listen on the same address adopts it
// (ListenAdopted); if none comes within netproc's linger, it is closed. A
// graceful restart closes its listeners this way, so that no client is
// refused while the app is between incarnations.
const CloseKeep = 1

// RecvFlag is OpRecv's Args[0].
type RecvFlag uint64

const (
	// RecvPoll: wait until the socket is readable (data, end of stream, or
	// an error) and complete with 0, without reading. The entry names no
	// buffer. An app with many idle connections waits this way so that
	// its buffers are not all parked in netproc, then receives.
	RecvPoll RecvFlag = 1 << iota

	KnownRecvFlags = RecvPoll
)

// InlineSockAddr packs ap into the three words of a submission that carry
// OpConnect's address when it is submitted with FlagSelect: the
// SockAddrSize bytes EncodeSockAddr writes, little-endian, in Offset,
// Args[1] and Args[2].
func InlineSockAddr(ap netip.AddrPort) (offset, arg1, arg2 uint64, err error) {
	var b [SockAddrSize]byte
	if err := EncodeSockAddr(b[:], ap); err != nil {
		return 0, 0, 0, err
	}
	le := binary.LittleEndian
	return le.Uint64(b[0:]), le.Uint64(b[8:]), le.Uint64(b[16:]), nil
}

// InlineAddr reads the address InlineSockAddr packed into s, checking it
// as DecodeSockAddr does.
func InlineAddr(s *Submission) (netip.AddrPort, error) {
	var b [SockAddrSize]byte
	le := binary.LittleEndian
	le.PutUint64(b[0:], s.Offset)
	le.PutUint64(b[8:], s.Args[1])
	le.PutUint64(b[16:], s.Args[2])
	return DecodeSockAddr(b[:])
}

// AddrPairSize is the size of the local-then-peer pair of socket
// addresses that OpAccept and OpConnect write into their buffers.
const AddrPairSize = 2 * SockAddrSize

// SockOpt is OpSetsockopt's Args[0]; Args[1] is the value as an int64.
type SockOpt uint64

// Socket options. Booleans are 0 or 1; durations are whole seconds.
const (
	OptNoDelay           SockOpt = 1 // TCP_NODELAY; on by default, as in Go
	OptKeepAlive         SockOpt = 2 // SO_KEEPALIVE
	OptKeepAliveIdle     SockOpt = 3 // TCP_KEEPIDLE, seconds
	OptKeepAliveInterval SockOpt = 4 // TCP_KEEPINTVL, seconds
	OptKeepAliveCount    SockOpt = 5 // TCP_KEEPCNT
	OptRecvBuffer        SockOpt = 6 // SO_RCVBUF, bytes
	OptSendBuffer        SockOpt = 7 // SO_SNDBUF, bytes
	OptLinger            SockOpt = 8 // SO_LINGER, seconds; negative: off (the default)

	optCount = 9
)

// Valid reports whether o is a known option.
func (o SockOpt) Valid() bool { return o > 0 && o < optCount }

func (o SockOpt) String() string {
	names := [optCount]string{"", "nodelay", "keepalive", "keepalive-idle", "keepalive-interval", "keepalive-count", "recv-buffer", "send-buffer", "linger"}
	if !o.Valid() {
		return fmt.Sprintf("sockopt(%d)", uint64(o))
	}
	return names[o]
}

// EncodeAddrPair writes local then peer into b (at least AddrPairSize
// bytes).
func EncodeAddrPair(b []byte, local, peer netip.AddrPort) error {
	if len(b) < AddrPairSize {
		return fmt.Errorf("%w: buffer of %d bytes for an address pair", ErrBadAddr, len(b))
	}
	if err := EncodeSockAddr(b, local); err != nil {
		return err
	}
	return EncodeSockAddr(b[SockAddrSize:], peer)
}

// DecodeAddrPair reads a local-then-peer pair from b.
func DecodeAddrPair(b []byte) (local, peer netip.AddrPort, err error) {
	if len(b) < AddrPairSize {
		return local, peer, fmt.Errorf("%w: %d bytes, want an address pair of %d", ErrBadAddr, len(b), AddrPairSize)
	}
	if local, err = DecodeSockAddr(b); err != nil {
		return local, peer, err
	}
	peer, err = DecodeSockAddr(b[SockAddrSize:])
	return local, peer, err
}
