// Package leftover undoes what netproc leaves outside its instance when no
// netproc is left to undo it: today, the network namespace that the usertcp
// backend creates on its first start.
//
// It is the one package of netproc that the supervisor imports (see
// "Dependency rules" in docs/design.md). The knowledge stays netproc's: the
// connection table (netproc/usertcp) records the namespace it created here,
// in a record whose place this package fixes, and the supervisor, which
// holds netproc's persistent memory, calls RemoveNamespace once the
// instance has stopped. A netproc that stops removes its namespace itself;
// one that was killed and not started again (the instance stopped while it
// was down, or it had failed) cannot.
//
// The package knows of the persistent memory only the header's magic and
// the namespace record, which every layout of the connection table keeps
// in place (a layout that moves them changes the magic), so that an
// upgrade that changes the rest of the layout still cleans up after the old
// one; and of namespaces only what netproc/link does.
package leftover

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"saturn/netproc/link"
)

// The beginning of netproc's persistent memory.
const (
	// Magic opens the connection table's header (its first 8 bytes).
	Magic = "SATTCP01"
	// NetnsOffset is where the namespace record lies in the header: a
	// length byte, then the name, in NetnsMax+1 bytes.
	NetnsOffset = 96
	// NetnsMax is the longest name the record holds.
	NetnsMax = 31
)

// SetNamespace writes the namespace record into hdr, the header's bytes
// (mapped): ns is the namespace a netproc of this instance created, "" for
// none. A name longer than NetnsMax is not recorded: only a netproc that
// stops removes such a namespace.
func SetNamespace(hdr []byte, ns string) {
	if len(ns) > NetnsMax {
		return
	}
	b := hdr[NetnsOffset : NetnsOffset+1+NetnsMax]
	clear(b)
	copy(b[1:], ns)
	b[0] = byte(len(ns))
}

// Namespace returns what SetNamespace recorded in hdr, or "" for none or a
// record that makes no sense.
func Namespace(hdr []byte) string {
	b := hdr[NetnsOffset : NetnsOffset+1+NetnsMax]
	n := int(b[0])
	if n == 0 || n > NetnsMax {
		return ""
	}
	return string(b[1 : 1+n])
}

// RemoveNamespace removes the namespace that a netproc of this instance
// created, as recorded in persist (netproc's persistent memory), if it is
// want (the configured one) and still exists, and clears the record. It
// returns the namespace it removed, or "". Memory that holds no connection
// table is left alone.
func RemoveNamespace(persist *os.File, want string) (string, error) {
	hdr := make([]byte, NetnsOffset+1+NetnsMax)
	if _, err := persist.ReadAt(hdr, 0); err != nil {
		return "", fmt.Errorf("leftover: reading netproc's persistent memory: %w", err)
	}
	if string(hdr[:len(Magic)]) != Magic || Namespace(hdr) != want || want == "" {
		return "", nil
	}
	exists, err := link.NamespaceExists(want)
	if err == nil && exists {
		err = link.DeleteNamespace(want)
	}
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("leftover: removing namespace %q: %w", want, err)
	}
	if _, err := persist.WriteAt(make([]byte, 1+NetnsMax), NetnsOffset); err != nil {
		return "", fmt.Errorf("leftover: clearing the namespace record: %w", err)
	}
	if !exists {
		return "", nil
	}
	return want, nil
}
