package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"saturn/netproc/tcp"
)

// Scenario is one simulated run.
type Scenario struct {
	Seed uint64
	Link LinkConfig

	// Client and Server configure the two ends' connections.
	Client, Server tcp.Config
	Cookies        tcp.CookieMode
	Backlog        uint32

	// Conns is the number of connections the client opens at once.
	Conns int
	// Simultaneous makes both hosts actively open one connection to each
	// other with no listener (RFC 9293, 3.5, figure 8).
	Simultaneous bool

	// ClientBytes and ServerBytes are what each end of every connection
	// sends; the bytes themselves come from the seed.
	ClientBytes, ServerBytes int

	// Buffer sizes of each end.
	ClientSndBuf, ClientRcvBuf, ServerSndBuf, ServerRcvBuf int

	// AppDelay is the longest an application takes to react to a wake-up;
	// ReadChunk is the most it reads at a time (0: everything).
	AppDelay  time.Duration
	ReadChunk int

	// Limit is the virtual time after which the run is declared stuck.
	Limit time.Duration

	// Trace, if set, receives a line per packet sent and per timer.
	Trace func(string)
}

// Result summarizes a run.
type Result struct {
	Elapsed     time.Duration // virtual time the run took
	Events      int
	Packets     int
	Lost        int
	Stats       [2]tcp.Stats
	Connections int
	Ghosts      int // connections raised by a late duplicate meeting a SYN cookie
	TooBig      int // packets dropped by the hop of LinkConfig.MTU
}

const (
	serverPort = 80
	clientPort = 40000
)

// world is the whole simulation.
type world struct {
	sc     Scenario
	rng    *rand.Rand
	now    tcp.Time
	seq    uint64
	events eventQueue
	link   link
	hosts  [2]*host
	all    []*endpoint
	nevent int
	ghosts int
	tooBig int // packets dropped by the hop of LinkConfig.MTU
	err    error
	out    tcp.Output
}

// host is one side's shell.
type host struct {
	idx      int
	addr     [16]byte
	conns    map[tcp.Tuple]*endpoint
	listener *tcp.Listener
	stats    tcp.Stats
	secret   tcp.Secret
}

// endpoint is one connection, its buffers and its application.
type endpoint struct {
	h        *host
	name     string
	conn     tcp.Conn
	snd, rcv []byte
	timer    tcp.Time
	removed  bool

	send      []byte // the application's whole output
	sent      int
	expect    []byte // what the peer's application sends
	got       int
	shutdown  bool
	eof       bool
	appClosed bool
	started   bool // the application has the connection
	appQueued bool
	err       error
}

// Run executes the scenario and returns an error describing the first
// problem: a broken invariant, corrupted or missing data, a connection that
// failed or did not close.
func Run(sc Scenario) (Result, error) {
	w := &world{sc: sc, rng: rand.New(rand.NewPCG(sc.Seed, 0x5a7)), now: tcp.Time(time.Second)}
	w.link = link{cfg: sc.Link, rng: rand.New(rand.NewPCG(sc.Seed, 0x11c))}
	for i := range w.hosts {
		h := &host{idx: i, conns: map[tcp.Tuple]*endpoint{}}
		h.addr[0], h.addr[1], h.addr[2], h.addr[3] = 10, 0, 0, byte(i+1)
		for j := range h.secret {
			h.secret[j] = byte(w.rng.Uint32())
		}
		w.hosts[i] = h
	}
	if !sc.Simultaneous {
		l := tcp.NewListener(tcp.ListenerConfig{
			Conn: sc.Server, SendBuf: uint32(sc.ServerSndBuf), RecvBuf: uint32(sc.ServerRcvBuf),
			Backlog: sc.Backlog, Cookies: sc.Cookies, Secret: w.hosts[1].secret,
		})
		w.hosts[1].listener = &l
	}
	conns := max(sc.Conns, 1)
	if sc.Simultaneous {
		conns = 1
	}
	for i := 0; i < conns; i++ {
		w.connect(0, i)
		if sc.Simultaneous {
			w.connect(1, i)
		}
	}
	limit := w.now.Add(sc.Limit)
	for w.events.Len() > 0 && w.err == nil {
		ev := heap.Pop(&w.events).(*event)
		if ev.at > limit {
			w.err = fmt.Errorf("stuck: still running at %v", limit.Sub(tcp.Time(time.Second)))
			break
		}
		w.now = max(w.now, ev.at)
		w.nevent++
		w.dispatch(ev)
	}
	res := Result{Elapsed: w.now.Sub(tcp.Time(time.Second)), Events: w.nevent,
		Packets: w.link.sent, Lost: w.link.lost, Connections: len(w.all), Ghosts: w.ghosts, TooBig: w.tooBig}
	res.Stats[0], res.Stats[1] = w.hosts[0].stats, w.hosts[1].stats
	if w.err != nil {
		return res, w.err
	}
	return res, w.verify()
}

// cookiesInUse reports whether the listener may answer with SYN cookies.
func (sc *Scenario) cookiesInUse() bool {
	return sc.Cookies == tcp.CookiesAlways || sc.Backlog > 0 && sc.Backlog < uint32(max(sc.Conns, 1))
}

// verify checks every application's view once the run is quiet.
func (w *world) verify() error {
	want := max(w.sc.Conns, 1) * 2
	if w.sc.Simultaneous {
		want = 2
	}
	if len(w.all) != want {
		return fmt.Errorf("%d connections, want %d", len(w.all), want)
	}
	for _, ep := range w.all {
		switch {
		case ep.err != nil:
			return fmt.Errorf("%s: %w", ep.name, ep.err)
		case !ep.removed:
			return fmt.Errorf("%s: never closed: %s, info %+v", ep.name, ep.conn.State(), ep.conn.Info())
		case ep.sent != len(ep.send):
			return fmt.Errorf("%s: sent %d of %d bytes", ep.name, ep.sent, len(ep.send))
		case ep.got != len(ep.expect) || !ep.eof:
			return fmt.Errorf("%s: received %d of %d bytes, eof %v", ep.name, ep.got, len(ep.expect), ep.eof)
		}
	}
	return nil
}

// streamFor returns the deterministic bytes one end of connection i sends.
func (w *world) streamFor(seed uint64, side, i, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(side)<<32|uint64(i)))
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(r.Uint32())
	}
	return b
}

func (w *world) tuple(from, i int) tcp.Tuple {
	a, b := w.hosts[from], w.hosts[1-from]
	t := tcp.Tuple{LocalAddr: a.addr, RemoteAddr: b.addr, LocalPort: uint16(clientPort + i), RemotePort: serverPort}
	if w.sc.Simultaneous {
		t.LocalPort, t.RemotePort = uint16(clientPort+i), uint16(clientPort+i)
	}
	return t
}

// newEndpoint makes the endpoint of host h for connection i.
func (w *world) newEndpoint(h *host, i int) *endpoint {
	sndSize, rcvSize := w.sc.ClientSndBuf, w.sc.ClientRcvBuf
	mine, theirs := w.sc.ClientBytes, w.sc.ServerBytes
	side := h.idx
	if h.idx == 1 && !w.sc.Simultaneous {
		sndSize, rcvSize = w.sc.ServerSndBuf, w.sc.ServerRcvBuf
		mine, theirs = w.sc.ServerBytes, w.sc.ClientBytes
	}
	if w.sc.Simultaneous && h.idx == 1 {
		mine, theirs = w.sc.ServerBytes, w.sc.ClientBytes
	}
	ep := &endpoint{
		h: h, name: fmt.Sprintf("host%d/conn%d", h.idx, i),
		snd: make([]byte, sndSize), rcv: make([]byte, rcvSize),
		send:   w.streamFor(w.sc.Seed, side, i, mine),
		expect: w.streamFor(w.sc.Seed, 1-side, i, theirs),
	}
	w.all = append(w.all, ep)
	return ep
}

// connect makes host from open connection i actively.
func (w *world) connect(from, i int) {
	h := w.hosts[from]
	ep := w.newEndpoint(h, i)
	t := w.tuple(from, i)
	h.conns[t] = ep
	cfg := w.sc.Client
	if from == 1 {
		cfg = w.sc.Server
	}
	ep.started = true
	w.step(ep, tcp.Input{Kind: tcp.InConnect, Connect: tcp.ConnectParams{
		Tuple: t, ISS: tcp.ISN(h.secret, t, w.now), TSOffset: tcp.TSOffset(h.secret, t), Config: cfg,
	}})
}

func (w *world) dispatch(ev *event) {
	switch ev.kind {
	case evPacket:
		w.deliver(ev.pkt)
	case evTimer:
		if !ev.ep.removed && ev.ep.timer == ev.at {
			ev.ep.timer = 0
			if w.sc.Trace != nil {
				w.sc.Trace(fmt.Sprintf("%v %s timer %+v", w.now.Sub(tcp.Time(time.Second)), ev.ep.name, ev.ep.conn.Info()))
			}
			w.step(ev.ep, tcp.Input{Kind: tcp.InTimer})
		}
	case evICMP:
		w.icmpIn(ev.pkt)
	case evApp:
		ev.ep.appQueued = false
		if !ev.ep.removed || !ev.ep.appClosed {
			w.runApp(ev.ep)
		}
	}
}

// deliver hands a packet to its host's shell.
func (w *world) deliver(p *packet) {
	h := w.hosts[p.to]
	t := tcp.Tuple{LocalAddr: p.tuple.RemoteAddr, RemoteAddr: p.tuple.LocalAddr,
		LocalPort: p.tuple.RemotePort, RemotePort: p.tuple.LocalPort}
	if w.sc.Trace != nil {
		where := "listener"
		if ep := h.conns[t]; ep != nil {
			where = ep.name + " in " + ep.conn.State().String()
		}
		w.sc.Trace(fmt.Sprintf("%v host%d < %s (to %s)", w.now.Sub(tcp.Time(time.Second)), h.idx, p.seg, where))
	}
	if ep := h.conns[t]; ep != nil {
		w.step(ep, tcp.Input{Kind: tcp.InSegment, Seg: p.seg})
		if !w.out.Reuse {
			return
		}
	}
	if h.listener != nil && t.LocalPort == serverPort {
		w.listen(h, t, p.seg)
		return
	}
	if r, ok := tcp.ResetFor(&p.seg); ok {
		h.stats.OutRsts++
		w.link.transmit(w, h.idx, &packet{to: 1 - h.idx, tuple: t, seg: r})
	}
}

// listen runs the listener for a segment that matched no connection.
func (w *world) listen(h *host, t tcp.Tuple, seg tcp.Segment) {
	halfOpen := 0
	for _, ep := range h.conns {
		if ep.conn.State() == tcp.StateSynReceived {
			halfOpen++
		}
	}
	i := int(t.RemotePort) - clientPort
	ep := w.newEndpoint(h, i)
	w.all = w.all[:len(w.all)-1] // kept only if the listener creates it
	w.out.Reset()
	in := tcp.ListenInput{Seg: seg, Tuple: t, HalfOpen: halfOpen}
	res := h.listener.Step(&in, w.now, &ep.conn, tcp.Mem{Send: ep.snd, Recv: ep.rcv, Stats: &h.stats}, &w.out)
	w.emit(h, t, &w.out)
	if res != tcp.ListenNewConn {
		return
	}
	for _, old := range w.all {
		if old.h != h || old.name != ep.name {
			continue
		}
		if !old.removed || !w.sc.cookiesInUse() {
			w.err = fmt.Errorf("%s: created twice", ep.name)
			return
		}
		// A late duplicate of the first segment after the handshake (SEQ
		// and ACK exactly those of the cookie ACK) arrived after the
		// connection had finished: a SYN cookie cannot tell it from a new
		// handshake (Linux shares the weakness). The application refuses
		// the unexpected connection.
		w.ghosts++
		h.conns[t] = ep
		ep.name += "/ghost"
		ep.appClosed = true
		w.step(ep, tcp.Input{Kind: tcp.InAbort})
		return
	}
	w.all = append(w.all, ep)
	h.conns[t] = ep
	if err := ep.conn.Check(); err != nil {
		w.err = fmt.Errorf("%s: after listener: %w", ep.name, err)
		return
	}
	w.after(ep, &w.out)
}

// step runs one input on ep and performs the output. It returns Step's
// error; w.out keeps the output until the next step.
func (w *world) step(ep *endpoint, in tcp.Input) error {
	w.out.Reset()
	err := ep.conn.Step(in, w.now, tcp.Mem{Send: ep.snd, Recv: ep.rcv, Stats: &ep.h.stats}, &w.out)
	if in.Kind == tcp.InSegment || in.Kind == tcp.InTimer {
		if err != nil {
			w.err = fmt.Errorf("%s: Step returned %v for a network input", ep.name, err)
		}
	} else if err != nil && ep.err == nil && !errors.Is(err, io.EOF) {
		ep.err = fmt.Errorf("app call %d: %w", in.Kind, err)
	}
	if cerr := ep.conn.Check(); cerr != nil && w.err == nil {
		w.err = fmt.Errorf("%s: after input %d at %v: %w", ep.name, in.Kind, w.now, cerr)
	}
	w.emit(ep.h, ep.conn.Tuple(), &w.out)
	w.after(ep, &w.out)
	return err
}

// emit transmits the output segments, copying payloads out of the send
// buffer as a real shell copies them into packets.
func (w *world) emit(h *host, t tcp.Tuple, out *tcp.Output) {
	for i := range out.Segments {
		s := out.Segments[i]
		if w.sc.Trace != nil {
			w.sc.Trace(fmt.Sprintf("%v host%d:%d > %s", w.now.Sub(tcp.Time(time.Second)), h.idx, t.LocalPort, s))
		}
		s.Payload = s.AppendPayload(nil)
		s.Payload2 = nil
		w.link.transmit(w, h.idx, &packet{to: 1 - h.idx, tuple: t, seg: s})
	}
}

// after arms the timer and wakes the application.
func (w *world) after(ep *endpoint, out *tcp.Output) {
	if out.Wake&tcp.WakeError != 0 && ep.err == nil {
		ep.err = out.Err
	}
	if out.Wake&tcp.WakeConnected != 0 {
		ep.started = true
	}
	if ep.conn.Done() || out.Reuse {
		ep.removed = true
		if cur := ep.h.conns[ep.conn.Tuple()]; cur == ep {
			delete(ep.h.conns, ep.conn.Tuple())
		}
		return
	}
	if out.Timer != ep.timer {
		ep.timer = out.Timer
		if out.Timer != 0 {
			w.schedule(&event{at: out.Timer, kind: evTimer, ep: ep})
		}
	}
	if out.Wake != 0 && ep.started && !ep.appClosed {
		w.wakeApp(ep)
	}
}

// wakeApp schedules the application after a random reaction time.
func (w *world) wakeApp(ep *endpoint) {
	if ep.appQueued {
		return
	}
	ep.appQueued = true
	d := time.Duration(0)
	if w.sc.AppDelay > 0 {
		d = time.Duration(w.rng.Int64N(int64(w.sc.AppDelay)))
	}
	w.schedule(&event{at: w.now.Add(d), kind: evApp, ep: ep})
}
