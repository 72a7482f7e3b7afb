package header

import (
	"encoding/binary"
	"strconv"
)

// TCP option kinds (IANA "TCP Option Kind Numbers").
const (
	TCPOptionEOL           = 0 // RFC 9293, 3.2
	TCPOptionNOP           = 1 // RFC 9293, 3.2
	TCPOptionMSS           = 2 // RFC 9293, 3.2
	TCPOptionWS            = 3 // RFC 7323, 2.2
	TCPOptionSACKPermitted = 4 // RFC 2018, 2
	TCPOptionSACK          = 5 // RFC 2018, 3
	TCPOptionTS            = 8 // RFC 7323, 3.2
)

// Option lengths, type and length bytes included.
const (
	tcpOptionMSSLen           = 4
	tcpOptionWSLen            = 3
	tcpOptionSACKPermittedLen = 2
	tcpOptionTSLen            = 10
	tcpOptionSACKBlockLen     = 8
)

// MaxWScale is the largest window scale shift (RFC 7323, section 2.3).
const MaxWScale = 14

// NoTCPOptions returns TCPOptions with no option present (WScale -1).
func NoTCPOptions() TCPOptions { return TCPOptions{WScale: -1} }

// ParseTCPOptions parses the option bytes of a TCP header (TCP.Options).
//
// End-of-list stops parsing and no-operation is skipped (RFC 9293, 3.2).
// Every other option needs a length byte of at least 2 that stays within b;
// MSS, window scale, SACK-permitted and timestamps must have their fixed
// lengths, and a SACK option 2 + 8n bytes with 1 <= n <= 4 (RFC 2018,
// section 3); anything else is an error wrapping ErrTruncatedOption or
// ErrBadOptionLength. Options of unknown kind are skipped by their length
// (RFC 9293, 3.2: "must be prepared to handle an illegal option length").
// A window scale above 14 is taken as 14 (RFC 7323, section 2.3). When an
// option appears twice the last one counts.
func ParseTCPOptions(b []byte) (TCPOptions, error) {
	o := NoTCPOptions()
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case TCPOptionEOL:
			return o, nil
		case TCPOptionNOP:
			i++
			continue
		}
		if i+1 >= len(b) {
			return o, optErr(kind, ErrTruncatedOption, len(b)-i, "<", 2)
		}
		l := int(b[i+1])
		if l < 2 {
			return o, optErr(kind, ErrBadOptionLength, l, "<", 2)
		}
		if i+l > len(b) {
			return o, optErr(kind, ErrTruncatedOption, l, ">", len(b)-i)
		}
		body := b[i+2 : i+l]
		switch kind {
		case TCPOptionMSS:
			if l != tcpOptionMSSLen {
				return o, optErr(kind, ErrBadOptionLength, l, "!=", tcpOptionMSSLen)
			}
			o.MSS = binary.BigEndian.Uint16(body)
		case TCPOptionWS:
			if l != tcpOptionWSLen {
				return o, optErr(kind, ErrBadOptionLength, l, "!=", tcpOptionWSLen)
			}
			o.WScale = int8(min(body[0], MaxWScale))
		case TCPOptionSACKPermitted:
			if l != tcpOptionSACKPermittedLen {
				return o, optErr(kind, ErrBadOptionLength, l, "!=", tcpOptionSACKPermittedLen)
			}
			o.SACKPermitted = true
		case TCPOptionTS:
			if l != tcpOptionTSLen {
				return o, optErr(kind, ErrBadOptionLength, l, "!=", tcpOptionTSLen)
			}
			o.TS = true
			o.TSVal = binary.BigEndian.Uint32(body)
			o.TSEcr = binary.BigEndian.Uint32(body[4:])
		case TCPOptionSACK:
			n := (l - 2) / tcpOptionSACKBlockLen
			if (l-2)%tcpOptionSACKBlockLen != 0 || n == 0 || n > MaxSACKBlocks {
				return o, optErr(kind, ErrBadOptionLength, l, "!=", 2+tcpOptionSACKBlockLen*max(1, min(n, MaxSACKBlocks)))
			}
			o.NumSACK = uint8(n)
			o.SACK = [MaxSACKBlocks]SACKBlock{}
			for j := range n {
				o.SACK[j] = SACKBlock{
					Start: binary.BigEndian.Uint32(body[j*8:]),
					End:   binary.BigEndian.Uint32(body[j*8+4:]),
				}
			}
		}
		i += l
	}
	return o, nil
}

var tcpOptionNames = map[uint8]string{
	TCPOptionMSS:           "MSS",
	TCPOptionWS:            "window scale",
	TCPOptionSACKPermitted: "SACK-permitted",
	TCPOptionSACK:          "SACK",
	TCPOptionTS:            "timestamps",
}

func optErr(kind uint8, sentinel error, got int, rel string, want int) error {
	name, ok := tcpOptionNames[kind]
	if !ok {
		name = "kind " + strconv.Itoa(int(kind))
	}
	return parseErr("tcp option", name+" length", sentinel, got, rel, want)
}

// tcpOptionsLayout says which options Encode writes and how many SACK
// blocks fit.
type tcpOptionsLayout struct {
	mss, ws, sackOK, ts bool
	sackBlocks          int
	length              int
}

// layout places options so that padding is minimal: MSS (4 bytes) and
// NOP+window scale (4) stand alone; SACK-permitted (2), timestamps (10) and
// SACK (2+8n) are each 2 mod 4, so two of them pair up without padding and
// a third, if any, takes two NOPs. This always fits 40 bytes when the same
// options fit unpadded, so parse, encode and parse again round-trip. SACK
// blocks that do not fit are left out, last first (RFC 2018, section 3: at
// most 3 beside timestamps).
func (o TCPOptions) layout() tcpOptionsLayout {
	l := tcpOptionsLayout{mss: o.MSS != 0, ws: o.WScale >= 0, sackOK: o.SACKPermitted, ts: o.TS}
	fixed := 0
	twoMod4 := 0
	if l.mss {
		fixed += 4
	}
	if l.ws {
		fixed += 4
	}
	if l.sackOK {
		fixed += tcpOptionSACKPermittedLen
		twoMod4++
	}
	if l.ts {
		fixed += tcpOptionTSLen
		twoMod4++
	}
	for n := int(min(o.NumSACK, MaxSACKBlocks)); n > 0; n-- {
		total := fixed + 2 + n*tcpOptionSACKBlockLen
		if (twoMod4+1)%2 == 1 {
			total += 2
		}
		if total <= TCPMaximumOptionsSize {
			l.sackBlocks = n
			l.length = total
			return l
		}
	}
	l.length = fixed
	if twoMod4%2 == 1 {
		l.length += 2
	}
	return l
}

// EncodedLen returns the number of bytes Encode writes: a multiple of 4, at
// most 40.
func (o TCPOptions) EncodedLen() int { return o.layout().length }

// Encode writes the options present in o into b, padded with NOPs to a
// multiple of 4, and returns the number of bytes written (EncodedLen). MSS 0
// and WScale < 0 mean absent; a WScale above 14 is written as 14. b must hold
// EncodedLen bytes.
func (o TCPOptions) Encode(b []byte) int {
	l := o.layout()
	_ = b[:l.length]
	i := 0
	if l.mss {
		b[i], b[i+1] = TCPOptionMSS, tcpOptionMSSLen
		binary.BigEndian.PutUint16(b[i+2:], o.MSS)
		i += 4
	}
	if l.ws {
		b[i], b[i+1], b[i+2], b[i+3] = TCPOptionNOP, TCPOptionWS, tcpOptionWSLen, uint8(min(o.WScale, MaxWScale))
		i += 4
	}
	// The 2-mod-4 options: pad the first with two NOPs when their count is
	// odd, then write them back to back.
	if l.sackOK != l.ts != (l.sackBlocks > 0) { // an odd count of them
		b[i], b[i+1] = TCPOptionNOP, TCPOptionNOP
		i += 2
	}
	if l.sackOK {
		b[i], b[i+1] = TCPOptionSACKPermitted, tcpOptionSACKPermittedLen
		i += 2
	}
	if l.ts {
		b[i], b[i+1] = TCPOptionTS, tcpOptionTSLen
		binary.BigEndian.PutUint32(b[i+2:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+6:], o.TSEcr)
		i += tcpOptionTSLen
	}
	if l.sackBlocks > 0 {
		b[i], b[i+1] = TCPOptionSACK, uint8(2+l.sackBlocks*tcpOptionSACKBlockLen)
		i += 2
		for _, blk := range o.SACK[:l.sackBlocks] {
			binary.BigEndian.PutUint32(b[i:], blk.Start)
			binary.BigEndian.PutUint32(b[i+4:], blk.End)
			i += tcpOptionSACKBlockLen
		}
	}
	return i
}
