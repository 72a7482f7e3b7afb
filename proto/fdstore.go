package proto

import (
	"encoding/binary"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// The descriptor store, in the manner of systemd's: a server whose
// descriptors must outlive it (netproc's kernel backend: its sockets) hands
// each one to the supervisor as it makes it, under a key of its own, and
// says when it has closed it; the supervisor holds them for the life of
// the instance and hands every one it holds, with its key, to the server's
// next incarnation, before anything else. What a key means is the server's
// business (netproc: a record in its persistent memory); the supervisor
// only keeps descriptors under keys.
//
// The link is a SOCK_SEQPACKET pair, a new one for each incarnation, whose
// far end the server inherits as the descriptor EnvFDStoreFD names. Each
// message is one StoreMsg: an 8-byte head (op, three zero bytes, a
// little-endian uint32 count) and count little-endian uint64 keys; a Put or
// a Back carries the count's descriptors too (SCM_RIGHTS), in the keys'
// order.
//
//	server → supervisor: StorePut  (keys, descriptors): hold these
//	                     StoreDrop (keys): close what you hold under these
//	supervisor → server: StoreBack (keys, descriptors): held for you
//	                     StoreEnd  (no keys): that was all
//
// Each side checks what the other sends: a malformed message is dropped
// with every descriptor that came with it.

// EnvFDStoreFD names the inherited descriptor of a server's store link.
const EnvFDStoreFD = "SATURN_FDSTORE_FD"

// StoreOp is a store message's kind.
type StoreOp byte

const (
	StorePut  StoreOp = 'P'
	StoreDrop StoreOp = 'D'
	StoreBack StoreOp = 'B'
	StoreEnd  StoreOp = 'E'
)

const (
	// StoreMaxFDs is the most descriptors one message carries (the
	// kernel's SCM_MAX_FD).
	StoreMaxFDs = 253
	// StoreMaxKeys is the most keys one message carries.
	StoreMaxKeys = 1024
	// StoreMaxMsg is the largest message.
	StoreMaxMsg = storeHead + 8*StoreMaxKeys
	storeHead   = 8
)

// ErrStoreMsg is a store message that breaks the format.
var ErrStoreMsg = errors.New("proto: malformed descriptor-store message")

// AppendStoreMsg appends the message (op, keys) to b.
func AppendStoreMsg(b []byte, op StoreOp, keys []uint64) []byte {
	b = append(b, byte(op), 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint64(b, k)
	}
	return b
}

// DecodeStoreMsg reads a message into keys (reused). fds is how many
// descriptors came with it: a Put or a Back must carry one per key, at most
// StoreMaxFDs; the others none.
func DecodeStoreMsg(b []byte, fds int, keys []uint64) (StoreOp, []uint64, error) {
	if len(b) < storeHead || b[1]|b[2]|b[3] != 0 {
		return 0, keys, ErrStoreMsg
	}
	op := StoreOp(b[0])
	n := binary.LittleEndian.Uint32(b[4:])
	if n > StoreMaxKeys || len(b) != storeHead+8*int(n) {
		return 0, keys, ErrStoreMsg
	}
	switch op {
	case StorePut, StoreBack:
		if int(n) != fds || n > StoreMaxFDs {
			return 0, keys, ErrStoreMsg
		}
	case StoreDrop:
		if fds != 0 {
			return 0, keys, ErrStoreMsg
		}
	case StoreEnd:
		if fds != 0 || n != 0 {
			return 0, keys, ErrStoreMsg
		}
	default:
		return 0, keys, ErrStoreMsg
	}
	keys = keys[:0]
	for i := range int(n) {
		keys = append(keys, binary.LittleEndian.Uint64(b[storeHead+8*i:]))
	}
	return op, keys, nil
}

// StoreFDs is the descriptors a received message carried (its control
// data), or an error; on error every descriptor the data named is closed.
func StoreFDs(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	var bad error
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			bad = err
			continue
		}
		fds = append(fds, got...)
	}
	if bad != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, bad
	}
	return fds, nil
}

// FDStoreFromEnv returns the server's store link, which the supervisor
// passed as the descriptor EnvFDStoreFD names. The caller owns it.
func FDStoreFromEnv() (*os.File, error) {
	return inheritedFile(EnvFDStoreFD, "fdstore", "descriptor store")
}
