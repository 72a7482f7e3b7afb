package tcp

import (
	"math/rand/v2"
	"testing"
	"time"

	"saturn/netproc/tcp/seqnum"
)

// establishedWithFlight returns a pair whose side 0 has MSS 1460 and
// n bytes in flight, none of them delivered yet.
func establishedWithFlight(t *testing.T, cfg Config, n int) *pair {
	t.Helper()
	cfg.MSS, cfg.NoDelay = 1460, true
	p := newPair([2]Config{cfg, cfg}, [2]int{64 << 10, 64 << 10}, [2]int{64 << 10, 64 << 10}, CookiesNever)
	p.settle()
	if p.conns[0].state != StateEstablished || p.conns[0].snd.mss != 1460 {
		t.Fatalf("handshake: %v, mss %d", p.conns[0].state, p.conns[0].snd.mss)
	}
	p.send(0, n)
	return p
}

// finish delivers, fires timers and reads until side 0's data has all
// arrived, or a bound.
func finish(p *pair) {
	for k := 0; k < 100 && len(p.got[1]) < len(p.sent[0]); k++ {
		p.settle()
		p.read(1, 1<<20)
		p.advance(time.Second)
	}
}

// The checks on an ICMP "fragmentation needed" (RFC 1191; RFC 5927) and
// the MSS each case leaves.
func TestPacketTooBigChecks(t *testing.T) {
	tests := []struct {
		name      string
		mtu, size uint16
		seq       func(c *Conn) seqnum.Value
		mss       uint16
	}{
		{"RFC 5927, 4.1: a sequence number below SND.UNA", 1200, 1500, func(c *Conn) seqnum.Value { return c.snd.una - 1 }, 1460},
		{"RFC 5927, 4.1: a sequence number at SND.NXT", 1200, 1500, func(c *Conn) seqnum.Value { return c.snd.nxt }, 1460},
		{"RFC 5927, 4.1: a sequence number far away", 1200, 1500, func(c *Conn) seqnum.Value { return c.snd.una + 1<<30 }, 1460},
		{"in flight: the MTU less 40", 1200, 1500, func(c *Conn) seqnum.Value { return c.snd.una }, 1160},
		{"in flight, the last byte", 1200, 1500, func(c *Conn) seqnum.Value { return c.snd.nxt - 1 }, 1160},
		{"RFC 1191, 3: an MTU that would raise the MSS", 1600, 1500, func(c *Conn) seqnum.Value { return c.snd.una }, 1460},
		{"RFC 1191, 3: an MTU that would keep it", 1500, 1500, func(c *Conn) seqnum.Value { return c.snd.una }, 1460},
		{"RFC 791: an MTU below 68 is bogus", 67, 1500, func(c *Conn) seqnum.Value { return c.snd.una }, 1460},
		{"RFC 5927, 7.2: an MTU of 68 counts as 576", 68, 1500, func(c *Conn) seqnum.Value { return c.snd.una }, 536},
		{"RFC 1191, 5: no MTU, the plateau below 1500", 0, 1500, func(c *Conn) seqnum.Value { return c.snd.una }, 1452},
		{"RFC 1191, 5: no MTU, the plateau below 1006", 0, 1006, func(c *Conn) seqnum.Value { return c.snd.una }, 536},
		{"RFC 1191, 5: no MTU and no size", 0, 0, func(c *Conn) seqnum.Value { return c.snd.una }, 1460},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := establishedWithFlight(t, Config{}, 8000)
			c := &p.conns[0]
			cwnd, ssthresh := c.cc.Cwnd, c.cc.Ssthresh
			p.queue[1] = nil // the segments in flight are lost at the hop
			out, err := p.step(0, Input{Kind: InPacketTooBig, PTB: PacketTooBig{MTU: tt.mtu, Size: tt.size, Seq: tt.seq(c)}})
			if err != nil {
				t.Fatal(err)
			}
			if c.snd.mss != tt.mss {
				t.Fatalf("mss %d, want %d", c.snd.mss, tt.mss)
			}
			if c.cc.Cwnd != cwnd || c.cc.Ssthresh != ssthresh {
				t.Errorf("cwnd %d ssthresh %d, were %d and %d: a path MTU change is no congestion", c.cc.Cwnd, c.cc.Ssthresh, cwnd, ssthresh)
			}
			if tt.mss == 1460 {
				if len(out.Segments) != 0 {
					t.Errorf("ignored, but %d segments sent", len(out.Segments))
				}
				return
			}
			// Everything in flight goes again at once, none larger than the new MSS.
			resent := 0
			for _, s := range out.Segments {
				if s.PayloadLen() > int(tt.mss) {
					t.Errorf("segment of %d bytes after the MSS fell to %d", s.PayloadLen(), tt.mss)
				}
				resent += s.PayloadLen()
			}
			if resent != 8000 {
				t.Errorf("%d bytes resent, want the 8000 in flight", resent)
			}
			finish(p)
			if err := p.check(); err != nil || len(p.got[1]) != 8000 {
				t.Fatalf("after the reduction: %v, %d bytes read", err, len(p.got[1]))
			}
		})
	}
}

// TestPacketTooBigForged throws random ICMP messages at a connection while
// it sends (an attacker who guesses, RFC 5927, 7): the MSS never rises,
// never falls below 536, the connection's invariants hold, and every byte
// arrives in order.
func TestPacketTooBigForged(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		r := rand.New(rand.NewPCG(seed, 1191))
		p := establishedWithFlight(t, Config{FastLossRecovery: seed%2 == 0}, 0)
		for round := 0; round < 200; round++ {
			c := &p.conns[0]
			switch r.IntN(4) {
			case 0:
				p.send(0, r.IntN(6000))
			case 1:
				seq := c.snd.una.Add(seqnum.Size(r.IntN(int(c.snd.una.Size(c.snd.nxt)) + 3000))).Sub(1500)
				p.step(0, Input{Kind: InPacketTooBig, PTB: PacketTooBig{MTU: uint16(r.IntN(1600)), Size: uint16(r.IntN(1600)), Seq: seq}})
			case 2:
				for k := 0; k < r.IntN(8) && len(p.queue[0])+len(p.queue[1]) > 0; k++ {
					i := r.IntN(2)
					if len(p.queue[i]) == 0 {
						i = 1 - i
					}
					p.deliver(i, 0)
				}
			case 3:
				p.read(1, 1<<20)
			}
			if m := p.conns[0].snd.mss; m > 1460 || m < pmtuFloorMSS {
				t.Fatalf("seed %d: mss %d", seed, m)
			}
			if err := p.check(); err != nil {
				t.Fatalf("seed %d, round %d: %v", seed, round, err)
			}
		}
		finish(p)
		if len(p.got[1]) != len(p.sent[0]) {
			t.Fatalf("seed %d: %d of %d bytes arrived", seed, len(p.got[1]), len(p.sent[0]))
		}
	}
}
