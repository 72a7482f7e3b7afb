package appproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc/netproctest"
	"saturn/ring"
)

// sendPair is an appproc connection (the sender under test) and the kernel
// socket at its other end.
func sendPair(t *testing.T, g ring.Geometry) (*TCPConn, net.Conn, *Channel) {
	t.Helper()
	srv := startNetproc(t)
	a := netApp(t, srv, "sender", g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := a.DialTCP(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	ch, _ := a.Channel("netproc")
	return c, peer, ch
}

// smallBuffers has buffers small enough that a few KiB take several, and
// few enough that the write path runs short of them.
func smallBuffers() ring.Geometry {
	g := netproctest.Geometry
	g.BufferSize, g.BufferCount = 4096, 6
	return g
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// readAllFrom reads n bytes from peer in the background.
func readAllFrom(peer net.Conn, n int) <-chan []byte {
	got := make(chan []byte, 1)
	go func() {
		peer.SetReadDeadline(time.Now().Add(20 * time.Second))
		b := make([]byte, n)
		k, _ := io.ReadFull(peer, b)
		got <- b[:k]
	}()
	return got
}

// waitBuffers waits until every buffer of ch is back in its pool: the path
// under test must hand back all it took, whatever happened.
func waitBuffers(t *testing.T, ch *Channel) {
	t.Helper()
	// One buffer may be a Read's in flight; none of ours.
	if !testkit.Until(5*time.Second, func() bool { return ch.FreeBuffers() >= ch.end.Pool.Len()-1 }) {
		t.Fatalf("%d of %d buffers free", ch.FreeBuffers(), ch.end.Pool.Len())
	}
}

// TestWriteFromSection: a head and a section of an io.ReaderAt arrive
// whole and in order, for sizes around the buffer size and spanning many
// buffers (more than a connection may have in flight), and the section's
// offset ends past what was sent.
func TestWriteFromSection(t *testing.T) {
	g := smallBuffers()
	c, peer, ch := sendPair(t, g)
	bs := int(g.BufferSize)
	data := randomBytes(20*bs+123, 1)
	for _, tc := range []struct {
		head        string
		start, size int
	}{
		{"", 0, 0}, {"HEAD\r\n", 0, 0}, {"", 0, 1}, {"h", 5, bs - 1}, {"head", 0, bs - 4}, {"head", 0, bs - 3},
		{"", 0, bs}, {"", 7, bs + 1}, {strings.Repeat("x", 100), 3, 3*bs + 17}, {"big body", 0, len(data)},
		{strings.Repeat("y", bs/2+1), 1, 2 * bs}, // a head too big to share a buffer goes alone
	} {
		t.Run(fmt.Sprintf("head%d/%d+%d", len(tc.head), tc.start, tc.size), func(t *testing.T) {
			want := append([]byte(tc.head), data[tc.start:tc.start+tc.size]...)
			got := readAllFrom(peer, len(want))
			sr := io.NewSectionReader(bytes.NewReader(data), int64(tc.start), int64(tc.size))
			n, err := c.WriteFrom([]byte(tc.head), sr)
			if err != nil || n != int64(tc.size) {
				t.Fatalf("WriteFrom: %d, %v; want %d, nil", n, err, tc.size)
			}
			if pos, _ := sr.Seek(0, io.SeekCurrent); pos != int64(tc.size) {
				t.Errorf("section at %d after WriteFrom, want %d", pos, tc.size)
			}
			if b := <-got; !bytes.Equal(b, want) {
				t.Fatalf("peer got %d bytes, want %d (equal prefix: %v)", len(b), len(want), bytes.HasPrefix(want, b))
			}
			waitBuffers(t, ch)
		})
	}
}

// TestReadFromSources: io.Copy to a TCPConn reads files and in-memory
// readers in place, and copies anything else (a pipe) through its own
// buffer without holding the write lock while it waits for the source.
func TestReadFromSources(t *testing.T) {
	g := smallBuffers()
	c, peer, ch := sendPair(t, g)
	data := randomBytes(5*int(g.BufferSize)+9, 2)
	sources := map[string]func() io.Reader{
		"bytes":   func() io.Reader { return bytes.NewReader(data) },
		"strings": func() io.Reader { return strings.NewReader(string(data)) },
		"limited": func() io.Reader { return io.LimitReader(bytes.NewReader(append(data, "tail"...)), int64(len(data))) },
		"section": func() io.Reader { return io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))) },
		"opaque":  func() io.Reader { return struct{ io.Reader }{bytes.NewReader(data)} },
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			got := readAllFrom(peer, len(data))
			n, err := io.Copy(c, src())
			if err != nil || n != int64(len(data)) {
				t.Fatalf("io.Copy: %d, %v", n, err)
			}
			if b := <-got; !bytes.Equal(b, data) {
				t.Fatalf("peer got %d bytes, want %d", len(b), len(data))
			}
			waitBuffers(t, ch)
		})
	}

	t.Run("pipe", func(t *testing.T) {
		pr, pw := io.Pipe()
		copied := make(chan error, 1)
		go func() {
			_, err := c.ReadFrom(pr)
			copied <- err
		}()
		got := readAllFrom(peer, 6)
		pw.Write([]byte("abc"))
		// The copy now waits on the pipe: a Write must not wait behind it.
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("!")); err != nil {
			t.Fatalf("Write beside a waiting ReadFrom: %v", err)
		}
		pw.Write([]byte("de"))
		pw.Close()
		if err := <-copied; err != nil {
			t.Fatalf("ReadFrom: %v", err)
		}
		b := <-got
		if len(b) != 6 || !strings.Contains(string(b), "!") || strings.ReplaceAll(string(b), "!", "") != "abcde" {
			t.Fatalf("peer got %q", b)
		}
	})
}

// brokenAt is an io.ReaderAt that fails, or comes up short, from an
// offset on.
type brokenAt struct {
	data []byte
	from int64
	err  error // nil: short, with io.EOF (a file that shrank)
}

func (b *brokenAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= b.from {
		return copy(p, b.data[off:]), nil
	}
	n := 0
	if off < b.from {
		n = copy(p, b.data[off:b.from])
	}
	if b.err != nil {
		return n, b.err
	}
	return n, io.EOF
}

// TestWriteFromShortAndFailing: a source that ends early sends what it had
// and no more, without an error (as io.Copy sees an early end); one that
// fails stops with its error; either way every buffer comes back.
func TestWriteFromShortAndFailing(t *testing.T) {
	g := smallBuffers()
	bs := int(g.BufferSize)
	data := randomBytes(10*bs, 3)
	errDisk := errors.New("disk on fire")
	for _, tc := range []struct {
		name string
		from int
		err  error
	}{
		{"short in the first buffer", 100, nil},
		{"short later", 3*bs + 5, nil},
		{"failing later", 2*bs + 1, errDisk},
		{"failing at once", 0, errDisk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer, ch := sendPair(t, g)
			src := &brokenAt{data: data, from: int64(tc.from), err: tc.err}
			n, err := c.WriteFrom([]byte("H"), io.NewSectionReader(src, 0, int64(len(data))))
			if tc.err == nil {
				if err != nil || n != int64(tc.from) {
					t.Fatalf("WriteFrom: %d, %v; want %d, nil", n, err, tc.from)
				}
			} else {
				if !errors.Is(err, errDisk) || n > int64(tc.from) {
					t.Fatalf("WriteFrom: %d, %v; want at most %d and %v", n, err, tc.from, errDisk)
				}
				var op *net.OpError
				if !errors.As(err, &op) {
					t.Errorf("%T is not a *net.OpError", err)
				}
			}
			// What was sent is the head and a prefix of the data, and
			// nothing else follows it.
			c.Close()
			peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, _ := io.ReadAll(peer)
			want := append([]byte("H"), data[:n]...)
			if !bytes.Equal(b, want) && !(tc.err != nil && n == 0 && len(b) == 0) {
				t.Fatalf("peer got %d bytes, want %d", len(b), len(want))
			}
			waitBuffers(t, ch)
		})
	}
}

// TestWriteFromDeadline: a peer that does not read makes WriteFrom time
// out with os.ErrDeadlineExceeded, and the buffers it held come back.
func TestWriteFromDeadline(t *testing.T) {
	g := smallBuffers()
	c, peer, ch := sendPair(t, g)
	c.SetWriteBuffer(4096)
	data := make([]byte, 16<<20) // far more than the socket buffers hold
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := c.WriteFrom(nil, io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n >= int64(len(data)) {
		t.Fatalf("WriteFrom: %d, %v; want a timeout", n, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v is not a net.Error timeout", err)
	}
	c.Close()
	peer.Close() // the sends still queued in netproc fail now
	waitBuffers(t, ch)
}

// slowAt blocks every ReadAt until released.
type slowAt struct {
	started chan struct{}
	release chan struct{}
}

func (s *slowAt) ReadAt(p []byte, off int64) (int, error) {
	select {
	case s.started <- struct{}{}:
	default:
	}
	<-s.release
	for i := range p {
		p[i] = 'z'
	}
	return len(p), nil
}

// TestWriteFromChannelClosed: the channel closes while buffers are being
// filled in place; the region stays mapped until the fills end, and
// WriteFrom fails cleanly.
func TestWriteFromChannelClosed(t *testing.T) {
	g := smallBuffers()
	c, _, ch := sendPair(t, g)
	src := &slowAt{started: make(chan struct{}, 1), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := c.WriteFrom([]byte("x"), io.NewSectionReader(src, 0, int64(3*g.BufferSize)))
		done <- err
	}()
	<-src.started
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	close(src.release) // the fills write into the region after the close returned
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("WriteFrom on a closed channel succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteFrom hangs after its channel closed")
	}
	ch.mu.Lock()
	reserved, pending := ch.reserved, ch.unmapLater
	ch.mu.Unlock()
	if reserved != 0 || pending {
		t.Fatalf("after WriteFrom: %d reservations, unmap pending %v", reserved, pending)
	}
}
