package kernel

import (
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// sockaddr converts addr for bind or connect. An IPv4-mapped IPv6 address
// is unmapped, so that it goes out over an AF_INET socket as Go's net does.
func sockaddr(addr netip.AddrPort) (family int, sa unix.Sockaddr) {
	a := addr.Addr()
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.As4()}
	}
	sa6 := &unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		if id, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa6.ZoneId = uint32(id)
		}
	}
	return unix.AF_INET6, sa6
}

// addrPort converts what the kernel reports. IPv4 peers of a dual-stack
// socket come back IPv4-mapped; they are unmapped, as Go's net shows them.
func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if a.Is4In6() {
			return netip.AddrPortFrom(a.Unmap(), uint16(sa.Port))
		}
		if sa.ZoneId != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.ZoneId), 10))
		}
		return netip.AddrPortFrom(a, uint16(sa.Port))
	}
	return netip.AddrPort{}
}
