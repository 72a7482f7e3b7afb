package link

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// DerivePeer returns the address of the kernel's side of the link for
// saturn's address p: the first host address of p's subnet, or the second
// when saturn holds the first. For a /31 it is the other address (RFC 3021).
// Prefixes longer than /31 and non-IPv4 prefixes are errors.
func DerivePeer(p netip.Prefix) (netip.Addr, error) {
	addr := p.Addr()
	if !addr.Is4() || !p.IsValid() {
		return netip.Addr{}, fmt.Errorf("link: %v is not an IPv4 prefix", p)
	}
	bits := p.Bits()
	a4 := addr.As4()
	v := uint32(a4[0])<<24 | uint32(a4[1])<<16 | uint32(a4[2])<<8 | uint32(a4[3])
	toAddr := func(v uint32) netip.Addr {
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	switch {
	case bits == 31:
		return toAddr(v ^ 1), nil
	case bits > 31:
		return netip.Addr{}, fmt.Errorf("link: no room for a peer in %v", p)
	}
	mask := ^uint32(0) << (32 - bits)
	network, broadcast := v&mask, v|^mask
	if v == network || v == broadcast {
		return netip.Addr{}, fmt.Errorf("link: %v is the network or broadcast address of its subnet", p)
	}
	peer := network + 1
	if peer == v {
		peer++
	}
	return toAddr(peer), nil
}

// validNamespaceName applies the rules `ip netns add` enforces: a single
// path component.
func validNamespaceName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("link: invalid network namespace name %q", name)
	}
	return nil
}

// ErrInterfaceExists says the namespace already has an interface of the
// name asked for (another saturn, or a leftover).
var ErrInterfaceExists = errors.New("link: interface name already in use in the namespace")
