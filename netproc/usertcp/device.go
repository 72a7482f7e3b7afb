package usertcp

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"saturn/netproc/link"
)

// poller is how the loop drives a link device: it watches fd in its epoll
// set and reads with tryRead, which never blocks; writes go straight to
// the device.
type poller interface {
	fd() int
	tryRead(pkts []link.Packet) (int, error)
	write(pkts []link.Packet) (int, error)
	close() error
}

// tryReader is a device that can be read from the loop itself: the TUN.
type tryReader interface {
	link.Device
	PollFD() int
	TryRead(pkts []link.Packet) (int, error)
}

// directPoller drives a TUN device with no goroutine in between: the loop
// reads it when epoll says it is readable.
type directPoller struct{ dev tryReader }

func (p directPoller) fd() int                                 { return p.dev.PollFD() }
func (p directPoller) tryRead(pkts []link.Packet) (int, error) { return p.dev.TryRead(pkts) }
func (p directPoller) write(pkts []link.Packet) (int, error)   { return p.dev.Write(pkts) }
func (p directPoller) close() error                            { return p.dev.Close() }

// goPoller drives any other device (the impairment wrapper, a test's
// channel device): a goroutine blocks in the device's Read, copies what it
// gets into a queue and rings an eventfd that the loop watches. It costs a
// copy and a wake-up per batch, which is fine for tests and impaired links.
type goPoller struct {
	dev    link.Device
	efd    int
	mu     sync.Mutex // guards queue, spare, err
	cond   sync.Cond
	queue  []queued
	spare  [][]byte
	err    error
	done   chan struct{}
	closed bool
}

type queued struct {
	data  []byte
	gso   uint16
	flags link.PacketFlags
}

// goPollerQueue bounds the packets waiting for the loop; the reader waits
// when it is full, leaving the device to queue or drop, as a link would.
const goPollerQueue = 4096

func newGoPoller(dev link.Device) (*goPoller, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &goPoller{dev: dev, efd: efd, done: make(chan struct{})}
	p.cond.L = &p.mu
	go p.run()
	return p, nil
}

// run reads the device until it fails (Close makes it).
func (p *goPoller) run() {
	defer close(p.done)
	size, hr := p.dev.MaxPacketSize(), p.dev.Headroom()
	batch := make([]link.Packet, min(p.dev.BatchSize(), 64))
	for i := range batch {
		batch[i].Buf = make([]byte, hr+size)
		batch[i].Off = hr
	}
	for {
		n, err := p.dev.Read(batch)
		p.mu.Lock()
		if err != nil {
			p.err = err
			p.mu.Unlock()
			p.ring()
			return
		}
		wasEmpty := len(p.queue) == 0
		for i := range batch[:n] {
			pk := &batch[i]
			var b []byte
			if k := len(p.spare); k > 0 && cap(p.spare[k-1]) >= pk.Len {
				b = p.spare[k-1][:pk.Len]
				p.spare = p.spare[:k-1]
			} else {
				b = make([]byte, pk.Len, max(pk.Len, 2048))
			}
			copy(b, pk.Bytes())
			p.queue = append(p.queue, queued{data: b, gso: pk.GSOSize, flags: pk.Flags})
		}
		for len(p.queue) >= goPollerQueue && !p.closed {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if wasEmpty && n > 0 {
			p.ring()
		}
	}
}

func (p *goPoller) ring() {
	one := [8]byte{1}
	unix.Write(p.efd, one[:])
}

func (p *goPoller) fd() int { return p.efd }

func (p *goPoller) tryRead(pkts []link.Packet) (int, error) {
	var buf [8]byte
	unix.Read(p.efd, buf[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(pkts) && len(p.queue) > 0 {
		q := p.queue[0]
		pk := &pkts[n]
		if len(pk.Buf)-pk.Off < len(q.data) {
			break
		}
		pk.Len = copy(pk.Buf[pk.Off:], q.data)
		pk.GSOSize, pk.Flags = q.gso, q.flags
		if len(p.spare) < 256 {
			p.spare = append(p.spare, q.data[:0])
		}
		p.queue[0] = queued{}
		p.queue = p.queue[1:]
		n++
	}
	if len(p.queue) == 0 {
		p.queue = p.queue[:0:0]
	} else {
		p.ring() // more than a batch: come back
	}
	p.cond.Broadcast()
	if n == 0 && p.err != nil && !errors.Is(p.err, link.ErrClosed) {
		return 0, p.err
	}
	return n, nil
}

func (p *goPoller) write(pkts []link.Packet) (int, error) { return p.dev.Write(pkts) }

func (p *goPoller) close() error {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	err := p.dev.Close()
	<-p.done
	unix.Close(p.efd)
	return err
}

// openDevice opens the link the config asks for: the test's device, or a
// TUN device in the namespace; impaired if asked; under a capture tap. It
// returns the device at the bottom (for its counters), the impairment (or
// nil), the tap, and the poller the loop drives.
func openDevice(cfg *Config) (raw link.Device, imp *link.Impaired, tap *link.Capture, p poller, err error) {
	raw = cfg.Device
	if raw == nil {
		nt, err := link.OpenNetnsTUN(link.NetnsConfig{
			Namespace: cfg.Namespace, Address: cfg.Address, MTU: cfg.MTU, Offload: !cfg.NoOffload,
			// An impaired link acts on wire segments: a GSO packet lost
			// whole would be dozens of segments lost at once.
			NoTSO: cfg.Impair.Active(),
		})
		if err != nil {
			return nil, nil, nil, nil, err
		}
		raw = nt
	}
	dev := raw
	if cfg.Impair.Active() {
		imp = link.NewImpaired(raw, cfg.Impair)
		dev = imp
	}
	tap = link.NewCapture(dev)
	if tr, ok := dev.(tryReader); ok {
		return raw, imp, tap, directPoller{tr}, nil
	}
	gp, err := newGoPoller(dev)
	if err != nil {
		dev.Close()
		return nil, nil, nil, nil, fmt.Errorf("usertcp: %w", err)
	}
	return raw, imp, tap, gp, nil
}
