package link

import (
	"cmp"
	"sync"
	"sync/atomic"
)

// Frame is one packet on a Channel: its bytes and metadata, owned by
// whoever holds the Frame.
type Frame struct {
	Data    []byte
	GSOSize uint16
	Flags   PacketFlags
}

// ChannelConfig describes a Channel device. Zero fields take defaults.
type ChannelConfig struct {
	MTU           int // default 1500
	MaxPacketSize int // default MTU; 65535 to carry GSO packets
	BatchSize     int // default 64
	Queue         int // channel capacity in each direction, default 256
}

// Channel is a Device made of channels, for tests of the layers above the
// link (wireguard-go's ChannelTUN). The test sends frames for the stack to
// Read into Inbound and receives what the stack wrote from Outbound.
// Write copies each packet into a new Frame and blocks while Outbound is
// full. It does no offloads: GSO packets and checksum flags pass through as
// metadata, unchanged.
type Channel struct {
	in, out   chan Frame
	cfg       ChannelConfig
	closed    chan struct{}
	closeOnce sync.Once
	oversized atomic.Uint64
}

// NewChannel returns a Channel device.
func NewChannel(cfg ChannelConfig) *Channel {
	cfg = cfg.withDefaults()
	return &Channel{
		in:     make(chan Frame, cfg.Queue),
		out:    make(chan Frame, cfg.Queue),
		cfg:    cfg,
		closed: make(chan struct{}),
	}
}

// NewChannelPair returns two Channel devices wired back to back: what one
// writes, the other reads.
func NewChannelPair(cfg ChannelConfig) (a, b *Channel) {
	cfg = cfg.withDefaults()
	ab, ba := make(chan Frame, cfg.Queue), make(chan Frame, cfg.Queue)
	a = &Channel{in: ba, out: ab, cfg: cfg, closed: make(chan struct{})}
	b = &Channel{in: ab, out: ba, cfg: cfg, closed: make(chan struct{})}
	return a, b
}

// withDefaults returns c with each zero field set to its default, and each
// negative one too where the field must be positive (cmp.Or(max(v, 0), d)).
func (c ChannelConfig) withDefaults() ChannelConfig {
	c.MTU = cmp.Or(max(c.MTU, 0), DefaultMTU)
	if c.MaxPacketSize < c.MTU {
		c.MaxPacketSize = c.MTU
	}
	c.BatchSize = cmp.Or(max(c.BatchSize, 0), DefaultBatchSize)
	c.Queue = cmp.Or(max(c.Queue, 0), 256)
	return c
}

// Inbound is where a test puts frames for Read to return.
func (c *Channel) Inbound() chan<- Frame { return c.in }

// Outbound is where Write puts the frames it was given.
func (c *Channel) Outbound() <-chan Frame { return c.out }

// Oversized counts inbound frames dropped for exceeding MaxPacketSize.
func (c *Channel) Oversized() uint64 { return c.oversized.Load() }

// Read implements Device.
func (c *Channel) Read(pkts []Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	if err := checkRead(pkts, 0, c.cfg.MaxPacketSize); err != nil {
		return 0, err
	}
	n := 0
	for n == 0 {
		select {
		case f := <-c.in:
			n = c.put(pkts, n, f)
		case <-c.closed:
			return 0, ErrClosed
		}
	}
	for n < len(pkts) {
		select {
		case f := <-c.in:
			n = c.put(pkts, n, f)
		default:
			return n, nil
		}
	}
	return n, nil
}

func (c *Channel) put(pkts []Packet, n int, f Frame) int {
	if len(f.Data) > c.cfg.MaxPacketSize {
		c.oversized.Add(1)
		return n
	}
	p := &pkts[n]
	p.Len = copy(p.Buf[p.Off:], f.Data)
	p.GSOSize, p.Flags = f.GSOSize, f.Flags
	return n + 1
}

// Write implements Device.
func (c *Channel) Write(pkts []Packet) (int, error) {
	for i := range pkts {
		p := &pkts[i]
		if p.Off < 0 || p.Len < 0 || p.Off+p.Len > len(p.Buf) {
			return i, ErrShortBuffer
		}
		f := Frame{Data: append([]byte(nil), p.Bytes()...), GSOSize: p.GSOSize, Flags: p.Flags}
		select {
		case <-c.closed:
			return i, ErrClosed
		default:
		}
		select {
		case c.out <- f:
		case <-c.closed:
			return i, ErrClosed
		}
	}
	return len(pkts), nil
}

// BatchSize implements Device.
func (c *Channel) BatchSize() int { return c.cfg.BatchSize }

// MTU implements Device.
func (c *Channel) MTU() int { return c.cfg.MTU }

// MaxPacketSize implements Device.
func (c *Channel) MaxPacketSize() int { return c.cfg.MaxPacketSize }

// Headroom implements Device: none.
func (c *Channel) Headroom() int { return 0 }

// Offloads implements Device: none.
func (c *Channel) Offloads() Offloads { return Offloads{} }

// Close unblocks Read and Write; the channels stay open (the other side of
// a pair may still use them).
func (c *Channel) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

var _ Device = (*Channel)(nil)
