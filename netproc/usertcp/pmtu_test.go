package usertcp_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc/header"
	"saturn/netproc/usertcp"
)

// pmtuPath is a path with a smaller link in the middle, between saturn and
// a Linux peer:
//
//	saturn ─TUN 1500─ [NS: router] ─veth 1280─ [R: router] ─veth 1500─ [P: the peer]
//
// Both ends have 1500-byte links and advertise an MSS of 1460; only the
// routers know of the 1280-byte link. NS is saturn's own namespace (its
// kernel is the other end of the TUN); R and P are made here.
type pmtuPath struct {
	t        *testing.T
	e        *stackEnv
	r, p     string     // the router's and the peer's namespaces
	peerAddr netip.Addr // the peer's address, in P
}

// pmtuMTU is the middle link's MTU.
const pmtuMTU = 1280

// newPMTUPath builds the path around a fresh stack and tears it down when
// the test ends.
func newPMTUPath(t *testing.T) *pmtuPath {
	e := startStack(t, usertcp.Config{})
	r, pfxA := testkit.TestNet()
	p, pfxB := testkit.TestNet()
	a := func(pfx netip.Prefix, host byte) netip.Addr {
		b := pfx.Masked().Addr().As4()
		b[3] = host
		return netip.AddrFrom4(b)
	}
	aNS, aR := a(pfxA, 1), a(pfxA, 2)
	bR, bP := a(pfxB, 1), a(pfxB, 2)
	for _, ns := range []string{r, p} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	cidr := func(x netip.Addr) string { return x.String() + "/24" }
	mtu := fmt.Sprint(pmtuMTU)
	steps := [][]string{
		{"-n", e.NS, "link", "add", "pmtu0", "mtu", mtu, "type", "veth", "peer", "name", "pmtu1", "netns", r, "mtu", mtu},
		{"-n", r, "link", "add", "pmtu2", "type", "veth", "peer", "name", "pmtu3", "netns", p},
		{"-n", e.NS, "addr", "add", cidr(aNS), "dev", "pmtu0"},
		{"-n", r, "addr", "add", cidr(aR), "dev", "pmtu1"},
		{"-n", r, "addr", "add", cidr(bR), "dev", "pmtu2"},
		{"-n", p, "addr", "add", cidr(bP), "dev", "pmtu3"},
		{"-n", e.NS, "link", "set", "pmtu0", "up"},
		{"-n", r, "link", "set", "pmtu1", "up"},
		{"-n", r, "link", "set", "pmtu2", "up"},
		{"-n", r, "link", "set", "lo", "up"},
		{"-n", p, "link", "set", "pmtu3", "up"},
		{"-n", p, "link", "set", "lo", "up"},
		{"-n", e.NS, "route", "add", pfxB.Masked().String(), "via", aR.String()},
		{"-n", r, "route", "add", netip.PrefixFrom(e.Addr, 24).Masked().String(), "via", aNS.String()},
		{"-n", p, "route", "add", "default", "via", bR.String()},
	}
	for _, s := range steps {
		run(t, "ip", s...)
	}
	for _, ns := range []string{e.NS, r} {
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	// Traffic only to addresses in namespaces of ours: the peer's route to
	// saturn must leave by the link made here.
	out := run(t, "ip", "-n", p, "route", "get", e.Addr.String())
	if !strings.Contains(out, "dev pmtu3") {
		t.Fatalf("the peer's route to saturn is not ours: %s", out)
	}
	return &pmtuPath{t: t, e: e, r: r, p: p, peerAddr: bP}
}

// dropICMP makes the routers send no ICMP to saturn, and with peerToo none
// to the peer either: a policy rule sends the ICMP they would originate
// to that end down a blackhole. The peer, Linux, then needs its own
// packetization-layer discovery (tcp_mtu_probing=1). It skips the test
// where ip rule cannot match on the protocol.
func (pp *pmtuPath) dropICMP(peerToo bool) {
	t := pp.t
	rules := []struct{ ns, to string }{{pp.e.NS, pp.e.Addr.String()}}
	if peerToo {
		rules = append(rules, struct{ ns, to string }{pp.r, pp.peerAddr.String()})
		run(t, "ip", "netns", "exec", pp.p, "sysctl", "-qw", "net.ipv4.tcp_mtu_probing=1")
	}
	for _, r := range rules {
		cmd := exec.Command("ip", "-n", r.ns, "rule", "add", "to", r.to+"/32", "ipproto", "icmp", "blackhole")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("cannot drop the routers' ICMP (ip rule ... ipproto icmp blackhole): %v: %s", err, out)
		}
	}
}

// run runs a command and fails the test if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// transfer moves size bytes between saturn's app and a socket of the
// peer's, the way up says (saturn sends, else the peer), opened by saturn
// (up) or by the peer (down), and checks the SHA-256 of what arrived.
func (pp *pmtuPath) transfer(up bool, seed uint64, size int64) {
	tr := transfer{name: "peer→saturn", active: up, upload: up, seed: seed, size: size, timeout: 60 * time.Second}
	if up {
		tr.name = "saturn→peer"
	}
	tr.run(pp.t, pp.e, pp.p, pp.peerAddr)
}

// TestPathMTUInterop transfers both ways between saturn and Linux across
// a 1280-byte link between two routers, with the routers' ICMP
// "fragmentation needed" delivered (RFC 1191) and with the ICMP to saturn
// dropped (a black hole, found by RFC 4821's probing). Every byte is
// checked. saturn sends first, on two connections: it keeps no path MTU
// between connections, so each learns it again (the peer's SYN-ACK still
// offers 1460: it has sent nothing large yet). Then the peer sends. -long
// (or SATURN_LONG=1) moves 256 MiB each time and drops the ICMP to the
// peer too, which then finds the black hole with Linux's tcp_mtu_probing
// (some seconds: Linux waits for three timeouts).
func TestPathMTUInterop(t *testing.T) {
	testkit.NeedTUN(t)
	size := int64(8 << 20)
	if *long {
		size = 256 << 20
	}
	for _, mode := range []string{"icmp", "blackhole"} {
		t.Run(mode, func(t *testing.T) {
			pp := newPMTUPath(t)
			if mode == "blackhole" {
				pp.dropICMP(*long)
			}
			pp.transfer(true, 11, size)
			pp.transfer(true, 12, size)
			pp.transfer(false, 13, size)
			c := pp.e.Counters()
			t.Logf("icmp frag-needed %d (ignored %d), pmtu reductions %d, black holes %d, probes %d (failed %d), timeouts %d, retransmits %d",
				c["icmp.in_frag_needed"], c["icmp.in_frag_needed_ignored"], c["tcp.pmtu_reductions"], c["tcp.pmtu_blackholes"],
				c["tcp.pmtu_probes"], c["tcp.pmtu_probe_failures"], c["tcp.timeouts"], c["tcp.retrans_segs"])
			switch mode {
			case "icmp":
				if c["tcp.pmtu_reductions"] < 2 {
					t.Errorf("%d MSS reductions by ICMP, want one for each connection saturn sent on", c["tcp.pmtu_reductions"])
				}
			case "blackhole":
				if c["icmp.in_frag_needed"] != 0 {
					t.Errorf("%d ICMP fragmentation-needed arrived although the routers send none", c["icmp.in_frag_needed"])
				}
				if c["tcp.pmtu_blackholes"] < 2 {
					t.Errorf("%d black holes found, want one for each connection saturn sent on", c["tcp.pmtu_blackholes"])
				}
			}
		})
	}
}

// icmpFragNeeded builds an ICMP "fragmentation needed" from the kernel's
// end of the TUN link to saturn, quoting a TCP datagram from saturn to the
// kernel: the quoted header's fields as given, then quote bytes of TCP
// header (ports and sequence number first).
func icmpFragNeeded(e *stackEnv, from, to netip.AddrPort, seq uint32, mtu uint16, df bool, quote int) []byte {
	qf := header.IPv4Fields{TTL: 64, Protocol: header.TCPProtocolNumber, TotalLength: 1500,
		SrcAddr: header.IPv4Addr(from.Addr().As4()), DstAddr: header.IPv4Addr(to.Addr().As4())}
	if df {
		qf.Flags = header.IPv4FlagDontFragment
	}
	q := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize)
	header.IPv4(q).Encode(&qf)
	header.TCP(q[header.IPv4MinimumSize:]).Encode(&header.TCPFields{SrcPort: from.Port(), DstPort: to.Port(), SeqNum: seq,
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck})
	q = q[:header.IPv4MinimumSize+quote]
	msg := make([]byte, header.ICMPv4MinimumSize+len(q))
	m := header.ICMPv4(msg)
	m.SetType(header.ICMPv4DstUnreachable)
	m.SetCode(header.ICMPv4FragmentationNeeded)
	binary.BigEndian.PutUint16(msg[6:], mtu)
	copy(m.Payload(), q)
	m.SetChecksum(^header.Checksum(msg, 0))
	ipf := header.IPv4Fields{TTL: 64, Protocol: header.ICMPv4ProtocolNumber, TotalLength: uint16(header.IPv4MinimumSize + len(msg)),
		SrcAddr: header.IPv4Addr(e.Peer.As4()), DstAddr: header.IPv4Addr(e.Addr.As4())}
	pkt := make([]byte, header.IPv4MinimumSize+len(msg))
	header.IPv4(pkt).Encode(&ipf)
	copy(pkt[header.IPv4MinimumSize:], msg)
	return pkt
}

// TestForgedFragNeeded injects ICMP "fragmentation needed" messages that
// a blind attacker could send (RFC 5927, 7) about a connection carrying
// data: for no connection of ours, about a datagram without DF, with a
// quote too short for the sequence number, and with a sequence number not
// in flight. Each is counted and ignored: the MSS stays what the handshake
// agreed, and the connection stays byte-exact.
func TestForgedFragNeeded(t *testing.T) {
	e := startStack(t, usertcp.Config{})
	c := e.echoConn(t, 7300, 0)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	roundTrip := func(seed uint64) {
		t.Helper()
		out := make([]byte, 64<<10)
		newStream(seed, int64(len(out))).Read(out)
		go c.Write(out)
		back := make([]byte, len(out))
		if _, err := io.ReadFull(c, back); err != nil || !bytes.Equal(back, out) {
			t.Fatalf("echo after forged ICMP: %v", err)
		}
	}
	roundTrip(1)
	info := e.established(t)
	saturn := netip.AddrPortFrom(e.Addr, 7300)
	kernel := netip.MustParseAddrPort(c.LocalAddr().String())
	other := netip.AddrPortFrom(e.Peer, kernel.Port()+1)
	in := newInjector(t, e.NS, e.Stack.Info()["tun"])
	base := e.Counters()
	for _, f := range []struct {
		name string
		pkt  []byte
		want string
	}{
		{"no such connection", icmpFragNeeded(e, saturn, other, uint32(info.SndUna), 576, true, 8), "icmp.in_frag_needed_ignored"},
		{"quoted datagram without DF", icmpFragNeeded(e, saturn, kernel, uint32(info.SndUna), 576, false, 8), "icmp.in_frag_needed_ignored"},
		{"quote without the sequence number", icmpFragNeeded(e, saturn, kernel, uint32(info.SndUna), 576, true, 4), "icmp.in_frag_needed_ignored"},
		{"sequence number not in flight", icmpFragNeeded(e, saturn, kernel, uint32(info.SndUna)-100000, 576, true, 8), "tcp.pmtu_ignored"},
	} {
		if err := in.send(f.pkt); err != nil {
			t.Fatalf("%s: inject: %v", f.name, err)
		}
		want := map[string]uint64{f.want: 1}
		got, err := e.waitCounters(base, want, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		base = got
	}
	if m := e.established(t).MSS; m != info.MSS {
		t.Errorf("MSS %d after forged ICMP, was %d", m, info.MSS)
	}
	roundTrip(2)
}
