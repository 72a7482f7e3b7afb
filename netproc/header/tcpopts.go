package header

// SACKBlock is one block of a TCP SACK option (RFC 2018, section 3): the
// sequence numbers of the first byte held and of the byte just past the block.
type SACKBlock struct {
	Start, End uint32
}

// MaxSACKBlocks is the most SACK blocks one option carries (4 without
// timestamps; 3 fit beside the timestamp option).
const MaxSACKBlocks = 4

// TCPOptions holds the TCP options saturn understands, parsed into plain
// values. It is plain data: the TCP core keeps and passes it by value.
type TCPOptions struct {
	MSS           uint16 // maximum segment size; 0 when absent (RFC 9293, 3.7.1)
	WScale        int8   // window scale shift 0..14; -1 when absent (RFC 7323, 2)
	SACKPermitted bool   // RFC 2018, section 2
	TS            bool   // the timestamp option is present (RFC 7323, 3)
	TSVal, TSEcr  uint32
	NumSACK       uint8 // valid entries in SACK
	SACK          [MaxSACKBlocks]SACKBlock
}
