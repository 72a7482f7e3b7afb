package link

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// CaptureLinkType is the pcap link type of capture files: raw IP
// (LINKTYPE_RAW, 101), each record an IPv4 packet with no link header, which
// tcpdump, tshark, Wireshark and gopacket all decode.
const CaptureLinkType = layers.LinkTypeRaw

// DefaultSnaplen is the pcap snapshot length: whole packets, GSO included.
const DefaultSnaplen = 262144

// ErrCaptureActive is returned by Start while a session is running.
var ErrCaptureActive = errors.New("link: a capture is already running")

// Capture is a tap on a Device: while a session is started, every packet
// read from the device and every packet written to it goes to the session's
// pcap file, stamped with the time it passed. Without a session it costs an
// atomic load per batch.
//
// Packets are recorded as the stack sees them: a GSO packet is one large
// record (as tcpdump shows on a TSO interface), received or sent before the
// device segments it; a TCP checksum that the kernel left partial on a
// received packet, or the stack left to the device on a sent one, is
// computed in the copy written to the file.
type Capture struct {
	wrapped
	session atomic.Pointer[CaptureSession]
}

// NewCapture returns a tap on dev with no session running.
func NewCapture(dev Device) *Capture { return &Capture{wrapped: wrapped{dev: dev}} }

// CaptureOptions configure a session.
type CaptureOptions struct {
	// Limit stops the session after this many packets; 0 means none.
	Limit int
	// Snaplen truncates longer packets in the file; default 262144.
	Snaplen int
}

// CaptureSession writes one pcap stream. It is safe for concurrent use.
type CaptureSession struct {
	c       *Capture
	mu      sync.Mutex // guards everything below
	bw      *bufio.Writer
	w       *pcapgo.Writer
	snaplen int
	limit   int
	count   int
	err     error
	stopped bool
	done    chan struct{}
	scratch []byte
}

// Start writes the pcap file header to w and starts recording. It fails
// with ErrCaptureActive when a session is already running. The caller owns
// w; Stop flushes but does not close it.
func (c *Capture) Start(w io.Writer, opts CaptureOptions) (*CaptureSession, error) {
	if opts.Snaplen <= 0 {
		opts.Snaplen = DefaultSnaplen
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	pw := pcapgo.NewWriterNanos(bw)
	s := &CaptureSession{c: c, bw: bw, w: pw, snaplen: opts.Snaplen, limit: opts.Limit, done: make(chan struct{})}
	if !c.session.CompareAndSwap(nil, s) {
		return nil, ErrCaptureActive
	}
	if err := pw.WriteFileHeader(uint32(opts.Snaplen), CaptureLinkType); err != nil {
		c.session.CompareAndSwap(s, nil)
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		c.session.CompareAndSwap(s, nil)
		return nil, err
	}
	return s, nil
}

// Session returns the running session, or nil.
func (c *Capture) Session() *CaptureSession { return c.session.Load() }

// record writes one packet. needsChecksum says its TCP checksum is not
// filled in (partial, or left to the device); the copy in the file gets it
// computed.
func (s *CaptureSession) record(pkt []byte, needsChecksum bool, now time.Time) {
	if s.stopped {
		return
	}
	data := pkt
	if needsChecksum {
		s.scratch = append(s.scratch[:0], pkt...)
		if ihl, _, err := tcpv4Headers(s.scratch); err == nil {
			setFullChecksum(s.scratch, ihl)
		}
		data = s.scratch
	}
	caplen := min(len(data), s.snaplen)
	ci := gopacket.CaptureInfo{Timestamp: now, CaptureLength: caplen, Length: len(data)}
	if err := s.w.WritePacket(ci, data[:caplen]); err != nil {
		s.finish(err)
		return
	}
	s.count++
	if s.limit > 0 && s.count >= s.limit {
		s.finish(nil)
	}
}

// recordBatch records pkts and flushes, so that a reader of the file (a
// pipe to tshark) sees them at once.
func (s *CaptureSession) recordBatch(pkts []Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for i := range pkts {
		p := &pkts[i]
		s.record(p.Bytes(), p.Flags&(FlagNeedsChecksum|FlagChecksumPartial) != 0 || p.GSOSize > 0, now)
	}
	if !s.stopped {
		if err := s.bw.Flush(); err != nil {
			s.finish(err)
		}
	}
}

// finish ends the session; s.mu is held.
func (s *CaptureSession) finish(err error) {
	if s.stopped {
		return
	}
	s.stopped = true
	if ferr := s.bw.Flush(); err == nil {
		err = ferr
	}
	s.err = err
	s.c.session.CompareAndSwap(s, nil)
	close(s.done)
}

// Done is closed when the session ends: Limit reached, Stop, or a write
// error (see Err).
func (s *CaptureSession) Done() <-chan struct{} { return s.done }

// Count returns the packets recorded so far.
func (s *CaptureSession) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Err returns the write error that ended the session, if any.
func (s *CaptureSession) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop ends the session and flushes the file; it returns the session's
// error. Calling it again is harmless.
func (s *CaptureSession) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finish(nil)
	return s.err
}

// Record writes pkts to the running session, if any: for a caller that
// drives the device itself (netproc's loop reads a TUN with TryRead) and
// so passes its packets through neither Read nor Write. Costs an atomic
// load when no session runs.
func (c *Capture) Record(pkts []Packet) {
	if s := c.session.Load(); s != nil && len(pkts) > 0 {
		s.recordBatch(pkts)
	}
}

// Read implements Device, recording what it returns.
func (c *Capture) Read(pkts []Packet) (int, error) {
	n, err := c.dev.Read(pkts)
	if s := c.session.Load(); s != nil && n > 0 {
		s.recordBatch(pkts[:n])
	}
	return n, err
}

// Write implements Device, recording pkts before passing them on.
func (c *Capture) Write(pkts []Packet) (int, error) {
	if s := c.session.Load(); s != nil {
		s.recordBatch(pkts)
	}
	return c.dev.Write(pkts)
}

// Close stops a running session, then closes the device.
func (c *Capture) Close() error {
	var err error
	if s := c.session.Load(); s != nil {
		err = s.Stop()
	}
	return errors.Join(err, c.dev.Close())
}

var _ Device = (*Capture)(nil)
