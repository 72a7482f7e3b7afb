package netproc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/appproc"
	"saturn/internal/testkit"
	"saturn/netproc/header"
	"saturn/netproc/link"
	"saturn/proto"
)

// TestUserTCPResumeCalls is issue 14's resume test: netproc (usertcp,
// resume on by default) is killed once while an app's calls and its
// clients' handshakes are at every awkward point, and every one of them
// completes without an error seen by the app or its peers:
//
//   - an accept in flight (taken by the dead incarnation) returns the
//     connection of a client that connects after the restart;
//   - a client that connects during the blackout (no TUN device: the
//     namespace's hold route drops its SYN, its kernel sends it again) is
//     accepted by the next incarnation;
//   - a client whose handshake completed before the death, not accepted
//     yet, is accepted afterwards, with the bytes it had sent;
//   - a client between its SYN and its ACK (the listener's child in
//     SYN-RECEIVED at the death) finishes its handshake with the next
//     incarnation and is accepted;
//   - a connect in flight (its SYN sent, unanswered) completes when its
//     peer answers the next incarnation, and its connection carries data;
//   - then a graceful restart of netproc (SIGTERM, as an upgrade stops it)
//     keeps a connection and a listener as the kill did.
//
// The app is this test process, attached to the instance; the clients are
// the kernel in saturn's namespace and, for the two handshakes that must
// stop halfway, a raw peer at an address no one holds there (so that no
// kernel answers for it), which reads saturn's segments off the TUN
// device and writes its own.
func TestUserTCPResumeCalls(t *testing.T) {
	testkit.NeedTUN(t)
	ns := testkit.InstanceNamespace(t, "satcall")
	const prefix = "10.93.0.2/24"
	saturn := netip.MustParseAddr("10.93.0.2")
	in := resumeInstance(t, ns, prefix, "host_route = false\n")
	in.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app, err := appproc.Attach(ctx, appproc.Options{Name: "calls", Servers: []string{"netproc"}, StateDir: in.StateDir, Instance: in.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	listen := func(port int) net.Listener {
		ln, err := app.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	acceptN := func(ln net.Listener, n int) <-chan accepted {
		ch := make(chan accepted, n)
		go func() {
			for range n {
				c, err := ln.Accept()
				ch <- accepted{c, err}
				if err != nil {
					return
				}
			}
		}()
		return ch
	}
	addr := func(port int) string { return netip.AddrPortFrom(saturn, uint16(port)).String() }

	// Every client of the kernel that connects gets its own goroutine.
	type dialed struct {
		c   net.Conn
		err error
	}
	dialAsync := func(port int, greeting string) <-chan dialed {
		ch := make(chan dialed, 1)
		go func() {
			c, err := testkit.DialInNamespace(ns, addr(port), 20*time.Second)
			if err == nil && greeting != "" {
				_, err = io.WriteString(c, greeting)
			}
			ch <- dialed{c, err}
		}()
		return ch
	}

	raw := newRawPeer(t, ns, saturn)
	lnInflight, lnQueued, lnHalf := listen(7101), listen(7102), listen(7103)
	inflight := acceptN(lnInflight, 2) // the accept the kill lands on, then the blackout client's
	half := acceptN(lnHalf, 1)

	// A handshake complete before the death, not accepted.
	queued := <-dialAsync(7102, "queued")
	if queued.err != nil {
		t.Fatal(queued.err)
	}
	defer queued.c.Close()
	// A handshake stopped between the SYN and its ACK.
	halfPeer := netip.MustParseAddrPort("10.93.0.77:40001")
	raw.send(halfPeer, netip.AddrPortFrom(saturn, 7103), 1000, 0, header.TCPFlagSyn, nil)
	synAck := raw.await(t, halfPeer, header.TCPFlagSyn|header.TCPFlagAck)
	// A connect in flight, its SYN unanswered.
	connPeer := netip.MustParseAddrPort("10.93.0.78:7009")
	dial := make(chan dialed, 1)
	go func() {
		c, err := app.Dial(ctx, "tcp", connPeer.String())
		dial <- dialed{c, err}
	}()
	syn := raw.await(t, connPeer, header.TCPFlagSyn)
	// Both accepts taken by netproc (the queued client's, not waited for,
	// is not one).
	if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		for _, ch := range testkit.Component(st, "netproc").Channels {
			if ch.App == "calls" && ch.Usage != nil && ch.Usage.Waiting >= 3 {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatal("netproc never showed the app's accepts and connect waiting")
	}

	in.MustRun("kill", "netproc")
	blackout := dialAsync(7101, "blackout") // while no TUN device is there
	start := time.Now()
	if _, ok := in.WaitFor(20*time.Second, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, "netproc")
		return c.State == proto.StateRunning && c.Restarts == 1
	}); !ok {
		t.Fatal("netproc not back after the kill")
	}
	t.Logf("netproc running again %v after the kill", time.Since(start).Round(time.Millisecond))

	// The client whose SYN-ACK came from the dead incarnation: its ACK,
	// with data, to the next.
	raw.send(halfPeer, netip.AddrPortFrom(saturn, 7103), 1001, synAck.seq+1, header.TCPFlagAck|header.TCPFlagPsh, []byte("half"))
	// The connect's peer answers, to the next incarnation.
	raw.send(connPeer, syn.from, 5000, syn.seq+1, header.TCPFlagSyn|header.TCPFlagAck, nil)
	// The accept in flight takes a client that comes now.
	after := dialAsync(7101, "after")

	expect := func(what string, c net.Conn, want string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		b := make([]byte, len(want))
		if _, err := io.ReadFull(c, b); err != nil || string(b) != want {
			t.Errorf("%s: read %q, %v; want %q", what, b, err, want)
		}
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case a := <-inflight:
			if a.err != nil {
				t.Fatalf("accept in flight: %v", a.err)
			}
			defer a.c.Close()
			a.c.SetReadDeadline(time.Now().Add(20 * time.Second))
			b := make([]byte, 8)
			n, err := a.c.Read(b)
			if err != nil {
				t.Fatalf("accepted on %s: %v", lnInflight.Addr(), err)
			}
			got[string(b[:n])] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("accepts on %s after the kill: got %v", lnInflight.Addr(), got)
		}
	}
	if !got["after"] || !got["blackout"] {
		t.Errorf("the accept in flight and the next got %v; want the clients that came after and during the blackout", got)
	}
	for _, d := range []<-chan dialed{blackout, after} {
		if r := <-d; r.err != nil {
			t.Errorf("a client failed: %v", r.err)
		} else {
			r.c.Close()
		}
	}
	c, err := lnQueued.Accept()
	if err != nil {
		t.Fatalf("accepting the client queued before the death: %v", err)
	}
	defer c.Close()
	expect("the client queued before the death", c, "queued")
	select {
	case a := <-half:
		if a.err != nil {
			t.Fatalf("accepting the client between its SYN and ACK: %v", a.err)
		}
		defer a.c.Close()
		expect("the client between its SYN and ACK", a.c, "half")
	case <-time.After(30 * time.Second):
		t.Fatal("the client between its SYN and ACK was never accepted")
	}
	select {
	case d := <-dial:
		if d.err != nil {
			t.Fatalf("the connect in flight: %v", d.err)
		}
		defer d.c.Close()
		if _, err := io.WriteString(d.c, "dialed"); err != nil {
			t.Fatalf("writing on the connection: %v", err)
		}
		if !raw.sawPayload(connPeer, "dialed", 10*time.Second) {
			t.Errorf("the connect's peer never got the bytes written on its connection")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the connect in flight never completed")
	}
	m := testkit.Component(in.Status(), "netproc").Counters
	t.Logf("netproc's recovery: listeners %d, children %d, connecting %d, resumed %d, reset %d",
		m["tcp.resumed_listeners"], m["tcp.resumed_children"], m["tcp.resumed_connecting"], m["tcp.resumed"], m["tcp.recovered_reset"])
	if m["tcp.recovered_reset"] != 0 {
		t.Errorf("the next incarnation reset %d connections", m["tcp.recovered_reset"])
	}

	// A graceful restart (SIGTERM, as `saturn upgrade netproc` stops it)
	// leaves what a kill leaves (backend.Leaver): the connection goes on,
	// and the listener accepts.
	in.MustRun("restart", "netproc")
	if _, err := io.WriteString(queued.c, "again"); err != nil {
		t.Fatalf("the client's connection after a graceful restart of netproc: %v", err)
	}
	expect("a connection across a graceful restart of netproc", c, "again")
	next := dialAsync(7102, "next")
	c2, err := lnQueued.Accept()
	if err != nil {
		t.Fatalf("accepting after a graceful restart of netproc: %v", err)
	}
	defer c2.Close()
	expect("a client after a graceful restart of netproc", c2, "next")
	if r := <-next; r.err != nil {
		t.Errorf("a client after a graceful restart of netproc: %v", r.err)
	} else {
		r.c.Close()
	}
}

// rawPeer is a TCP peer made of raw packets in saturn's namespace, at
// addresses no interface there holds: the kernel neither answers what
// saturn sends them nor resets it, so that a handshake can stop halfway.
// It writes IPv4 packets with a raw socket and reads saturn's from the TUN
// device with a packet socket.
type rawPeer struct {
	saturn   netip.Addr
	out, in  int // raw socket, packet socket
	segments chan rawSeg
}

type rawSeg struct {
	from, to netip.AddrPort
	seq, ack uint32
	flags    header.TCPFlags
	payload  []byte
}

func newRawPeer(t *testing.T, ns string, saturn netip.Addr) *rawPeer {
	p := &rawPeer{saturn: saturn, segments: make(chan rawSeg, 256)}
	err := link.InNamespace(ns, func() error {
		var err error
		if p.out, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW); err != nil {
			return err
		}
		p.in, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		return err
	})
	if err != nil {
		t.Fatalf("raw sockets in %s: %v", ns, err)
	}
	tv := unix.Timeval{Usec: 200_000}
	unix.SetsockoptTimeval(p.in, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go p.read(done, stopped)
	t.Cleanup(func() {
		close(done)
		<-stopped
		unix.Close(p.in)
		unix.Close(p.out)
	})
	return p
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read passes saturn's TCP segments on, until done.
func (p *rawPeer) read(done, stopped chan struct{}) {
	defer close(stopped)
	buf := make([]byte, 65536)
	for {
		select {
		case <-done:
			return
		default:
		}
		n, from, err := unix.Recvfrom(p.in, buf, 0)
		if err != nil {
			continue // the timeout: look at done
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		ip := header.IPv4(buf[:n])
		if n < header.IPv4MinimumSize || ip.Protocol() != header.TCPProtocolNumber || netip.AddrFrom4(ip.SourceAddress()) != p.saturn {
			continue
		}
		seg := header.TCP(ip.Payload())
		if len(seg) < header.TCPMinimumSize {
			continue
		}
		s := rawSeg{
			from:  netip.AddrPortFrom(p.saturn, seg.SourcePort()),
			to:    netip.AddrPortFrom(netip.AddrFrom4(ip.DestinationAddress()), seg.DestinationPort()),
			seq:   seg.SequenceNumber(),
			ack:   seg.AckNumber(),
			flags: seg.Flags(),
		}
		s.payload = append([]byte(nil), seg.Payload()...)
		select {
		case p.segments <- s:
		default:
		}
	}
}

// await returns the next segment saturn sends to, with at least flags.
func (p *rawPeer) await(t *testing.T, to netip.AddrPort, flags header.TCPFlags) rawSeg {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-p.segments:
			if s.to == to && s.flags.Has(flags) {
				return s
			}
		case <-deadline:
			t.Fatalf("saturn sent no %v to %v", flags, to)
		}
	}
}

// sawPayload reports whether saturn sends payload to, within d.
func (p *rawPeer) sawPayload(to netip.AddrPort, payload string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case s := <-p.segments:
			if s.to == to && string(s.payload) == payload {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// send writes one segment from → to.
func (p *rawPeer) send(from, to netip.AddrPort, seq, ack uint32, flags header.TCPFlags, payload []byte) {
	pkt := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize+len(payload))
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), TTL: 64, Protocol: header.TCPProtocolNumber,
		SrcAddr: header.IPv4Addr(from.Addr().As4()), DstAddr: header.IPv4Addr(to.Addr().As4())})
	seg := header.TCP(pkt[header.IPv4MinimumSize:])
	seg.Encode(&header.TCPFields{SrcPort: from.Port(), DstPort: to.Port(), SeqNum: seq, AckNum: ack,
		DataOffset: header.TCPMinimumSize, Flags: flags, WindowSize: 65535})
	copy(seg[header.TCPMinimumSize:], payload)
	seg.SetChecksum(header.TCPChecksum(header.IPv4Addr(from.Addr().As4()), header.IPv4Addr(to.Addr().As4()), seg))
	var sa unix.SockaddrInet4
	sa.Addr = to.Addr().As4()
	if err := unix.Sendto(p.out, pkt, 0, &sa); err != nil && !errors.Is(err, syscall.EINTR) {
		panic(fmt.Sprintf("raw send: %v", err))
	}
}
