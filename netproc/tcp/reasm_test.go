package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"saturn/netproc/tcp/seqnum"
)

// TestReassemblyModel checks receive-side reassembly against a naive model:
// a bitmap of the bytes accepted. Random segments (overlapping, duplicated,
// out of order, beyond the window) arrive while the application reads at
// random; after every step the connection's in-order data must be the
// model's contiguous prefix, its out-of-order ranges exactly the model's
// islands beyond it, and every byte read the byte sent (RFC 9293,
// 3.10.7.4: segments are trimmed to the window; out-of-order data is kept
// and delivered once the hole fills).
func TestReassemblyModel(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		reassemblyRun(t, seed)
		if t.Failed() {
			t.Logf("failing seed %d", seed)
			return
		}
	}
}

func reassemblyRun(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	rcvSize := 500 + r.IntN(5000)
	stream := make([]byte, 3*rcvSize+r.IntN(20000))
	for i := range stream {
		stream[i] = byte(r.Uint32())
	}
	var c Conn
	snd, rcv := make([]byte, 1000), make([]byte, rcvSize)
	var st Stats
	now := Time(time.Second)
	step := func(in Input) Output {
		var out Output
		if err := c.Step(in, now, Mem{Send: snd, Recv: rcv, Stats: &st}, &out); err != nil && in.Kind != InRead {
			t.Fatalf("seed %d: %v", seed, err)
		}
		return out
	}
	step(Input{Kind: InConnect, Connect: ConnectParams{ISS: 1, Config: Config{DisableTimestamps: true, MSS: 1460}}})
	synack := Segment{Seq: 1000, Ack: 2, Flags: FlagSYN | FlagACK, Window: 60000, Options: NoOptions()}
	synack.Options.SACKPermitted = r.IntN(2) == 0
	step(Input{Kind: InSegment, Seg: synack})
	base := seqnum.Value(1001)

	have := make([]bool, len(stream)) // the model: bytes accepted
	prefix := 0                       // model's in-order end
	read := 0
	for iter := 0; iter < 400; iter++ {
		if r.IntN(4) == 0 {
			buf := make([]byte, 1+r.IntN(rcvSize))
			out := step(Input{Kind: InRead, Data: buf})
			if !bytes.Equal(buf[:out.N], stream[read:read+out.N]) {
				t.Fatalf("seed %d: read wrong bytes at %d", seed, read)
			}
			read += out.N
			continue
		}
		// A segment somewhere around the window.
		off := prefix - 200 + r.IntN(rcvSize+400)
		off = max(0, min(off, len(stream)-1))
		n := 1 + r.IntN(min(1500, len(stream)-off))
		info := c.Info()
		wndStart, wndEnd := int(info.RcvNxt-base), int(info.RcvNxt-base)+int(info.RcvWnd)
		drops := st.Drops[DropOFOFull]
		seg := Segment{Seq: base.Add(seqnum.Size(off)), Ack: 2, Flags: FlagACK, Window: 60000,
			Options: NoOptions(), Payload: stream[off : off+n]}
		step(Input{Kind: InSegment, Seg: seg})
		lo, hi := max(off, wndStart), min(off+n, wndEnd)
		accepted := st.Drops[DropOFOFull] == drops || lo == prefix
		if lo < hi && accepted {
			for i := lo; i < hi; i++ {
				have[i] = true
			}
		}
		for prefix < len(have) && have[prefix] {
			prefix++
		}
		// Compare with the connection.
		info = c.Info()
		if got := int(info.RcvNxt - base); got != prefix {
			t.Fatalf("seed %d iter %d: rcv.nxt at %d, model %d", seed, iter, got, prefix)
		}
		if got := read + int(info.Readable); got != prefix {
			t.Fatalf("seed %d iter %d: read+readable %d, model %d", seed, iter, got, prefix)
		}
		// Nothing beyond the window can be held, so scan only that far.
		var islands []seqRange
		end := min(len(have), prefix+rcvSize+1)
		for i := prefix; i < end; i++ {
			if have[i] && (i == prefix || !have[i-1]) {
				islands = append(islands, seqRange{start: base.Add(seqnum.Size(i))})
			}
			if have[i] && (i+1 == len(have) || !have[i+1]) {
				islands[len(islands)-1].end = base.Add(seqnum.Size(i + 1))
			}
		}
		if len(islands) != int(c.rcv.nOOO) {
			t.Fatalf("seed %d iter %d: %d out-of-order ranges, model %d", seed, iter, c.rcv.nOOO, len(islands))
		}
		for i, is := range islands {
			if o := c.rcv.ooo[i]; o.start != is.start || o.end != is.end {
				t.Fatalf("seed %d iter %d: range %d is [%d,%d), model [%d,%d)", seed, iter, i, o.start, o.end, is.start, is.end)
			}
		}
		if err := c.Check(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}
