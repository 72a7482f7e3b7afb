package ipv4

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"saturn/netproc/header"
)

// frag builds one fragment of datagram id carrying data at offset off.
func frag(id uint16, proto uint8, off int, more bool, data []byte) []byte {
	var flags uint8
	if more {
		flags = header.IPv4FlagMoreFragments
	}
	return packet(header.IPv4Fields{ID: id, Protocol: proto, Flags: flags, FragmentOffset: uint16(off)}, data)
}

// split cuts a payload into fragments of size bytes (a multiple of 8).
func split(id uint16, proto uint8, payload []byte, size int) [][]byte {
	var out [][]byte
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		out = append(out, frag(id, proto, off, end < len(payload), payload[off:end]))
	}
	return out
}

type step struct {
	pkt     []byte
	verdict Verdict
	reason  DropReason
}

func TestReassembly(t *testing.T) {
	tcp := header.TCPProtocolNumber
	payload := pattern(3000)
	f := split(7, tcp, payload, 1480) // 0-1479, 1480-2959, 2960-2999
	tests := []struct {
		name  string
		steps []step
		want  []byte // the payload delivered by the last step, if any
	}{
		{"in order (RFC 791 3.2)", []step{{f[0], VerdictHeld, 0}, {f[1], VerdictHeld, 0}, {f[2], VerdictDeliver, 0}}, payload},
		{"reverse order (RFC 815: the last fragment first)", []step{{f[2], VerdictHeld, 0}, {f[1], VerdictHeld, 0}, {f[0], VerdictDeliver, 0}}, payload},
		{"exact duplicate ignored", []step{{f[1], VerdictHeld, 0}, {f[1], VerdictDrop, DropReassemblyDuplicate}, {f[0], VerdictHeld, 0}, {f[2], VerdictDeliver, 0}}, payload},
		{"overlap discards the datagram (RFC 5722's rule)", []step{
			{f[0], VerdictHeld, 0},
			{frag(7, tcp, 1472, true, payload[1472:2960]), VerdictDrop, DropReassemblyOverlap},
			{f[1], VerdictDrop, DropReassemblyDiscarded},
			{f[2], VerdictDrop, DropReassemblyDiscarded},
		}, nil},
		{"overlap with same offset, other length", []step{
			{f[1], VerdictHeld, 0},
			{frag(7, tcp, 1480, true, payload[1480:1488]), VerdictDrop, DropReassemblyOverlap},
		}, nil},
		{"a last fragment ending before data already received", []step{
			{f[1], VerdictHeld, 0},
			{frag(7, tcp, 8, false, payload[8:1000]), VerdictDrop, DropReassemblyOverlap},
		}, nil},
		{"data after the last fragment's end", []step{
			{frag(7, tcp, 0, false, payload[:800]), VerdictDeliver, 0}, // not a fragment at all: a whole datagram
		}, payload[:800]},
		{"a second, shorter last fragment", []step{
			{f[2], VerdictHeld, 0},
			{frag(7, tcp, 1480, false, payload[1480:1488]), VerdictDrop, DropReassemblyOverlap},
		}, nil},
		{"non-last fragment not a multiple of 8 (RFC 791 3.2)", []step{{frag(7, tcp, 0, true, payload[:100]), VerdictDrop, DropBadFragment}}, nil},
		{"empty fragment", []step{{frag(7, tcp, 8, true, nil), VerdictDrop, DropBadFragment}}, nil},
		{"different IDs do not mix (RFC 791 3.2 key)", []step{{f[0], VerdictHeld, 0}, {split(8, tcp, payload, 1480)[1], VerdictHeld, 0}, {f[2], VerdictHeld, 0}}, nil},
		{"different protocols do not mix", []step{{f[0], VerdictHeld, 0}, {split(7, 17, payload, 1480)[1], VerdictHeld, 0}, {f[2], VerdictHeld, 0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEndpoint(nil)
			var res Result
			for i, s := range tt.steps {
				res = e.Input(append([]byte{}, s.pkt...), epoch)
				if res.Verdict != s.verdict || (s.verdict == VerdictDrop && res.Reason != s.reason) {
					t.Fatalf("step %d: %v/%v, want %v/%v", i, res.Verdict, res.Reason, s.verdict, s.reason)
				}
			}
			if tt.want != nil {
				h := mustValid(t, res.Datagram)
				if !bytes.Equal(h.Payload(), tt.want) || h.IsFragment() || h.ID() != 7 {
					t.Fatalf("delivered %d bytes, fragment %v", len(h.Payload()), h.IsFragment())
				}
			}
		})
	}
}

func TestReassemblyKeepsFirstFragmentOptions(t *testing.T) {
	e := newEndpoint(nil)
	payload := pattern(2000)
	opts := []byte{0x94, 4, 0, 0} // router alert, copied
	first := packet(header.IPv4Fields{ID: 3, Protocol: header.TCPProtocolNumber, Flags: header.IPv4FlagMoreFragments | header.IPv4FlagReserved, Options: opts}, payload[:1000])
	second := frag(3, header.TCPProtocolNumber, 1000, false, payload[1000:])
	e.Input(second, epoch)
	res := e.Input(first, epoch)
	if res.Verdict != VerdictDeliver || !res.Reassembled {
		t.Fatalf("%v/%v", res.Verdict, res.Reason)
	}
	h := mustValid(t, res.Datagram)
	if !bytes.Equal(h.Options(), opts) || !bytes.Equal(h.Payload(), payload) || h.Flags() != header.IPv4FlagReserved {
		t.Fatalf("options %x flags %d", h.Options(), h.Flags())
	}
	if e.ReassemblyBytes() != 0 {
		t.Fatalf("%d bytes still held", e.ReassemblyBytes())
	}
}

func TestReassemblyRandomOrderProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	e := newEndpoint(nil)
	for i := range 500 {
		payload := pattern(1 + rng.IntN(20000))
		// At most 200 fragments, below DefaultReassemblyFragments.
		size := max(8*(1+rng.IntN(300)), (len(payload)/200+8)&^7)
		frags := split(uint16(i), header.TCPProtocolNumber, payload, size)
		rng.Shuffle(len(frags), func(a, b int) { frags[a], frags[b] = frags[b], frags[a] })
		// Duplicate some fragments before the one that completes the
		// datagram (a duplicate after it would start a new reassembly).
		for n := len(frags); n > 1 && rng.IntN(2) == 0; {
			dup := frags[rng.IntN(n-1)]
			at := rng.IntN(len(frags) - 1)
			frags = append(frags[:at], append([][]byte{dup}, frags[at:]...)...)
		}
		var got []byte
		for _, f := range frags {
			res := e.Input(append([]byte{}, f...), epoch)
			if res.Verdict == VerdictDeliver {
				if got != nil {
					t.Fatalf("seed %d: delivered twice", seed)
				}
				got = mustValid(t, res.Datagram).Payload()
			}
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("seed %d datagram %d: got %d bytes, want %d", seed, i, len(got), len(payload))
		}
	}
	if e.ReassemblyBytes() != 0 {
		t.Fatalf("%d bytes still held", e.ReassemblyBytes())
	}
}

func TestReassemblyTimeout(t *testing.T) {
	e := newEndpoint(func(c *Config) { c.ReassemblyTimeout = 10 * time.Second })
	payload := pattern(3000)
	f := split(9, header.TCPProtocolNumber, payload, 1480)
	e.Input(f[0], epoch)
	e.Input(split(10, header.TCPProtocolNumber, payload, 1480)[1], epoch.Add(time.Second)) // no fragment zero
	if dl, ok := e.NextDeadline(); !ok || !dl.Equal(epoch.Add(10*time.Second)) {
		t.Fatalf("deadline %v %v", dl, ok)
	}
	var replies [][]byte
	send := func(r []byte) { replies = append(replies, append([]byte{}, r...)) }
	e.Expire(epoch.Add(9*time.Second), send)
	if len(replies) != 0 {
		t.Fatal("expired early")
	}
	e.Expire(epoch.Add(11*time.Second), send)
	// RFC 1122 3.3.2: time exceeded only if fragment zero was received.
	if len(replies) != 1 {
		t.Fatalf("%d time-exceeded messages, want 1", len(replies))
	}
	h := mustValid(t, replies[0])
	m := header.ICMPv4(h.Payload())
	if m.Type() != header.ICMPv4TimeExceeded || m.Code() != header.ICMPv4ReassemblyTimeout || !bytes.Equal(m.Payload(), f[0][:28]) {
		t.Fatalf("type %d code %d payload %x", m.Type(), m.Code(), m.Payload())
	}
	if _, ok := e.NextDeadline(); ok || e.ReassemblyBytes() != 0 {
		t.Fatal("reassemblies left after expiry")
	}
	st := e.Stats()
	if st.ReasmTimeouts != 2 || st.ReasmFails != 2 || st.ICMPOutTimeExcds != 1 {
		t.Fatalf("counters %+v", st)
	}
	// A late fragment starts over rather than completing the old datagram.
	if res := e.Input(f[1], epoch.Add(12*time.Second)); res.Verdict != VerdictHeld {
		t.Fatalf("late fragment %v", res.Verdict)
	}
}

func TestReassemblyTimeoutWithoutExpire(t *testing.T) {
	e := newEndpoint(func(c *Config) { c.ReassemblyTimeout = time.Second })
	f := split(9, header.TCPProtocolNumber, pattern(3000), 1480)
	e.Input(f[0], epoch)
	e.Input(f[1], epoch)
	if res := e.Input(f[2], epoch.Add(2*time.Second)); res.Verdict != VerdictHeld {
		t.Fatalf("fragment after the timeout completed a stale datagram: %v", res.Verdict)
	}
	if st := e.Stats(); st.ReasmTimeouts != 1 {
		t.Fatalf("counters %+v", st)
	}
}

func TestReassemblyBounds(t *testing.T) {
	t.Run("datagram count evicts the oldest", func(t *testing.T) {
		e := newEndpoint(func(c *Config) { c.ReassemblyMaxDatagrams = 2 })
		for id := range uint16(3) {
			e.Input(split(id, header.TCPProtocolNumber, pattern(3000), 1480)[1], epoch)
		}
		// Datagram 0 was evicted with its middle fragment; the others do
		// not complete it.
		f := split(0, header.TCPProtocolNumber, pattern(3000), 1480)
		for _, f := range [][]byte{f[0], f[2]} {
			if res := e.Input(f, epoch); res.Verdict == VerdictDeliver {
				t.Fatal("evicted datagram completed")
			}
		}
		if st := e.Stats(); st.ReasmFails < 1 {
			t.Fatalf("counters %+v", st)
		}
	})
	t.Run("memory", func(t *testing.T) {
		const limit = 32 << 10
		e := newEndpoint(func(c *Config) { c.ReassemblyMaxBytes = limit })
		rng := rand.New(rand.NewPCG(1, 1))
		for i := range 2000 {
			off := 8 * rng.IntN(8000)
			e.Input(frag(uint16(i), header.TCPProtocolNumber, off, true, pattern(1480)), epoch)
			if e.ReassemblyBytes() > limit {
				t.Fatalf("holding %d bytes, limit %d", e.ReassemblyBytes(), limit)
			}
		}
		// A datagram that alone exceeds the memory bound is refused.
		if res := e.Input(frag(9999, header.TCPProtocolNumber, 65000, false, pattern(8)), epoch); res.Reason != DropReassemblyLimit {
			t.Fatalf("%v/%v", res.Verdict, res.Reason)
		}
	})
	t.Run("fragments per datagram", func(t *testing.T) {
		e := newEndpoint(func(c *Config) { c.ReassemblyMaxFragments = 4 })
		var res Result
		for i := range 5 {
			res = e.Input(frag(1, header.TCPProtocolNumber, 16*i, true, pattern(8)), epoch)
		}
		if res.Reason != DropReassemblyLimit {
			t.Fatalf("%v/%v", res.Verdict, res.Reason)
		}
	})
	t.Run("reassembled size above 65535 (ping of death)", func(t *testing.T) {
		e := newEndpoint(nil)
		// Fragment zero has 40 bytes of options; the last fragment is valid
		// alone (RFC 791 allows 65535 - 20 bytes after a minimal header).
		first := packet(header.IPv4Fields{ID: 1, Protocol: header.TCPProtocolNumber, Flags: header.IPv4FlagMoreFragments, Options: make([]byte, 40)}, pattern(8))
		first[20] = 1 // NOP then end of list
		e.Input(fixChecksum(first), epoch)
		res := e.Input(frag(1, header.TCPProtocolNumber, 65480, false, pattern(8)), epoch)
		if res.Reason != DropReassemblyLimit {
			t.Fatalf("%v/%v", res.Verdict, res.Reason)
		}
	})
}

func TestFragmentReassembleRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	tx := New(Config{Addr: peer, InitialID: 500})
	rx := newEndpoint(nil)
	for range 300 {
		mtu := MinimumMTU + rng.IntN(9000)
		payload := pattern(1 + rng.IntN(20000))
		var opts []byte
		if rng.IntN(3) == 0 {
			opts = []byte{0x94, 4, 0, 0, 0x07, 7, 4, 0, 0, 0, 0, 1} // router alert (copied), record route (not)
		}
		f := header.IPv4Fields{Protocol: header.TCPProtocolNumber, SrcAddr: peer, DstAddr: ours, TTL: 64, ID: uint16(rng.Uint32()), Options: opts}
		pkt := packet(f, payload)
		n := FragmentCount(pkt, mtu)
		bufs := make([][]byte, n)
		for i := range bufs {
			bufs[i] = make([]byte, mtu)
		}
		got, err := tx.Fragment(pkt, mtu, bufs)
		if err != nil || got != n {
			t.Fatalf("mtu %d len %d: %d fragments, want %d: %v", mtu, len(pkt), got, n, err)
		}
		var delivered []byte
		for i, idx := range rng.Perm(n) {
			fr := bufs[idx][:header.IPv4(bufs[idx]).TotalLength()]
			h := mustValid(t, fr)
			if len(fr) > mtu || (n > 1 && idx > 0 && len(h.Options()) != 4*len(opts)/12) {
				t.Fatalf("fragment %d: %d bytes, options %x", idx, len(fr), h.Options())
			}
			res := rx.Input(append([]byte{}, fr...), epoch)
			if i == n-1 {
				if res.Verdict != VerdictDeliver {
					t.Fatalf("last fragment: %v/%v", res.Verdict, res.Reason)
				}
				delivered = res.Datagram
			}
		}
		if !bytes.Equal(header.IPv4(delivered).Payload(), payload) || !bytes.Equal(header.IPv4(delivered).Options(), header.IPv4(pkt).Options()) {
			t.Fatalf("mtu %d: round trip differs", mtu)
		}
	}
}

func TestFragmentErrors(t *testing.T) {
	e := newEndpoint(nil)
	pkt := packet(header.IPv4Fields{Protocol: 6, Flags: header.IPv4FlagDontFragment}, pattern(3000))
	bufs := [][]byte{make([]byte, 1500), make([]byte, 1500), make([]byte, 1500)}
	if _, err := e.Fragment(pkt, 1500, bufs); err != ErrDontFragment {
		t.Fatalf("DF: %v", err)
	}
	pkt = packet(header.IPv4Fields{Protocol: 6}, pattern(3000))
	if _, err := e.Fragment(pkt, 1500, bufs[:2]); err != ErrTooFewBuffers {
		t.Fatalf("buffers: %v", err)
	}
	if _, err := e.Fragment(pkt, 60, bufs); err != ErrMTUTooSmall {
		t.Fatalf("mtu: %v", err)
	}
	// RFC 791's example: fragments carry multiples of 8 bytes.
	n, err := e.Fragment(pkt, 1500, bufs)
	if err != nil || n != 3 {
		t.Fatal(n, err)
	}
	for i, want := range []int{1500, 1500, 60} {
		h := header.IPv4(bufs[i])
		if int(h.TotalLength()) != want || int(h.FragmentOffset()) != 1480*i || h.MoreFragments() != (i < 2) {
			t.Fatalf("fragment %d: %+v", i, h.Fields())
		}
	}
	if st := e.Stats(); st.FragOKs != 1 || st.FragCreates != 3 || st.FragFails != 3 {
		t.Fatalf("counters %+v", st)
	}
}

func TestReassemblyDiscardedCountedOnce(t *testing.T) {
	e := newEndpoint(nil)
	f := split(7, header.TCPProtocolNumber, pattern(3000), 1480)
	e.Input(f[1], epoch)
	e.Input(frag(7, header.TCPProtocolNumber, 1472, true, pattern(16)), epoch) // overlap
	e.Expire(epoch.Add(time.Hour), nil)
	if st := e.Stats(); st.ReasmFails != 1 || st.ReasmTimeouts != 0 {
		t.Fatalf("counters %+v", st)
	}
}
