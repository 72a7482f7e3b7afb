package header

import (
	"net/netip"
	"strconv"
)

// IPv4Addr is an IPv4 address in network byte order. It is a plain array, so
// that structures holding it (TCP connection state) contain no pointers.
type IPv4Addr [4]byte

// IPv4Broadcast is the limited broadcast address 255.255.255.255.
var IPv4Broadcast = IPv4Addr{255, 255, 255, 255}

// IPv4AddrFrom converts a netip.Addr; ok is false unless a is IPv4 (or
// IPv4-mapped IPv6).
func IPv4AddrFrom(a netip.Addr) (addr IPv4Addr, ok bool) {
	a = a.Unmap()
	if !a.Is4() {
		return IPv4Addr{}, false
	}
	return IPv4Addr(a.As4()), true
}

// Addr returns a as a netip.Addr.
func (a IPv4Addr) Addr() netip.Addr { return netip.AddrFrom4(a) }

// IsUnspecified reports whether a is 0.0.0.0.
func (a IPv4Addr) IsUnspecified() bool { return a == IPv4Addr{} }

// IsMulticast reports whether a is in 224.0.0.0/4 (class D).
func (a IPv4Addr) IsMulticast() bool { return a[0]&0xf0 == 0xe0 }

// IsBroadcast reports whether a is 255.255.255.255.
func (a IPv4Addr) IsBroadcast() bool { return a == IPv4Broadcast }

// IsLoopback reports whether a is in 127.0.0.0/8.
func (a IPv4Addr) IsLoopback() bool { return a[0] == 127 }

// IsReserved reports whether a is in the former class E, 240.0.0.0/4
// (which includes the limited broadcast address).
func (a IPv4Addr) IsReserved() bool { return a[0]&0xf0 == 0xf0 }

func (a IPv4Addr) String() string {
	b := make([]byte, 0, 15)
	for i, octet := range a {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(octet), 10)
	}
	return string(b)
}
