package usertcp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
	"saturn/netproc/header"
	"saturn/netproc/link"
	"saturn/netproc/tcp"
	"saturn/netproc/usertcp"
)

// Hostile packets through the TUN: the kernel's side of the link is
// written with an AF_PACKET socket, so that crafted IPv4 packets reach
// saturn byte for byte as built. (A raw IP socket with IP_HDRINCL would
// not do: the kernel fills in the total length and the header checksum of
// what it sends.)

// injector writes raw IPv4 packets onto the namespace's end of the TUN
// link, toward saturn.
type injector struct {
	fd int
	to unix.SockaddrLinklayer
}

func newInjector(t *testing.T, ns, ifname string) *injector {
	t.Helper()
	in := &injector{fd: -1}
	err := link.InNamespace(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		// Protocol 0: the socket only sends, it receives nothing.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		in.fd = fd
		in.to = unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifc.Index}
		return nil
	})
	if err != nil {
		t.Fatalf("AF_PACKET socket on %s in %s: %v", ifname, ns, err)
	}
	t.Cleanup(func() { unix.Close(in.fd) })
	return in
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// send writes one packet to the link; a full device queue is waited out.
func (in *injector) send(pkt []byte) error {
	var err error
	testkit.Until(time.Second, func() bool {
		err = unix.Sendto(in.fd, pkt, 0, &in.to)
		return !errors.Is(err, unix.ENOBUFS)
	})
	return err
}

// seg describes a TCP/IPv4 packet; build makes it with correct lengths and
// checksums, and a case then breaks what it means to break.
type seg struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    header.TCPFlags
	window   uint16
	tcpOpts  []byte // raw option bytes, a multiple of 4
	ipOpts   []byte // raw IP option bytes, a multiple of 4
	payload  []byte
	ttl      uint8
	proto    uint8 // 0: TCP
}

func (s seg) build() []byte {
	ipf := header.IPv4Fields{
		TTL: 64, Protocol: header.TCPProtocolNumber, ID: uint16(rand.Uint32()),
		SrcAddr: header.IPv4Addr(s.src.Addr().As4()), DstAddr: header.IPv4Addr(s.dst.Addr().As4()),
		Options: s.ipOpts, Flags: header.IPv4FlagDontFragment,
	}
	if s.ttl != 0 {
		ipf.TTL = s.ttl
	}
	ihl := ipf.EncodedLength()
	thl := header.TCPMinimumSize + len(s.tcpOpts)
	pkt := make([]byte, ihl+thl+len(s.payload))
	ipf.TotalLength = uint16(len(pkt))
	th := header.TCP(pkt[ihl:])
	th.Encode(&header.TCPFields{
		SrcPort: s.src.Port(), DstPort: s.dst.Port(), SeqNum: s.seq, AckNum: s.ack,
		DataOffset: uint8(thl), Flags: s.flags, WindowSize: s.window,
	})
	copy(th[header.TCPMinimumSize:], s.tcpOpts)
	copy(th[thl:], s.payload)
	th.SetChecksum(header.TCPChecksum(ipf.SrcAddr, ipf.DstAddr, th))
	if s.proto != 0 {
		ipf.Protocol = s.proto
	}
	header.IPv4(pkt).Encode(&ipf)
	return pkt
}

// fixIP recomputes the IP header checksum over the header length the
// packet claims (clamped to the packet).
func fixIP(pkt []byte) []byte {
	ip := header.IPv4(pkt)
	hl := min(max(ip.HeaderLength(), header.IPv4MinimumSize), len(pkt))
	ip.SetChecksum(0)
	ip.SetChecksum(^header.Checksum(pkt[:hl], 0))
	return pkt
}

// fixTCP recomputes the TCP checksum over the segment the IP header holds.
func fixTCP(pkt []byte) []byte {
	ip := header.IPv4(pkt)
	th := header.TCP(pkt[ip.HeaderLength():])
	th.SetChecksum(header.TCPChecksum(ip.SourceAddress(), ip.DestinationAddress(), th))
	return pkt
}

// echoPump moves data over an established connection to an echo server,
// in rounds: write a chunk of a seeded random stream, read it back, check
// it byte for byte. Holding mu pauses it between rounds, when nothing is
// in flight and saturn's RCV.NXT is the kernel's SND.NXT.
type echoPump struct {
	c    net.Conn
	rng  *rand.ChaCha8
	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}

	// Set by the pump, read after done.
	rounds int
	bytes  int64
	err    error
}

func newPump(c net.Conn, seed uint64) *echoPump {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &echoPump{c: c, rng: rand.NewChaCha8(s), stop: make(chan struct{}), done: make(chan struct{})}
}

// startPump runs rounds until finish.
func startPump(c net.Conn, seed uint64) *echoPump {
	p := newPump(c, seed)
	go p.run()
	return p
}

func (p *echoPump) run() {
	defer close(p.done)
	out, back := make([]byte, 32<<10), make([]byte, 32<<10)
	sizes := rand.New(rand.NewPCG(1, 2))
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		p.mu.Lock()
		err := p.round(out, back, 1+sizes.IntN(len(out)))
		p.mu.Unlock()
		if err != nil {
			p.err = fmt.Errorf("round %d, after %d bytes: %w", p.rounds, p.bytes, err)
			return
		}
	}
}

func (p *echoPump) round(out, back []byte, n int) error {
	out, back = out[:n], back[:n]
	p.rng.Read(out)
	p.c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := p.c.Write(out); err != nil {
		return err
	}
	if _, err := io.ReadFull(p.c, back); err != nil {
		return err
	}
	if !bytes.Equal(out, back) {
		i := 0
		for out[i] == back[i] {
			i++
		}
		return fmt.Errorf("echo differs at byte %d of %d: got %q", i, n, back[i:min(i+16, n)])
	}
	p.rounds++
	p.bytes += int64(n)
	return nil
}

// waitRounds waits until the pump has done n rounds in all, or stopped.
func (p *echoPump) waitRounds(n int) {
	testkit.Until(10*time.Second, func() bool {
		select {
		case <-p.done:
			return true
		default:
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.rounds >= n
	})
}

// finish stops the pump and returns what it found.
func (p *echoPump) finish() error {
	close(p.stop)
	<-p.done
	return p.err
}

// counterDelta is counters now minus base.
func counterDelta(now, base map[string]uint64, name string) uint64 { return now[name] - base[name] }

// waitCounters polls the stack until every counter of want has risen by at
// least its value over base, and returns the last reading.
func (e *stackEnv) waitCounters(base map[string]uint64, want map[string]uint64, timeout time.Duration) (map[string]uint64, error) {
	var now map[string]uint64
	var missing []string
	var err error
	if testkit.Until(timeout, func() bool {
		now, missing = e.Counters(), nil
		for k, v := range want {
			if _, ok := now[k]; !ok {
				err = fmt.Errorf("no counter %q", k)
				return true
			}
			if d := counterDelta(now, base, k); d < v {
				missing = append(missing, fmt.Sprintf("%s +%d, want +%d", k, d, v))
			}
		}
		return len(missing) == 0
	}) {
		return now, err
	}
	return now, fmt.Errorf("after %v: %v", timeout, missing)
}

// established is the one connection in ESTABLISHED; with the pump paused
// its RcvNxt and SndNxt are where the kernel's next segment starts and
// what it acknowledges.
func (e *stackEnv) established(t *testing.T) tcp.Info {
	t.Helper()
	var infos []tcp.Info
	e.Srv.Do(func() { infos = e.Stack.ConnInfos() })
	var est []tcp.Info
	for _, in := range infos {
		if in.State == tcp.StateEstablished {
			est = append(est, in)
		}
	}
	if len(est) != 1 {
		t.Fatalf("want one established connection, have %d of %d", len(est), len(infos))
	}
	return est[0]
}

// hostileCase is a crafted packet and the counters it must raise.
type hostileCase struct {
	name string
	// pkt builds the packet; est is the established connection's tuple
	// (kernel → saturn) and info its state, for in-window segments.
	pkt  func(est seg, info tcp.Info) []byte
	want map[string]uint64 // per packet sent
}

// TestHostilePackets injects malformed and malicious packets into the link
// while a connection moves data, then floods a listener with SYNs. The
// connection must stay byte-exact throughout, every packet must be dropped
// for the reason its counter names, the flood must be met with SYN
// cookies, and a new connection must still open.
func TestHostilePackets(t *testing.T) {
	const synBacklog = 512
	e := startStack(t, usertcp.Config{SynBacklog: synBacklog})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Crafted segments carry no timestamps option: with timestamps on, the
	// connection would drop them all for that alone (RFC 7323, 3.2) and the
	// specific checks behind it would go untested.
	if out, err := e.Exec(ctx, "sysctl", "-qw", "net.ipv4.tcp_timestamps=0"); err != nil {
		t.Fatalf("sysctl in %s: %v\n%s", e.NS, err, out)
	}
	const port = 7100
	// The SYN backlog is the larger of the stack's and the listen
	// backlog, as in Linux: keep the latter below the former.
	c := e.echoConn(t, port, 64)
	kernelEnd := netip.MustParseAddrPort(c.LocalAddr().String())
	pump := startPump(c, 42)
	inj := newInjector(t, e.NS, e.Stack.Info()["tun"])

	saturn := netip.AddrPortFrom(e.Addr, port)
	closed := netip.AddrPortFrom(e.Addr, 9)
	stranger := netip.AddrPortFrom(e.Peer, 40000+uint16(rand.IntN(1000)))
	evil := bytes.Repeat([]byte("EVIL"), 64)
	inWindow := func(est seg, info tcp.Info, f header.TCPFlags) seg {
		est.seq, est.ack, est.flags, est.window, est.payload = uint32(info.RcvNxt), uint32(info.SndNxt), f, 1000, evil
		return est
	}
	ack := header.TCPFlagAck
	cases := []hostileCase{
		// The IP header (ip.drop_*).
		{"ip header checksum", func(est seg, info tcp.Info) []byte {
			p := inWindow(est, info, ack|header.TCPFlagPsh).build()
			p[10] ^= 0x5a
			return p
		}, map[string]uint64{"ip.drop_bad_checksum": 1}},
		{"ip IHL 4", func(est seg, info tcp.Info) []byte {
			p := inWindow(est, info, ack).build()
			p[0] = 0x44
			return fixIP(p)
		}, map[string]uint64{"ip.drop_bad_ihl": 1}},
		{"ip IHL past the end", func(est seg, info tcp.Info) []byte {
			est.seq, est.flags = uint32(info.RcvNxt), ack
			p := est.build() // 40 bytes
			p[0] = 0x4f      // a 60-byte header
			return fixIP(p)
		}, map[string]uint64{"ip.drop_truncated": 1}},
		{"ip header cut short", func(est seg, info tcp.Info) []byte {
			return inWindow(est, info, ack).build()[:header.IPv4MinimumSize-4]
		}, map[string]uint64{"ip.drop_truncated": 1}},
		{"ip total length past the end", func(est seg, info tcp.Info) []byte {
			p := inWindow(est, info, ack).build()
			header.IPv4(p).SetTotalLength(uint16(len(p) + 100))
			return fixIP(p)
		}, map[string]uint64{"ip.drop_truncated": 1}},
		{"ip total length below the header", func(est seg, info tcp.Info) []byte {
			p := inWindow(est, info, ack).build()
			header.IPv4(p).SetTotalLength(12)
			return fixIP(p)
		}, map[string]uint64{"ip.drop_bad_total_length": 1}},
		{"ip version 6", func(est seg, info tcp.Info) []byte {
			p := inWindow(est, info, ack).build()
			p[0] = 0x65
			return fixIP(p)
		}, map[string]uint64{"ip.drop_bad_version": 1}},
		{"ip option length 0", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.ipOpts = []byte{0x44, 0, 0, 0} // timestamp option, length 0
			return s.build()
		}, map[string]uint64{"ip.drop_bad_options": 1}},
		{"ip option past the header", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.ipOpts = []byte{0x07, 39, 4, 0} // record route, 39 bytes in a 4-byte option area
			return s.build()
		}, map[string]uint64{"ip.drop_bad_options": 1}},
		{"ip TTL 0", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.ttl = 0xff
			p := s.build()
			p[8] = 0
			return fixIP(p)
		}, map[string]uint64{"ip.drop_zero_ttl": 1}},
		{"ip martian source", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.src = netip.AddrPortFrom(e.Addr, s.src.Port())
			return s.build()
		}, map[string]uint64{"ip.drop_martian_source": 1}},
		{"ip not for us", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.dst = netip.AddrPortFrom(e.Addr.Next().Next().Next(), s.dst.Port())
			return s.build()
		}, map[string]uint64{"ip.drop_not_for_us": 1}},
		{"ip unknown protocol", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.proto = 17
			return s.build()
		}, map[string]uint64{"ip.drop_unknown_protocol": 1, "icmp.out_dest_unreachs": 1}},

		// The TCP header (tcp.in_csum_errors, tcp.in_errs).
		{"tcp checksum", func(est seg, info tcp.Info) []byte {
			p := inWindow(est, info, ack|header.TCPFlagPsh).build()
			p[header.IPv4MinimumSize+16] ^= 0x01
			return p
		}, map[string]uint64{"tcp.in_csum_errors": 1}},
		{"tcp header cut short", func(est seg, info tcp.Info) []byte {
			p := inWindow(est, info, ack).build()[:header.IPv4MinimumSize+12]
			header.IPv4(p).SetTotalLength(uint16(len(p)))
			return fixIP(p)
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp cut by the ip total length", func(est seg, info tcp.Info) []byte {
			p := inWindow(est, info, ack).build()
			header.IPv4(p).SetTotalLength(header.IPv4MinimumSize + 10)
			return fixIP(p)
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp data offset 4", func(est seg, info tcp.Info) []byte {
			p := inWindow(est, info, ack).build()
			p[header.IPv4MinimumSize+12] = 4 << 4
			return fixTCP(p)
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp data offset past the end", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.payload = evil[:12]
			p := s.build()
			p[header.IPv4MinimumSize+12] = 15 << 4 // 60 bytes of header in a 32-byte segment
			return fixTCP(p)
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp option length 0", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.tcpOpts = []byte{2, 0, 5, 0xb4}
			return s.build()
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp option length 1", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.tcpOpts = []byte{1, 1, 30, 1} // two NOPs, then an unknown kind 30 of length 1
			return s.build()
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp option past the header", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.tcpOpts = []byte{1, 8, 10, 0} // NOP, timestamps claiming 10 bytes in 3
			return s.build()
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp MSS option of length 3", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.tcpOpts = []byte{2, 3, 5, 0}
			return s.build()
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp SYN+FIN", func(est seg, info tcp.Info) []byte {
			return inWindow(est, info, header.TCPFlagSyn|header.TCPFlagFin).build()
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp SYN+RST", func(est seg, info tcp.Info) []byte {
			return inWindow(est, info, header.TCPFlagSyn|header.TCPFlagRst).build()
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp all flags", func(est seg, info tcp.Info) []byte {
			return inWindow(est, info, 0xff).build()
		}, map[string]uint64{"tcp.in_errs": 1}},
		{"tcp source port 0", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.src = netip.AddrPortFrom(s.src.Addr(), 0)
			return s.build()
		}, map[string]uint64{"tcp.in_errs": 1}},

		// The connection's own checks (tcp.drop_*): each segment is
		// well formed and aimed at the established connection.
		{"tcp no flags", func(est seg, info tcp.Info) []byte {
			return inWindow(est, info, 0).build()
		}, map[string]uint64{"tcp.drop_no_ack": 1}},
		{"tcp RST inside the window, not at RCV.NXT", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, header.TCPFlagRst|ack)
			s.seq += 100
			s.payload = nil
			return s.build()
		}, map[string]uint64{"tcp.drop_rst": 1}},
		{"tcp SYN inside the window", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, header.TCPFlagSyn)
			s.payload = nil
			s.tcpOpts = []byte{2, 4, 5, 0xb4}
			return s.build()
		}, map[string]uint64{"tcp.drop_syn": 1}},
		{"tcp ACK of data never sent", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.ack += 1 << 20
			return s.build()
		}, map[string]uint64{"tcp.drop_bad_ack": 1}},
		{"tcp data outside the window", func(est seg, info tcp.Info) []byte {
			s := inWindow(est, info, ack)
			s.seq += 1 << 30
			return s.build()
		}, map[string]uint64{"tcp.drop_out_of_window": 1}},

		// Segments for tuples nobody has.
		{"unknown tuple, ACK to a closed port", func(est seg, info tcp.Info) []byte {
			return seg{src: stranger, dst: closed, seq: 1, ack: 1, flags: ack, window: 1000, payload: evil}.build()
		}, map[string]uint64{"tcp.no_port": 1, "tcp.out_rsts": 1}},
		{"unknown tuple, RST to a closed port", func(est seg, info tcp.Info) []byte {
			return seg{src: stranger, dst: closed, seq: 1, flags: header.TCPFlagRst}.build()
		}, map[string]uint64{"tcp.in_rsts": 1}},
		{"unknown tuple, ACK to the listener", func(est seg, info tcp.Info) []byte {
			return seg{src: stranger, dst: saturn, seq: 7, ack: 7, flags: ack, window: 1000, payload: evil}.build()
		}, map[string]uint64{"tcp.out_rsts": 1}},
	}

	const repeat = 3
	total := map[string]uint64{}
	first := e.Counters()
	for _, tc := range cases {
		// Pause the pump so that the connection is still: an in-window
		// segment lands exactly where its case means it to.
		pump.mu.Lock()
		info := e.established(t)
		est := seg{src: kernelEnd, dst: saturn}
		base := e.Counters()
		want := map[string]uint64{}
		for range repeat {
			if err := inj.send(tc.pkt(est, info)); err != nil {
				pump.mu.Unlock()
				t.Fatalf("%s: inject: %v", tc.name, err)
			}
		}
		for k, v := range tc.want {
			want[k] = v * repeat
			total[k] += v * repeat
		}
		_, err := e.waitCounters(base, want, 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if s := e.established(t); s.RcvNxt != info.RcvNxt {
			t.Errorf("%s: the connection took it: RCV.NXT moved from %d to %d", tc.name, info.RcvNxt, s.RcvNxt)
		}
		rounds := pump.rounds
		pump.mu.Unlock()
		pump.waitRounds(rounds + 1) // let data move between cases
	}
	after := e.Counters()
	// The counters of drops that only crafted packets cause rose by
	// exactly what was sent: no packet was counted twice or elsewhere.
	for _, k := range []string{"ip.drop_bad_checksum", "ip.drop_bad_ihl", "ip.drop_truncated", "ip.drop_bad_total_length",
		"ip.drop_bad_options", "ip.drop_zero_ttl", "ip.drop_martian_source", "tcp.in_csum_errors", "tcp.in_errs",
		"tcp.drop_no_ack", "tcp.drop_bad_ack", "tcp.no_port", "link.rx_bad_virtio"} {
		if d := counterDelta(after, first, k); d != total[k] {
			t.Errorf("%s rose by %d over all cases, want %d", k, d, total[k])
		}
	}
	if d := counterDelta(after, first, "tcp.estab_resets"); d != 0 {
		t.Errorf("tcp.estab_resets rose by %d", d)
	}

	// A SYN flood from random sources of the link's prefix (addresses
	// only this test's namespace has: the kernel there drops the SYN-ACKs,
	// as it forwards nothing) fills the SYN backlog; past it the listener
	// answers with cookies.
	const flood = 4000
	pfx := netip.PrefixFrom(e.Addr, 24).Masked()
	base := e.Counters()
	rng := rand.New(rand.NewPCG(7, 7))
	sent := 0
	for sent < flood {
		for range 100 {
			host := 3 + rng.IntN(250)
			a := pfx.Addr().As4()
			a[3] = byte(host)
			src := netip.AddrPortFrom(netip.AddrFrom4(a), uint16(1024+rng.IntN(64000)))
			if src.Addr() == e.Addr || src.Addr() == e.Peer {
				continue
			}
			p := seg{src: src, dst: saturn, seq: rng.Uint32(), flags: header.TCPFlagSyn, window: 64240, tcpOpts: []byte{2, 4, 5, 0xb4}}.build()
			if err := inj.send(p); err != nil {
				t.Fatalf("SYN flood: %v", err)
			}
			sent++
		}
		// Keep the link's queue from overflowing: wait until saturn has
		// answered most of what was sent.
		testkit.Until(2*time.Second, func() bool {
			now := e.Counters()
			return counterDelta(now, base, "tcp.passive_opens")+counterDelta(now, base, "tcp.syncookies_sent") >= uint64(sent)*9/10
		})
	}
	now := e.Counters()
	opened, cookies := counterDelta(now, base, "tcp.passive_opens"), counterDelta(now, base, "tcp.syncookies_sent")
	t.Logf("SYN flood: %d sent, %d half-open connections, %d cookies", sent, opened, cookies)
	if opened < synBacklog || cookies < uint64(sent)/2 {
		t.Errorf("SYN flood of %d: %d half-open connections (backlog %d), %d cookies", sent, opened, synBacklog, cookies)
	}

	// A stray ACK while cookies are out is a cookie that fails.
	base = e.Counters()
	inj.send(seg{src: stranger, dst: saturn, seq: 99, ack: 12345, flags: ack, window: 1000, payload: evil}.build())
	if _, err := e.waitCounters(base, map[string]uint64{"tcp.syncookies_failed": 1}, 5*time.Second); err != nil {
		t.Errorf("stray ACK after the flood: %v", err)
	}

	// A new connection opens with the backlog full (by a cookie), and
	// echoes.
	base = e.Counters()
	c2, err := e.Dial(e.AddrPort(port))
	if err != nil {
		t.Fatalf("a new connection after the flood: %v", err)
	}
	defer c2.Close()
	p2 := newPump(c2, 43)
	buf1, buf2 := make([]byte, 32<<10), make([]byte, 32<<10)
	for i := range 20 {
		if err := p2.round(buf1, buf2, 1+i*1000); err != nil {
			t.Fatalf("the connection opened after the flood, round %d: %v", i, err)
		}
	}
	if now := e.Counters(); counterDelta(now, base, "tcp.syncookies_recv") == 0 {
		t.Errorf("the connection after the flood was not opened by a cookie (the backlog should be full)")
	}

	// The first connection moved data all along, and still does.
	pump.mu.Lock()
	rounds := pump.rounds
	pump.mu.Unlock()
	pump.waitRounds(rounds + 3)
	if err := pump.finish(); err != nil {
		t.Fatalf("the established connection: %v", err)
	}
	t.Logf("the established connection echoed %d bytes in %d rounds", pump.bytes, pump.rounds)
	if pump.rounds < len(cases) {
		t.Errorf("the established connection made only %d rounds", pump.rounds)
	}
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("closing the established connection: %d, %v", n, err)
	}
}
