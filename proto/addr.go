package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// SockAddrSize is the size of a socket address in a data buffer (OpListen,
// OpConnect, OpAccept, OpGetsockname, OpGetpeername). Layout, little-endian:
//
//	0  family uint16   FamilyIPv4 or FamilyIPv6
//	2  port   uint16
//	4  addr   [16]byte IPv4 in the first 4 bytes, the rest zero
//	20 scope  uint32   IPv6 zone index, else zero
const SockAddrSize = 24

// Address families, numbered as Linux numbers AF_INET and AF_INET6.
const (
	FamilyIPv4 = 2
	FamilyIPv6 = 10
)

// ErrBadAddr: a socket address in a buffer is malformed.
var ErrBadAddr = errors.New("proto: malformed socket address")

// EncodeSockAddr writes ap into b (at least SockAddrSize bytes). A zone is
// carried only as a numeric index; a named zone is an error.
func EncodeSockAddr(b []byte, ap netip.AddrPort) error {
	if len(b) < SockAddrSize {
		return fmt.Errorf("%w: buffer of %d bytes", ErrBadAddr, len(b))
	}
	clear(b[:SockAddrSize])
	le := binary.LittleEndian
	a := ap.Addr()
	le.PutUint16(b[2:], ap.Port())
	switch {
	case a.Is4():
		le.PutUint16(b[0:], FamilyIPv4)
		v4 := a.As4()
		copy(b[4:], v4[:])
	case a.Is6():
		le.PutUint16(b[0:], FamilyIPv6)
		v6 := a.As16()
		copy(b[4:], v6[:])
		if z := a.Zone(); z != "" {
			var idx uint32
			if _, err := fmt.Sscanf(z, "%d", &idx); err != nil {
				return fmt.Errorf("%w: zone %q is not an interface index", ErrBadAddr, z)
			}
			le.PutUint32(b[20:], idx)
		}
	default:
		return fmt.Errorf("%w: invalid address", ErrBadAddr)
	}
	return nil
}

// DecodeSockAddr reads a socket address from b, refusing unknown families,
// stray bytes after an IPv4 address, and a zone on an IPv4 address.
func DecodeSockAddr(b []byte) (netip.AddrPort, error) {
	if len(b) < SockAddrSize {
		return netip.AddrPort{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadAddr, len(b), SockAddrSize)
	}
	var raw [SockAddrSize]byte
	copy(raw[:], b)
	le := binary.LittleEndian
	port := le.Uint16(raw[2:])
	scope := le.Uint32(raw[20:])
	switch fam := le.Uint16(raw[0:]); fam {
	case FamilyIPv4:
		for _, c := range raw[8:20] {
			if c != 0 {
				return netip.AddrPort{}, fmt.Errorf("%w: stray bytes after an IPv4 address", ErrBadAddr)
			}
		}
		if scope != 0 {
			return netip.AddrPort{}, fmt.Errorf("%w: scope on an IPv4 address", ErrBadAddr)
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), port), nil
	case FamilyIPv6:
		a := netip.AddrFrom16([16]byte(raw[4:20]))
		if scope != 0 {
			a = a.WithZone(fmt.Sprint(scope))
		}
		return netip.AddrPortFrom(a, port), nil
	default:
		return netip.AddrPort{}, fmt.Errorf("%w: family %d", ErrBadAddr, fam)
	}
}
