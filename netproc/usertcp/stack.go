package usertcp

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/netproc/backend"
	"saturn/netproc/header"
	"saturn/netproc/ipv4"
	"saturn/netproc/link"
	"saturn/netproc/tcp"
)

// Stack is saturn's user-level TCP/IPv4 stack as a netproc backend: the
// imperative shell around the purely functional core (package tcp), on
// netproc's event loop. Every method but Info runs on the loop goroutine
// (see package backend), which owns all of the stack's state: nothing
// here takes a lock.
type Stack struct {
	cfg Config
	log *slog.Logger
	env backend.Env

	// The link.
	rawDev   link.Device    // the device at the bottom (TUN), for its counters
	impaired *link.Impaired // nil unless impaired
	tap      *link.Capture
	dev      poller
	offloads link.Offloads
	gso      bool // the device takes TCP segments beyond the MTU
	csum     bool // the device completes TCP checksums
	mtu      int
	headroom int
	maxPkt   int
	netns    *link.NetnsTUN // nil with a test's device

	ip     *ipv4.Endpoint
	addr   header.IPv4Addr
	tab    *table
	timers *timerWheel
	secret tcp.Secret

	conns     []*conn // by record
	demux     map[tupleKey]*conn
	listeners map[uint16][]*listener
	live      int // connections in the table
	orphans   int // of which closed by their app
	tw        int // of which in TIME-WAIT

	stats tcp.Stats
	shell shellStats
	out   tcp.Output

	// The operation in progress (see enter and exit).
	now      tcp.Time
	wall     time.Time
	depth    int
	handler  bool // the outermost call came from the handler, not an event
	settling bool
	posted   bool // a delivery of wake-ups is posted to the loop
	wakeQ    []*waker
	loopQ    []loopSegment
	loopBuf  []byte
	tx       txBatch
	rx       []link.Packet

	reclaimQ []*conn

	resumed resumeState // connections resumed for apps, until claimed (see resume.go)
	holdErr error       // why the namespace has no hold route (link.EnsureHold), if it has none

	clockBase  int64
	clockStart time.Time

	static map[string]string
	info   atomic.Pointer[map[string]string]
}

var _ backend.Backend = (*Stack)(nil)

// New opens the stack's link (a TUN device in the namespace, unless the
// config brings a device) and its connection table in persistent memory.
// Start it on netproc's loop. On failure nothing is left behind.
func New(cfg Config) (*Stack, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		if cfg.Persist != nil {
			cfg.Persist.Close()
		}
		return nil, err
	}
	tab, err := openTable(cfg.Persist, cfg.MaxConns, cfg.SendBuf, cfg.RecvBuf)
	if err != nil {
		if cfg.Persist != nil {
			cfg.Persist.Close()
		}
		return nil, err
	}
	raw, imp, tap, dev, err := openDevice(&cfg)
	if err != nil {
		tab.close()
		return nil, err
	}
	s := &Stack{
		cfg: cfg, rawDev: raw, impaired: imp, tap: tap, dev: dev,
		offloads: raw.Offloads(), mtu: raw.MTU(), headroom: link.MaxHeadroom, maxPkt: raw.MaxPacketSize(),
		addr: header.IPv4Addr(cfg.Address.Addr().As4()), tab: tab, secret: tab.secret,
		conns: make([]*conn, cfg.MaxConns), demux: map[tupleKey]*conn{}, listeners: map[uint16][]*listener{},
	}
	s.netns, _ = raw.(*link.NetnsTUN)
	if s.netns != nil && cfg.Resume {
		// While a death has taken the TUN device away, the namespace
		// still routes saturn's address, so that a client connecting
		// then retransmits its SYN to the next incarnation rather than
		// failing with "network unreachable" (docs/restart.md).
		s.holdErr = link.EnsureHold(cfg.Namespace, cfg.Address, s.netns.PeerAddress().Addr())
	}
	s.gso = s.maxPkt > s.mtu && s.offloads.TSO4
	s.csum = s.offloads.Checksum
	if s.netns != nil && s.netns.CreatedNamespace() {
		tab.setCreatedNamespace(cfg.Namespace)
	}
	var id [2]byte
	crand.Read(id[:])
	s.ip = ipv4.New(ipv4.Config{Addr: s.addr, Protocols: []uint8{header.TCPProtocolNumber}, InitialID: binary.LittleEndian.Uint16(id[:])})
	ts := unix.Timespec{}
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	s.clockBase, s.clockStart = ts.Nano(), time.Now()
	s.static = map[string]string{
		"address": cfg.Address.String(),
		"link":    s.offloads.String(),
		"mtu":     fmt.Sprint(s.mtu),
	}
	if cfg.Namespace != "" {
		s.static["netns"] = cfg.Namespace
	}
	if s.netns != nil {
		s.static["peer"] = s.netns.PeerAddress().Addr().String()
		s.static["tun"] = s.netns.Name()
		if cfg.HostRoute {
			// The host reaches saturn's address (link.EnsureHostLink);
			// a failure leaves the stack serving inside the namespace.
			if hl, err := link.EnsureHostLink(cfg.Namespace, cfg.Address); err != nil {
				s.static["host_route"] = "none: " + err.Error()
			} else {
				s.static["host_route"] = hl.String()
			}
		}
	}
	if o := cfg.Impair; o.Active() {
		s.static["impair"] = fmt.Sprintf("drop=%g%% duplicate=%g%% reorder=%g%% delay=%s seed=%d",
			o.DropPercent, o.DuplicatePercent, o.ReorderPercent, o.Delay, o.Seed)
	}
	return s, nil
}

// Name implements backend.Backend.
func (s *Stack) Name() string { return "usertcp" }

// Costs implements backend.Coster: a connection's record in the table
// (recordSize, 2.25 KiB since the core keeps RACK's transmission log and BBR's model) and its share of netproc's heap (the shell's conn, its
// demultiplexing entry, the handler's socket, its timer), measured at
// 100,000 idle connections (docs/benchmarks.md, "connections"). The
// buffers behind the record cost what they hold (conn.Buffered): their
// pages are given back once they empty.
func (s *Stack) Costs() backend.Costs { return backend.Costs{Socket: 3328} }

// Capacity implements backend.Capacity: the connection table's records,
// which every app's connections share (with those in TIME-WAIT, which no
// app holds).
func (s *Stack) Capacity() int { return s.cfg.MaxConns }

// Start implements backend.Backend: it watches the device and the timers
// on the loop, and takes over what an earlier incarnation left in the
// connection table.
func (s *Stack) Start(env backend.Env) error {
	s.env = env
	s.log = s.cfg.Log
	if s.log == nil {
		s.log = env.Logger()
	}
	tw, err := newTimerWheel()
	if err != nil {
		return fmt.Errorf("usertcp: timerfd: %w", err)
	}
	s.timers = tw
	if err := env.AddFD(tw.fd, unix.EPOLLIN, s.onTimer); err != nil {
		return err
	}
	batch := min(max(s.rawDev.BatchSize(), 8), 64)
	s.rx = make([]link.Packet, batch)
	for i := range s.rx {
		s.rx[i].Buf = make([]byte, s.headroom+s.maxPkt)
		s.rx[i].Off = s.headroom
	}
	s.tx.init(batch, s.headroom+max(s.maxPkt, s.mtu))
	// Level-triggered: what a round leaves unread is reported again.
	if err := env.AddFD(s.dev.fd(), unix.EPOLLIN, s.onReadable); err != nil {
		return err
	}
	s.enter(false)
	s.recover()
	s.timers.add(timerEntry{when: s.now.Add(housekeepEvery), slot: -1})
	s.publish()
	s.exit()
	s.log.Info("usertcp stack up", "address", s.cfg.Address, "netns", s.cfg.Namespace, "host_route", s.static["host_route"], "link", s.offloads.String(),
		"mtu", s.mtu, "table", fmt.Sprintf("%d records, buffers %d+%d", s.cfg.MaxConns, s.cfg.SendBuf, s.cfg.RecvBuf),
		"incarnation", s.tab.incarnation, "impair", s.static["impair"])
	if s.holdErr != nil {
		s.log.Warn("usertcp: no hold route: clients that connect while netproc is down fail with \"network unreachable\"", "err", s.holdErr)
	}
	if s.tab.discard != "" {
		s.log.Warn("usertcp: discarded the connection table an earlier netproc left", "why", s.tab.discard)
	}
	return nil
}

// Close implements backend.Backend. The handler has closed every socket;
// connections their apps closed stay in the table, for a next incarnation
// to finish. The namespace goes if a netproc of this instance created it.
func (s *Stack) Close() error {
	if s.tap != nil {
		if sess := s.tap.Session(); sess != nil {
			sess.Stop()
		}
	}
	var errs []error
	if s.timers != nil && s.env != nil {
		s.env.DelFD(s.timers.fd)
		s.env.DelFD(s.dev.fd())
		s.timers.close()
	}
	errs = append(errs, s.dev.close())
	if ns := s.tab.createdNamespace(); ns != "" && ns == s.cfg.Namespace && (s.netns == nil || !s.netns.CreatedNamespace()) {
		// An earlier incarnation of this instance's netproc created it.
		// Without privileges (EPERM: netproc runs as its own user) the
		// supervisor removes it when the instance stops.
		if err := link.DeleteNamespace(ns); err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EPERM) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.tab.close())
	return errors.Join(errs...)
}

// clock reads CLOCK_MONOTONIC, which every process on the host shares, so
// that deadlines in the persistent table mean the same to the next
// incarnation. (time.Since uses the vDSO; one real clock_gettime at start
// gives the base.)
func (s *Stack) clock() tcp.Time {
	return tcp.Time(s.clockBase + int64(time.Since(s.clockStart)))
}

// enter starts an operation: handler says whether the handler called us
// (Listen, Read, Write, ...) rather than an event (the device, a timer).
// The outermost one reads the clock. Every enter has its exit.
func (s *Stack) enter(handler bool) {
	if s.depth == 0 {
		s.now = s.clock()
		s.wall = time.Time{}
		s.handler = handler
	}
	s.depth++
}

// exit ends an operation. The outermost one settles what it started:
// packets go out, segments between local connections are delivered, and
// wake-ups reach the handler. Wake-ups raised during a call from the
// handler are not delivered inside it (the handler may not yet have
// recorded the socket it is making): they are posted to the loop.
func (s *Stack) exit() {
	s.depth--
	if s.depth > 0 || s.settling {
		return
	}
	s.settle(!s.handler)
}

// settle flushes transmissions, runs the loopback queue, and delivers
// wake-ups (or posts their delivery), until nothing is left.
func (s *Stack) settle(deliver bool) {
	s.settling = true
	for rounds := 0; ; rounds++ {
		s.flushTX()
		if len(s.loopQ) > 0 {
			if rounds > 64 {
				s.postDelivery() // a long loopback exchange: let the loop breathe
				break
			}
			s.runLoopback()
			continue
		}
		if len(s.wakeQ) > 0 {
			if !deliver {
				s.postDelivery()
				break
			}
			s.deliver()
			continue
		}
		break
	}
	s.flushTX()
	s.settling = false
}

// postDelivery asks the loop to come back and settle.
func (s *Stack) postDelivery() {
	if s.posted {
		return
	}
	s.posted = true
	s.env.Post(func() {
		s.posted = false
		s.enter(false)
		s.exit()
	})
}

// wallNow is the wall clock the IP layer wants, read once per operation.
func (s *Stack) wallNow() time.Time {
	if s.wall.IsZero() {
		s.wall = time.Now()
	}
	return s.wall
}

// waker is what conns and listeners share: the handler's Notify and the
// events raised for it since the last delivery.
type waker struct {
	notify  backend.Notify
	pending backend.Events
	queued  bool
}

// wake raises ev for w, delivered when the operation settles.
func (s *Stack) wake(w *waker, ev backend.Events) {
	if w.notify == nil || ev == 0 {
		return
	}
	w.pending |= ev
	if !w.queued {
		w.queued = true
		s.wakeQ = append(s.wakeQ, w)
	}
}

// deliver calls the handler's Notify for every queued waker. A Notify may
// call back into the stack and raise more: they are delivered in the same
// pass.
func (s *Stack) deliver() {
	for i := 0; i < len(s.wakeQ); i++ {
		w := s.wakeQ[i]
		s.wakeQ[i] = nil
		ev := w.pending
		w.pending, w.queued = 0, false
		if w.notify != nil && ev != 0 {
			w.notify(ev)
		}
	}
	s.wakeQ = s.wakeQ[:0]
}

// eventsFor maps the core's wake-ups to the handler's readiness events.
func eventsFor(w tcp.Wake) backend.Events {
	var ev backend.Events
	if w&(tcp.WakeConnected|tcp.WakeWritable) != 0 {
		ev |= backend.Writable
	}
	if w&tcp.WakeReadable != 0 {
		ev |= backend.Readable
	}
	if w&tcp.WakePeerClosed != 0 {
		ev |= backend.Hangup | backend.Readable
	}
	if w&tcp.WakeError != 0 {
		ev |= backend.Failed | backend.Readable | backend.Writable
	}
	if w&tcp.WakeClosed != 0 {
		ev |= backend.Hangup | backend.Readable | backend.Writable
	}
	return ev
}

// mem lends c's buffers to the core.
func (s *Stack) mem(c *conn) tcp.Mem {
	snd, rcv := s.tab.bufs(c.slot, int(c.sndSize), int(c.rcvSize))
	return tcp.Mem{Send: snd, Recv: rcv, Stats: &s.stats}
}

// step runs one input on c and carries out the output (the caller's duties
// of package tcp, 3 to 8). It returns Step's error and Output.N.
func (s *Stack) step(c *conn, in tcp.Input) (int, error) {
	tc := s.tab.conn(c.slot)
	prev := tc.State()
	if in.Kind == tcp.InSegment && len(in.Seg.Payload) > 0 {
		s.touched(c) // in order or not, its bytes land in the receive buffer
	}
	s.out.Reset()
	err := s.stepRecord(c, tc, in)
	n := s.out.N
	s.after(c, tc, prev)
	return n, err
}

// after performs what a Step of c asked for.
func (s *Stack) after(c *conn, tc *tcp.Conn, prev tcp.State) {
	out := &s.out
	if len(out.Segments) > 0 {
		s.emit(c.key, out.Segments)
	}
	if st := tc.State(); st != prev {
		if st == tcp.StateTimeWait {
			s.tw++
		} else if prev == tcp.StateTimeWait {
			s.tw--
		}
	}
	if w := out.Wake; w != 0 {
		if w&tcp.WakeReadable != 0 {
			s.touched(c)
		}
		if w&tcp.WakeConnected != 0 && c.inSynQ {
			c.ln.childConnected(c)
		}
		if w&tcp.WakeClosed != 0 {
			s.unlink(c)
		}
		s.wake(&c.waker, eventsFor(w))
	}
	if tc.Done() {
		s.free(c)
		return
	}
	s.schedule(c, out.Timer)
}

// newConn makes the shell's side of the connection in record slot.
func (s *Stack) newConn(slot int32, k tupleKey, snd, rcv int) *conn {
	c := &conn{s: s, slot: slot, gen: s.tab.gen(slot), key: k, sndSize: uint32(snd), rcvSize: uint32(rcv)}
	s.conns[slot] = c
	s.live++
	return c
}

// link enters c in the demultiplexing table.
func (s *Stack) link(c *conn) {
	s.demux[c.key] = c
	c.linked = true
}

// unlink takes c out of the demultiplexing table: it takes no more
// segments (a CLOSED connection, or one being freed).
func (s *Stack) unlink(c *conn) {
	if c.linked {
		if s.demux[c.key] == c {
			delete(s.demux, c.key)
		}
		c.linked = false
	}
}

// free releases c's record, its buffers' pages and its timer.
func (s *Stack) free(c *conn) {
	if c.freed {
		return
	}
	c.freed = true
	s.unlink(c)
	if c.ln != nil {
		c.ln.forget(c)
	}
	if s.tab.conn(c.slot).State() == tcp.StateTimeWait {
		s.tw--
	}
	c.notify = nil
	s.reclaimAll(c)
	s.tab.release(c.slot)
	s.conns[c.slot] = nil
	s.live--
	if c.closed {
		s.orphans--
	}
}

// Listen implements backend.Backend.
func (s *Stack) Listen(addr netip.AddrPort, opts backend.ListenOptions, notify backend.Notify) (backend.Listener, error) {
	s.enter(true)
	defer s.exit()
	a := addr.Addr().Unmap()
	var laddr header.IPv4Addr // zero: every local address
	switch {
	case a.Is6() && a.IsUnspecified() && !opts.V6Only:
	case a.Is6():
		return nil, syscall.EAFNOSUPPORT // no IPv6 in this stack
	case a.IsUnspecified():
	default:
		laddr = header.IPv4Addr(a.As4())
		if !s.isLocal(laddr) {
			return nil, syscall.EADDRNOTAVAIL
		}
	}
	port := addr.Port()
	if port == 0 {
		p, err := s.listenPort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	for _, o := range s.listeners[port] {
		if !opts.ReusePort || !o.reusePort {
			return nil, syscall.EADDRINUSE
		}
	}
	backlog := opts.Backlog
	if backlog <= 0 {
		backlog = 4096 // as Linux's somaxconn
	}
	l := &listener{s: s, port: port, laddr: laddr, asked: addr, backlog: backlog, v6only: opts.V6Only, reusePort: opts.ReusePort,
		sndBuf: s.cfg.SendBuf, rcvBuf: s.cfg.RecvBuf, connCfg: s.cfg.Conn, children: map[*conn]struct{}{}, slot: -1}
	l.notify = notify
	l.remake()
	s.listeners[port] = append(s.listeners[port], l)
	l.persist()
	return l, nil
}

// Connect implements backend.Backend: an active open, answered at once; the
// handshake's end is notified.
func (s *Stack) Connect(addr netip.AddrPort, notify backend.Notify) (backend.Conn, error) {
	s.enter(true)
	defer s.exit()
	a := addr.Addr().Unmap()
	if !a.Is4() {
		return nil, syscall.ENETUNREACH
	}
	raddr := header.IPv4Addr(a.As4())
	switch {
	case a.IsUnspecified():
		raddr = header.IPv4Addr{127, 0, 0, 1} // as Linux: INADDR_ANY is this host
	case a.IsMulticast() || raddr == header.IPv4Broadcast:
		return nil, syscall.ENETUNREACH
	}
	laddr := s.addr
	if isLoopback(raddr) {
		laddr = raddr
	}
	port, err := s.ephemeralPort(laddr, raddr, addr.Port())
	if err != nil {
		return nil, err
	}
	slot, ok := s.tab.alloc(s.cfg.SendBuf, s.cfg.RecvBuf, 0)
	if !ok {
		s.shell.TableFull++
		return nil, syscall.ENOBUFS
	}
	k := tupleKey{laddr: laddr, raddr: raddr, lport: port, rport: addr.Port()}
	c := s.newConn(slot, k, s.cfg.SendBuf, s.cfg.RecvBuf)
	c.notify = notify
	c.connecting = true
	s.link(c)
	t := k.tuple()
	_, err = s.step(c, tcp.Input{Kind: tcp.InConnect, Connect: tcp.ConnectParams{
		Tuple: t, ISS: tcp.ISN(s.secret, t, s.now), TSOffset: tcp.TSOffset(s.secret, t), Config: s.cfg.Conn,
	}})
	if err != nil {
		c.closed = true
		s.orphans++
		s.free(c)
		return nil, errnoOf(err)
	}
	c.markBuffers()
	return c, nil
}

// coreErrnos pairs the core's errors with the errno an app sees for each,
// in the order errnoOf tries them.
var coreErrnos = []struct {
	err   error
	errno syscall.Errno
}{
	{tcp.ErrConnectionReset, syscall.ECONNRESET},
	{tcp.ErrConnectionRefused, syscall.ECONNREFUSED},
	{tcp.ErrTimeout, syscall.ETIMEDOUT},
	{tcp.ErrAborted, syscall.ECONNABORTED},
	{tcp.ErrWriteClosed, syscall.EPIPE},
	{tcp.ErrNotConnected, syscall.ENOTCONN},
	{tcp.ErrClosed, syscall.EBADF},
	{tcp.ErrInvalid, syscall.EINVAL},
}

// errnoOf maps the core's errors to the errno an app sees.
func errnoOf(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range coreErrnos {
		if errors.Is(err, m.err) {
			return m.errno
		}
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// timeWait counts connections in TIME-WAIT.
func (s *Stack) timeWait() int { return s.tw }
