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
