package usertcp_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc/link"
	"saturn/netproc/tcp"
	"saturn/netproc/usertcp"
)

var long = flag.Bool("long", os.Getenv("SATURN_LONG") != "", "run the 1 GiB transfers (also SATURN_LONG=1)")

// stream is a deterministic byte stream of n bytes for a seed: what a
// sender writes and a receiver checks, without holding it.
type stream struct {
	rng *rand.ChaCha8
	n   int64
}

func newStream(seed uint64, n int64) *stream {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &stream{rng: rand.NewChaCha8(s), n: n}
}

func (s *stream) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	s.rng.Read(p)
	s.n -= int64(len(p))
	return len(p), nil
}

// digest is the SHA-256 of a stream, as its receiver should find it.
func digest(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.CopyBuffer(h, newStream(seed, n), make([]byte, 256<<10))
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// sendStream writes the stream to c, half-closes, and waits for the peer's
// digest of what it got.
func sendStream(c net.Conn, seed uint64, n int64) error {
	if _, err := io.CopyBuffer(c, newStream(seed, n), make([]byte, 256<<10)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	var got [32]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return fmt.Errorf("reading the receiver's digest: %w", err)
	}
	if got != digest(seed, n) {
		return fmt.Errorf("the receiver's digest of %d bytes differs", n)
	}
	return nil
}

// receiveStream reads c to its end and answers with the digest.
func receiveStream(c net.Conn) (int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, c, make([]byte, 256<<10))
	if err != nil {
		return n, fmt.Errorf("receive: %w", err)
	}
	_, err = c.Write(h.Sum(nil))
	return n, err
}

// A transfer's direction and who opens.
type transfer struct {
	name    string
	active  bool // saturn's app dials the kernel (else the kernel dials saturn)
	upload  bool // saturn's app sends (else the kernel sends)
	seed    uint64
	size    int64
	timeout time.Duration
}

// run carries out one transfer between e's app and a kernel socket at
// peer, in the namespace ns, and checks the bytes.
func (tr transfer) run(t *testing.T, e *stackEnv, ns string, peer netip.Addr) {
	ctx, cancel := context.WithTimeout(context.Background(), tr.timeout)
	defer cancel()
	var saturnSide, kernelSide net.Conn
	if tr.active {
		ln, err := testkit.ListenInNamespace(ns, netip.AddrPortFrom(peer, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		acc := acceptOne(ln)
		c, err := e.App.Dial(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial %s from saturn: %v", ln.Addr(), err)
		}
		saturnSide, kernelSide = c, <-acc
	} else {
		ln, err := e.App.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		acc := acceptOne(ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		c, err := testkit.DialInNamespace(ns, net.JoinHostPort(e.Addr.String(), port), 10*time.Second)
		if err != nil {
			t.Fatalf("dial saturn from %s: %v", ns, err)
		}
		kernelSide, saturnSide = c, <-acc
	}
	if saturnSide == nil || kernelSide == nil {
		t.Fatal("no connection")
	}
	defer saturnSide.Close()
	defer kernelSide.Close()
	deadline, _ := ctx.Deadline()
	saturnSide.SetDeadline(deadline)
	kernelSide.SetDeadline(deadline)
	sender, receiver := kernelSide, saturnSide
	if tr.upload {
		sender, receiver = saturnSide, kernelSide
	}
	start := time.Now()
	got := make(chan error, 1)
	go func() {
		n, err := receiveStream(receiver)
		if err == nil && n != tr.size {
			err = fmt.Errorf("received %d bytes, want %d", n, tr.size)
		}
		got <- err
	}()
	if err := sendStream(sender, tr.seed, tr.size); err != nil {
		t.Fatalf("%s: %v", tr.name, err)
	}
	if err := <-got; err != nil {
		t.Fatalf("%s: %v", tr.name, err)
	}
	el := time.Since(start)
	t.Logf("%s: %d MiB in %v (%.0f MB/s)", tr.name, tr.size>>20, el.Round(time.Millisecond), float64(tr.size)/el.Seconds()/1e6)
}

// TestTransfers moves streams both ways with Linux as the peer, with saturn
// opening (active) and accepting (passive), over a clean link and with
// netproc's impairment at 1%, 5% and 10% loss in each direction, plus 1%
// reordering and 1% duplication, and once more at 5% with BBR (its pacing
// timer on usertcp's timer wheel); every byte is checked (SHA-256). A few
// MB each time; -long (or SATURN_LONG=1) moves 1 GiB each time.
func TestTransfers(t *testing.T) {
	testkit.NeedTUN(t)
	links := []struct {
		name   string
		impair link.ImpairOptions
		size   int64
		cc     tcp.CCAlgorithm
	}{
		{"clean", link.ImpairOptions{}, 16 << 20, 0},
		{"loss1", link.ImpairOptions{Seed: 1, DropPercent: 1, DuplicatePercent: 1, ReorderPercent: 1}, 8 << 20, 0},
		{"loss5", link.ImpairOptions{Seed: 5, DropPercent: 5, DuplicatePercent: 1, ReorderPercent: 1}, 4 << 20, 0},
		{"loss10", link.ImpairOptions{Seed: 10, DropPercent: 10, DuplicatePercent: 1, ReorderPercent: 1}, 2 << 20, 0},
		{"bbr-loss5", link.ImpairOptions{Seed: 5, DropPercent: 5, DuplicatePercent: 1, ReorderPercent: 1}, 4 << 20, tcp.CCBBR},
	}
	for _, l := range links {
		t.Run(l.name, func(t *testing.T) {
			size := l.size
			if *long {
				size = 1 << 30
			}
			e := startStack(t, usertcp.Config{Impair: l.impair, Conn: tcp.Config{Congestion: l.cc}})
			timeout := 60 * time.Second
			if *long {
				timeout = 30 * time.Minute
			}
			for i, tr := range []transfer{
				{name: "kernel→saturn (passive)", upload: false},
				{name: "saturn→kernel (passive)", upload: true},
				{name: "kernel→saturn (active)", active: true, upload: false},
				{name: "saturn→kernel (active)", active: true, upload: true},
			} {
				tr.seed, tr.size, tr.timeout = uint64(i+1)*1000+l.impair.Seed, size, timeout
				tr.run(t, e, e.NS, e.Peer)
			}
			c := e.Counters()
			t.Logf("retransmits %d, fast %d, timeouts %d (undone %d), sack recoveries %d (undone %d), ofo queued %d; impair tx dropped %d rx dropped %d",
				c["tcp.retrans_segs"], c["tcp.fast_retransmits"], c["tcp.timeouts"], c["tcp.spurious_rtos"], c["tcp.sack_recoveries"],
				c["tcp.spurious_recoveries"], c["tcp.ofo_queued"], c["link.impair_tx_dropped"], c["link.impair_rx_dropped"])
			if l.impair.Active() && (c["link.impair_tx_dropped"] == 0 || c["tcp.retrans_segs"] == 0) {
				t.Errorf("impairment had no effect: %v", c)
			}
		})
	}
}
