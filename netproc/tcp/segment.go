package tcp

import (
	"fmt"
	"strings"

	"saturn/netproc/header"
	"saturn/netproc/tcp/seqnum"
)

// Flags are the TCP control bits: the header package's type, so that a
// parsed header's bits pass into the core and out again without conversion.
type Flags = header.TCPFlags

// The control bits (RFC 9293, 3.1; RFC 3168 for ECE and CWR), under the
// names the core's code and golden scripts use.
const (
	FlagFIN = header.TCPFlagFin
	FlagSYN = header.TCPFlagSyn
	FlagRST = header.TCPFlagRst
	FlagPSH = header.TCPFlagPsh
	FlagACK = header.TCPFlagAck
	FlagURG = header.TCPFlagUrg
	FlagECE = header.TCPFlagEce
	FlagCWR = header.TCPFlagCwr
)

// Segment is a TCP segment as the core sees it: header fields already
// parsed (by the header package) and no addresses or ports, which the
// caller knows from the connection. The urgent pointer is not represented:
// saturn treats urgent data as ordinary data (RFC 6093, section 5).
type Segment struct {
	Seq, Ack seqnum.Value
	Flags    Flags
	// Window is the raw 16-bit window field, before scaling.
	Window  uint16
	Options header.TCPOptions

	// Payload is the segment's data. On input it is the received payload,
	// read during Step only. On output it aliases the send buffer (see
	// Output.Segments); when the data wraps around the end of the circular
	// buffer, it continues in Payload2, which is always nil on input.
	Payload  []byte
	Payload2 []byte

	// CE (input): the IP header carried Congestion Experienced. ECT
	// (output): the shell marks the IP header ECN-Capable, ECT(0).
	// RFC 3168; both only with Config.ECN.
	CE, ECT bool
}

// PayloadLen returns the number of data bytes.
func (s *Segment) PayloadLen() int { return len(s.Payload) + len(s.Payload2) }

// SeqLen returns the sequence space the segment occupies: its data plus one
// for SYN and one for FIN (RFC 9293, 3.4).
func (s *Segment) SeqLen() seqnum.Size {
	n := seqnum.Size(s.PayloadLen())
	if s.Flags&FlagSYN != 0 {
		n++
	}
	if s.Flags&FlagFIN != 0 {
		n++
	}
	return n
}

// AppendPayload appends the segment's data to b.
func (s *Segment) AppendPayload(b []byte) []byte {
	return append(append(b, s.Payload...), s.Payload2...)
}

// NoOptions returns a TCPOptions with no option present. (The zero value is
// not it: WScale 0 means "window scale with shift 0".)
func NoOptions() header.TCPOptions { return header.TCPOptions{WScale: -1} }

// String formats the segment as the golden scripts print it, for example
// "ACK seq=1001 ack=5001 win=512 ts=1200,1100 sack=5101-5201 len=100".
func (s Segment) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s seq=%d", s.Flags, s.Seq)
	if s.Flags&FlagACK != 0 {
		fmt.Fprintf(&b, " ack=%d", s.Ack)
	}
	fmt.Fprintf(&b, " win=%d", s.Window)
	o := &s.Options
	if o.MSS != 0 {
		fmt.Fprintf(&b, " mss=%d", o.MSS)
	}
	if o.WScale >= 0 {
		fmt.Fprintf(&b, " ws=%d", o.WScale)
	}
	if o.SACKPermitted {
		b.WriteString(" sackok")
	}
	if o.TS {
		fmt.Fprintf(&b, " ts=%d,%d", o.TSVal, o.TSEcr)
	}
	for i := 0; i < int(o.NumSACK) && i < len(o.SACK); i++ {
		if i == 0 {
			b.WriteString(" sack=")
		} else {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%d-%d", o.SACK[i].Start, o.SACK[i].End)
	}
	if n := s.PayloadLen(); n > 0 {
		fmt.Fprintf(&b, " len=%d", n)
	}
	if s.ECT {
		b.WriteString(" ect")
	}
	if s.CE {
		b.WriteString(" ce")
	}
	return b.String()
}

// ResetFor returns the RST that answers seg when no connection exists for
// it (RFC 9293, 3.10.7.1): a closed port, or a connection in CLOSED. It
// returns false when no reset is due, as for an arriving RST.
func ResetFor(seg *Segment) (Segment, bool) {
	if seg.Flags&FlagRST != 0 {
		return Segment{}, false
	}
	if seg.Flags&FlagACK != 0 {
		return Segment{Seq: seg.Ack, Flags: FlagRST, Options: NoOptions()}, true
	}
	return Segment{
		Ack:     seg.Seq.Add(seg.SeqLen()),
		Flags:   FlagRST | FlagACK,
		Options: NoOptions(),
	}, true
}
