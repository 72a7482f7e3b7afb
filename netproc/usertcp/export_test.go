package usertcp

import (
	"encoding/binary"

	"saturn/netproc/tcp"
)

// ConnInfos returns the core's view of every connection. Loop only.
func (s *Stack) ConnInfos() []tcp.Info {
	var out []tcp.Info
	for _, c := range s.conns {
		if c != nil {
			out = append(out, s.tab.conn(c.slot).Info())
		}
	}
	return out
}

// TearOwned marks every record of the table in persist that an app owns as
// torn (its step sequence odd), as a death in the middle of a Step would
// leave it, and returns how many it marked.
func TearOwned(persist []byte) int {
	n := 0
	used := int(binary.LittleEndian.Uint32(persist[hUsed:]))
	recOff := int(binary.LittleEndian.Uint64(persist[hRecOff:]))
	for i := range used {
		r := persist[recOff+i*recordSize:]
		if binary.LittleEndian.Uint32(r[rState:]) == recOpen && binary.LittleEndian.Uint64(r[rOwner:]) != 0 {
			binary.LittleEndian.PutUint32(r[rSeq:], binary.LittleEndian.Uint32(r[rSeq:])|1)
			n++
		}
	}
	return n
}

// CorruptListeners breaks every listener record of the table image
// persist in the way how names, as a hostile or half-written table could,
// and returns how many records it changed ("dup": the second listener
// takes the first's port, neither sharing it).
func CorruptListeners(persist []byte, how string) int {
	le := binary.LittleEndian
	n := 0
	used := int(le.Uint32(persist[hUsed:]))
	recOff := int(le.Uint64(persist[hRecOff:]))
	var first []byte
	for i := range used {
		r := persist[recOff+i*recordSize : recOff+(i+1)*recordSize]
		if le.Uint32(r[rState:]) != recListen {
			continue
		}
		switch how {
		case "port":
			le.PutUint16(r[rListen:], 0)
		case "backlog":
			le.PutUint32(r[lBacklog:], 1<<30)
		case "bufsize":
			le.PutUint32(r[rSndSize:], 4097)
		case "laddr":
			copy(r[lLaddr:], []byte{192, 0, 2, 1})
		case "torn":
			le.PutUint32(r[rSeq:], le.Uint32(r[rSeq:])|1)
		case "owner":
			le.PutUint64(r[rOwner:], 0)
		case "asked4":
			r[lFlags] |= lfAsked4
			copy(r[lAsked:lAsked+16], []byte{0x20, 0x01, 0x0d, 0xb8})
		case "dup":
			r[lFlags] &^= lfReusePort
			if first == nil {
				first = r
				continue
			}
			le.PutUint16(r[rListen:], le.Uint16(first[rListen:]))
		}
		n++
	}
	return n
}
