package link_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc/link"
)

// numbered returns packets whose payload is their sequence number.
func numbered(from, n int) []link.Packet {
	pkts := make([]link.Packet, n)
	for i := range pkts {
		pkts[i] = packetOf(binary.BigEndian.AppendUint32(nil, uint32(from+i)))
	}
	return pkts
}

// runTx writes n numbered packets through an impaired channel in batches
// and returns the numbers that came out, in order.
func runTx(t *testing.T, opts link.ImpairOptions, n int) ([]uint32, link.ImpairStats) {
	t.Helper()
	ch := link.NewChannel(link.ChannelConfig{Queue: 4 * n})
	dev := link.NewImpaired(ch, opts)
	defer dev.Close()
	for from := 0; from < n; from += 32 {
		if _, err := dev.Write(numbered(from, min(32, n-from))); err != nil {
			t.Fatal(err)
		}
	}
	dev.Flush()
	var got []uint32
	timeout := time.After(opts.Delay + 5*time.Second)
	for {
		tx, _ := dev.Stats()
		want := tx.Packets - tx.Dropped + tx.Duplicated - tx.Overflow
		if uint64(len(got)) == want {
			return got, tx
		}
		select {
		case f := <-ch.Outbound():
			got = append(got, binary.BigEndian.Uint32(f.Data))
		case <-timeout:
			t.Fatalf("got %d packets, stats %+v", len(got), tx)
		}
	}
}

func TestImpairDeterministic(t *testing.T) {
	// A reorder timeout far longer than the test: only the packet sequence
	// and Flush decide the order.
	opts := link.ImpairOptions{Seed: 42, DropPercent: 5, DuplicatePercent: 5, ReorderPercent: 10, ReorderTimeout: time.Hour}
	first, st := runTx(t, opts, 2000)
	again, _ := runTx(t, opts, 2000)
	if !slices.Equal(first, again) {
		t.Fatal("same seed, different output")
	}
	opts.Seed = 43
	other, _ := runTx(t, opts, 2000)
	if slices.Equal(first, other) {
		t.Fatal("different seeds, same output")
	}
	// Rates within a generous band around the percentages.
	for name, c := range map[string]uint64{"dropped": st.Dropped, "duplicated": st.Duplicated, "reordered": st.Reordered} {
		want := uint64(100)
		if name == "reordered" {
			want = 200 * 95 / 100
		}
		if c < want/2 || c > want*2 {
			t.Errorf("%s %d of 2000, expected about %d", name, c, want)
		}
	}
	if st.Packets != 2000 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%+v", st)
}

func TestImpairReorder(t *testing.T) {
	got, st := runTx(t, link.ImpairOptions{Seed: 7, ReorderPercent: 20, ReorderTimeout: time.Hour}, 500)
	if len(got) != 500 || st.Reordered == 0 {
		t.Fatalf("%d packets, %+v", len(got), st)
	}
	// Every packet arrives once; a held packet comes out after 1 to 3
	// later ones passed it (later held ones do not count).
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v != uint32(i) {
			t.Fatalf("packet %d missing or duplicated", i)
		}
	}
	inversions := 0
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			inversions++
		}
	}
	if inversions == 0 {
		t.Fatal("nothing reordered")
	}
}

func TestImpairDropAll(t *testing.T) {
	got, st := runTx(t, link.ImpairOptions{DropPercent: 100}, 100)
	if len(got) != 0 || st.Dropped != 100 {
		t.Fatalf("%d packets out, %+v", len(got), st)
	}
}

func TestImpairDelay(t *testing.T) {
	const delay = 50 * time.Millisecond
	ch := link.NewChannel(link.ChannelConfig{})
	dev := link.NewImpaired(ch, link.ImpairOptions{Delay: delay})
	defer dev.Close()
	start := time.Now()
	dev.Write(numbered(0, 10))
	for i := range 10 {
		f := <-ch.Outbound()
		if got := binary.BigEndian.Uint32(f.Data); got != uint32(i) {
			t.Fatalf("packet %d came out as %d: a constant delay keeps the order", i, got)
		}
	}
	if el := time.Since(start); el < delay {
		t.Fatalf("packets out after %v, delay %v", el, delay)
	}
}

func TestImpairReadDirection(t *testing.T) {
	run := func(seed uint64) []uint32 {
		ch := link.NewChannel(link.ChannelConfig{Queue: 1024})
		dev := link.NewImpaired(ch, link.ImpairOptions{Seed: seed, DropPercent: 10, DuplicatePercent: 10, Delay: time.Millisecond})
		defer dev.Close()
		for i := range 300 {
			ch.Inbound() <- link.Frame{Data: binary.BigEndian.AppendUint32(nil, uint32(i))}
		}
		in := slots(dev, 16)
		var got []uint32
		for {
			_, rx := dev.Stats()
			if rx.Packets == 300 && uint64(len(got)) == rx.Packets-rx.Dropped+rx.Duplicated {
				return got
			}
			n, err := dev.Read(in)
			if err != nil {
				t.Fatal(err)
			}
			for i := range in[:n] {
				got = append(got, binary.BigEndian.Uint32(in[i].Bytes()))
			}
		}
	}
	a, b := run(1), run(1)
	if !slices.Equal(a, b) || len(a) < 200 {
		t.Fatalf("read direction not deterministic or too lossy: %d vs %d packets", len(a), len(b))
	}
}

func TestImpairCloseUnblocksRead(t *testing.T) {
	dev := link.NewImpaired(link.NewChannel(link.ChannelConfig{}), link.ImpairOptions{DropPercent: 1})
	errc := make(chan error)
	go func() { _, err := dev.Read(slots(dev, 1)); errc <- err }()
	testkit.WaitBlocked(t, "saturn/netproc/link.(*Impaired).Read", 1)
	dev.Close()
	if err := <-errc; err != link.ErrClosed {
		t.Fatalf("err %v", err)
	}
	if _, err := dev.Write(numbered(0, 1)); err != link.ErrClosed {
		t.Fatalf("write after close: %v", err)
	}
}

func TestImpairInactiveIsIdentity(t *testing.T) {
	ch := link.NewChannel(link.ChannelConfig{})
	if got := link.Impair(ch, link.ImpairOptions{Seed: 5}); got != link.Device(ch) {
		t.Fatal(fmt.Sprintf("%T", got))
	}
}

func TestImpairReorderTimeout(t *testing.T) {
	ch := link.NewChannel(link.ChannelConfig{})
	dev := link.NewImpaired(ch, link.ImpairOptions{ReorderPercent: 100, ReorderTimeout: 20 * time.Millisecond})
	defer dev.Close()
	start := time.Now()
	dev.Write(numbered(0, 1)) // held, and nothing comes to pass it
	select {
	case <-ch.Outbound():
		if el := time.Since(start); el < 20*time.Millisecond {
			t.Fatalf("released after %v, before the timeout", el)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("held packet never released")
	}
}
