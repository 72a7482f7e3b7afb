package link

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"saturn/netproc/header"
)

// Defaults for TUNConfig.
const (
	DefaultTUNName   = "saturn%d" // the kernel replaces %d with the first free number
	DefaultMTU       = 1500
	DefaultBatchSize = 64
)

// TUNConfig describes a TUN device to open.
type TUNConfig struct {
	// Name is the interface name; a "%d" in it is replaced by the kernel.
	Name string
	// MTU is the link MTU saturn assumes; NetnsTUN sets it on the
	// interface. OpenTUN alone does not configure the interface.
	MTU int
	// Offload asks for the virtio-net header with checksum offload and
	// TSO for TCP/IPv4 (TUN_F_CSUM|TUN_F_TSO4), falling back to checksum
	// offload alone, then to a plain TUN device, when the kernel refuses.
	Offload bool
	// BatchSize is the batch the device reports; default 64.
	BatchSize int
	// NoTSO keeps checksum offload but not TSO, so that every packet is
	// one wire segment both ways: what an impairment wrapper must see to
	// act as a lossy link does (dropping one segment, not 44 at once).
	NoTSO bool
}

// TUNStats count what a TUN device did.
type TUNStats struct {
	RxPackets         uint64 // packets handed up by Read
	RxGSO             uint64 // of which GSO segments larger than the MTU
	RxChecksumPartial uint64 // packets received with a partial checksum (trusted, not summed)
	RxBadVirtio       uint64 // packets dropped for a bad virtio-net header
	TxPackets         uint64 // packets given to the kernel
	TxGSO             uint64 // of which GSO segments sent with TSO
	TxSegmented       uint64 // GSO packets cut in software (no TSO)
	TxErrors          uint64 // writes the kernel refused
}

// TUN is a Linux TUN device (IFF_TUN|IFF_NO_PI, raw IPv4 packets), read and
// written through Go's poller. The interface lives as long as the file
// descriptor: Close removes it.
type TUN struct {
	file     *os.File
	rc       syscall.RawConn
	name     string
	mtu      int
	batch    int
	offloads Offloads
	hdrLen   int // virtio-net header length, 0 in plain mode

	// writeMu guards scratch, used to segment GSO packets in software.
	writeMu sync.Mutex
	scratch []byte

	closed atomic.Bool

	rxPackets, rxGSO, rxPartial, rxBad   atomic.Uint64
	txPackets, txGSO, txSegmented, txErr atomic.Uint64
}

// OpenTUN creates a TUN interface in the calling thread's network namespace
// (in a Go program, normally the process's). The interface is down and
// unaddressed; see NetnsTUN for one that is set up.
func OpenTUN(cfg TUNConfig) (*TUN, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultTUNName
	}
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Offload {
		for _, want := range offloadLadder {
			if want.TSO4 && cfg.NoTSO {
				continue
			}
			t, err := openTUN(cfg, want)
			if err == nil {
				return t, nil
			}
			if !errors.Is(err, errOffloadRefused) {
				return nil, err
			}
		}
	}
	return openTUN(cfg, Offloads{})
}

var errOffloadRefused = errors.New("link: offload refused")

// offloadLadder is what OpenTUN tries, most capable first, before a plain
// device. TSO needs checksum offload: the kernel rejects TUN_F_TSO4 without
// TUN_F_CSUM (tun's set_offload returns EINVAL for any flag it leaves
// unhandled). A variable so that a test can make the kernel refuse.
var offloadLadder = []Offloads{
	{VirtioHeader: true, Checksum: true, TSO4: true},
	{VirtioHeader: true, Checksum: true},
}

func openTUN(cfg TUNConfig, off Offloads) (*TUN, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/dev/net/tun", Err: err}
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	ifr, err := unix.NewIfreq(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("link: TUN name %q: %w", cfg.Name, err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if off.VirtioHeader {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		if off.VirtioHeader && errors.Is(err, unix.EINVAL) {
			return nil, errOffloadRefused
		}
		return nil, fmt.Errorf("link: TUNSETIFF %q: %w", cfg.Name, err)
	}
	hdrLen := 0
	if off.VirtioHeader {
		hdrLen = virtioNetHdrLen
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, hdrLen); err != nil {
			return nil, fmt.Errorf("%w: TUNSETVNETHDRSZ: %v", errOffloadRefused, err)
		}
		var tunFlags int
		if off.Checksum {
			tunFlags |= unix.TUN_F_CSUM
		}
		if off.TSO4 {
			tunFlags |= unix.TUN_F_TSO4
		}
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunFlags); err != nil {
			return nil, fmt.Errorf("%w: TUNSETOFFLOAD %#x: %v", errOffloadRefused, tunFlags, err)
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("link: TUN non-blocking: %w", err)
	}
	// A non-blocking descriptor is registered with Go's poller, so Read
	// parks the goroutine, not the thread, and Close wakes it.
	file := os.NewFile(uintptr(fd), "/dev/net/tun")
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		ok = true // file owns fd now
		return nil, err
	}
	ok = true
	t := &TUN{
		file:     file,
		rc:       rc,
		name:     ifr.Name(),
		mtu:      cfg.MTU,
		batch:    cfg.BatchSize,
		offloads: off,
		hdrLen:   hdrLen,
	}
	return t, nil
}

// Name returns the interface name.
func (t *TUN) Name() string { return t.name }

// Offloads says which mode the kernel accepted.
func (t *TUN) Offloads() Offloads { return t.offloads }

// BatchSize implements Device.
func (t *TUN) BatchSize() int { return t.batch }

// MTU implements Device.
func (t *TUN) MTU() int { return t.mtu }

// MaxPacketSize implements Device: 65535 with TSO, else the MTU.
func (t *TUN) MaxPacketSize() int {
	if t.offloads.TSO4 {
		return MaxGSOPacketSize
	}
	return t.mtu
}

// Headroom implements Device: room for the virtio-net header.
func (t *TUN) Headroom() int { return t.hdrLen }

// Stats returns the device's counters.
func (t *TUN) Stats() TUNStats {
	return TUNStats{
		RxPackets: t.rxPackets.Load(), RxGSO: t.rxGSO.Load(), RxChecksumPartial: t.rxPartial.Load(),
		RxBadVirtio: t.rxBad.Load(), TxPackets: t.txPackets.Load(), TxGSO: t.txGSO.Load(),
		TxSegmented: t.txSegmented.Load(), TxErrors: t.txErr.Load(),
	}
}

// Close removes the interface and unblocks Read.
func (t *TUN) Close() error {
	t.closed.Store(true)
	return t.file.Close()
}

// Read implements Device. It blocks for the first packet and then takes
// whatever else is queued, up to len(pkts), without blocking again. With the
// virtio-net header, partial checksums are completed and GSO segments are
// handed up whole (Packet.GSOSize set).
func (t *TUN) Read(pkts []Packet) (int, error) { return t.read(pkts, true) }

// PollFD is the device's descriptor, for a caller that runs its own event
// loop (netproc's): it becomes readable when packets are queued. Read it
// with TryRead, never with Read, from that loop.
func (t *TUN) PollFD() int {
	fd := -1
	t.rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// TryRead is Read without blocking: it takes what is queued, up to
// len(pkts), and returns 0 with a nil error when nothing is.
func (t *TUN) TryRead(pkts []Packet) (int, error) { return t.read(pkts, false) }

func (t *TUN) read(pkts []Packet, block bool) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	if err := checkRead(pkts, t.hdrLen, t.MaxPacketSize()); err != nil {
		return 0, err
	}
	n := 0
	var readErr error
	err := t.rc.Read(func(fd uintptr) bool {
		for n < len(pkts) {
			p := &pkts[n]
			start := p.Off - t.hdrLen
			m, err := unix.Read(int(fd), p.Buf[start:])
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return n > 0 || !block // nothing yet: wait for the poller, if blocking
			case err != nil:
				readErr = os.NewSyscallError("read", err)
				return true
			case m < t.hdrLen:
				t.rxBad.Add(1)
				continue
			}
			// A packet shorter than an IPv4 header still goes up: the
			// IP layer drops it and counts it as truncated, where
			// `saturn status` looks for it (the virtio-net header in
			// front of it was fine).
			p.Len = m - t.hdrLen
			p.GSOSize, p.Flags = 0, 0
			if t.hdrLen > 0 {
				var h virtioNetHdr
				h.decode(p.Buf[start:p.Off])
				gso, flags, err := fromKernel(&h, p.Bytes())
				if err != nil {
					t.rxBad.Add(1)
					continue
				}
				if h.flags&virtioNetHdrFNeedsCsum != 0 {
					t.rxPartial.Add(1)
				}
				if gso != 0 {
					t.rxGSO.Add(1)
				}
				p.GSOSize, p.Flags = gso, flags
			}
			n++
		}
		return true
	})
	t.rxPackets.Add(uint64(n))
	if err != nil {
		return n, t.closedOr(err)
	}
	if n == 0 && readErr != nil {
		return 0, readErr
	}
	return n, nil
}

// closedOr maps the poller's "use of closed file" to ErrClosed.
func (t *TUN) closedOr(err error) error {
	if t.closed.Load() || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return err
}

// Write implements Device. With TSO a GSO packet goes to the kernel in one
// write; without it, it is cut in software. FlagNeedsChecksum becomes a
// partial checksum with checksum offload, a computed one without.
func (t *TUN) Write(pkts []Packet) (int, error) {
	for i := range pkts {
		if err := t.writeOne(&pkts[i]); err != nil {
			t.txErr.Add(1)
			return i, err
		}
	}
	return len(pkts), nil
}

func (t *TUN) writeOne(p *Packet) error {
	if p.Off < t.hdrLen || p.Len < 0 || p.Off+p.Len > len(p.Buf) {
		return ErrShortBuffer
	}
	pkt := p.Bytes()
	needsCsum := p.Flags&FlagNeedsChecksum != 0 || p.GSOSize > 0
	var h virtioNetHdr
	if needsCsum {
		ihl, thl, err := tcpv4Headers(pkt)
		if err != nil {
			return err
		}
		gso := p.GSOSize > 0 && len(pkt) > ihl+thl+int(p.GSOSize)
		switch {
		case gso && !t.offloads.TSO4:
			return t.writeSegmented(pkt, int(p.GSOSize))
		case t.offloads.Checksum:
			setPartialChecksum(pkt, ihl)
			h.flags = virtioNetHdrFNeedsCsum
			h.csumStart = uint16(ihl)
			h.csumOffset = header.TCPChecksumOffset
			if gso {
				h.gsoType = virtioNetHdrGSOTCPv4
				if header.TCP(pkt[ihl:]).Flags()&header.TCPFlagCwr != 0 {
					h.gsoType |= virtioNetHdrGSOECN
				}
				h.gsoSize = p.GSOSize
				h.hdrLen = uint16(ihl + thl)
				t.txGSO.Add(1)
			}
		default:
			setFullChecksum(pkt, ihl)
		}
	}
	frame := p.Buf[p.Off-t.hdrLen : p.Off+p.Len]
	if t.hdrLen > 0 {
		h.encode(frame)
	}
	return t.write(frame)
}

// writeSegmented cuts a GSO packet into wire segments in software.
func (t *TUN) writeSegmented(pkt []byte, mss int) error {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	if t.scratch == nil {
		t.scratch = make([]byte, t.hdrLen+MaxGSOPacketSize)
	}
	buf := t.scratch[t.hdrLen:]
	if t.hdrLen > 0 {
		clear(t.scratch[:t.hdrLen]) // a zero virtio-net header: nothing to do
	}
	t.txSegmented.Add(1)
	_, err := SegmentTCPv4(pkt, mss, buf, func(seg []byte) error {
		return t.write(t.scratch[:t.hdrLen+len(seg)])
	})
	return err
}

// write sends one frame (virtio-net header included) to the kernel.
func (t *TUN) write(frame []byte) error {
	var werr error
	err := t.rc.Write(func(fd uintptr) bool {
		for {
			_, err := unix.Write(int(fd), frame)
			switch err {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			case nil:
			default:
				werr = os.NewSyscallError("write", err)
			}
			return true
		}
	})
	if err != nil {
		return t.closedOr(err)
	}
	if werr == nil {
		t.txPackets.Add(1)
	}
	return werr
}

var _ Device = (*TUN)(nil)
