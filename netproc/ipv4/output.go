package ipv4

import (
	"errors"

	"saturn/netproc/header"
)

// Errors of the output path.
var (
	ErrDontFragment  = errors.New("ipv4: datagram larger than the MTU has DF set")
	ErrMTUTooSmall   = errors.New("ipv4: MTU below 68")
	ErrTooFewBuffers = errors.New("ipv4: too few buffers for the fragments")
)

// MinimumMTU is the MTU every IPv4 link must carry (RFC 791, 3.2).
const MinimumMTU = 68

// Outgoing describes a datagram for WriteHeader.
type Outgoing struct {
	Protocol     uint8
	Dst          header.IPv4Addr
	TotalLength  int // header (20 bytes) plus payload, at most 65535
	TOS          uint8
	DontFragment bool
}

// WriteHeader writes a 20-byte IPv4 header without options into b for a
// datagram from our address: the next identification (incremented per
// datagram, RFC 6864), the configured TTL and the header checksum. The
// transport's segment goes at b[20:]. It panics if TotalLength is outside
// 20..65535 or b is shorter than 20 bytes: those are caller bugs.
func (e *Endpoint) WriteHeader(b []byte, o Outgoing) header.IPv4 {
	if o.TotalLength < header.IPv4MinimumSize || o.TotalLength > header.IPv4MaximumSize {
		panic("ipv4: WriteHeader total length out of range")
	}
	var flags uint8
	if o.DontFragment {
		flags = header.IPv4FlagDontFragment
	}
	h := header.IPv4(b[:header.IPv4MinimumSize])
	h.Encode(&header.IPv4Fields{
		TOS:         o.TOS,
		TotalLength: uint16(o.TotalLength),
		ID:          e.nextID,
		Flags:       flags,
		TTL:         e.cfg.TTL,
		Protocol:    o.Protocol,
		SrcAddr:     e.cfg.Addr,
		DstAddr:     o.Dst,
	})
	e.nextID++
	e.stats.OutHeaders++
	return header.IPv4(b)
}

// FragmentCount returns how many fragments of at most mtu bytes the datagram
// pkt needs (1 if it fits).
func FragmentCount(pkt header.IPv4, mtu int) int {
	tl, hl := int(pkt.TotalLength()), pkt.HeaderLength()
	if tl <= mtu {
		return 1
	}
	firstData := (mtu - hl) &^ 7
	restHL := header.IPv4MinimumSize + (len(copiedOptions(nil, pkt.Options()))+3)&^3
	restData := (mtu - restHL) &^ 7
	if firstData <= 0 || restData <= 0 {
		return 0
	}
	rest := tl - hl - firstData
	return 1 + (rest+restData-1)/restData
}

// Fragment splits the valid datagram pkt into fragments of at most mtu bytes
// (RFC 791, 3.2, "An Example Fragmentation Procedure"), written into bufs,
// and returns how many it wrote; fragment i is
// bufs[i][:header.IPv4(bufs[i]).TotalLength()]. Every bufs[i] must hold mtu
// bytes. The first fragment keeps all options, the others only those with
// the copied flag. A datagram that fits is copied whole into bufs[0].
func (e *Endpoint) Fragment(pkt header.IPv4, mtu int, bufs [][]byte) (int, error) {
	tl, hl := int(pkt.TotalLength()), pkt.HeaderLength()
	if tl <= mtu {
		if len(bufs) < 1 {
			e.stats.FragFails++
			return 0, ErrTooFewBuffers
		}
		copy(bufs[0], pkt[:tl])
		return 1, nil
	}
	if mtu < MinimumMTU {
		e.stats.FragFails++
		return 0, ErrMTUTooSmall
	}
	if pkt.DontFragment() {
		e.stats.FragFails++
		return 0, ErrDontFragment
	}
	count := FragmentCount(pkt, mtu)
	if count == 0 || len(bufs) < count {
		e.stats.FragFails++
		return 0, ErrTooFewBuffers
	}
	var optBuf [header.IPv4MaximumHeaderSize - header.IPv4MinimumSize]byte
	restOpts := copiedOptions(optBuf[:0], pkt.Options())
	fields := pkt.Fields()
	baseOffset := int(fields.FragmentOffset) // a fragment may be fragmented again
	moreAfter := fields.Flags&header.IPv4FlagMoreFragments != 0
	data := pkt[hl:tl]
	off := 0
	for i := range count {
		if i == 1 {
			fields.Options = restOpts
		}
		fhl := fields.EncodedLength()
		n := min((mtu-fhl)&^7, len(data)-off)
		last := off+n == len(data)
		fields.TotalLength = uint16(fhl + n)
		fields.FragmentOffset = uint16(baseOffset + off)
		fields.Flags = fields.Flags &^ header.IPv4FlagMoreFragments
		if !last || moreAfter {
			fields.Flags |= header.IPv4FlagMoreFragments
		}
		out := bufs[i]
		header.IPv4(out).Encode(&fields)
		copy(out[fhl:], data[off:off+n])
		off += n
	}
	e.stats.FragOKs++
	e.stats.FragCreates += uint64(count)
	return count, nil
}

// copiedOptions appends to dst the options of opts whose copied flag (the
// high bit of the type, RFC 791, 3.1) says they go into every fragment.
func copiedOptions(dst, opts []byte) []byte {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of list
			return dst
		case 1: // no operation
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return dst // malformed; ValidateIPv4 rejects these
		}
		l := int(opts[i+1])
		if opts[i]&0x80 != 0 {
			dst = append(dst, opts[i:i+l]...)
		}
		i += l
	}
	return dst
}
