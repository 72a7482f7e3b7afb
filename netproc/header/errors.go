package header

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every validation error wraps exactly one of them.
var (
	ErrTruncated         = errors.New("header: truncated")
	ErrBadVersion        = errors.New("header: bad version")
	ErrBadIHL            = errors.New("header: bad IHL")
	ErrBadTotalLength    = errors.New("header: bad total length")
	ErrBadFragment       = errors.New("header: bad fragment")
	ErrBadDataOffset     = errors.New("header: bad data offset")
	ErrBadChecksum       = errors.New("header: bad checksum")
	ErrBadOption         = errors.New("header: bad option")
	ErrBadOptionLength   = errors.New("header: bad option length")
	ErrTruncatedOption   = errors.New("header: truncated option")
	ErrBufferTooSmall    = errors.New("header: buffer too small")
	ErrOptionsTooLong    = errors.New("header: options too long")
	ErrUnsupportedFields = errors.New("header: unsupported fields")
)

// ParseError says which header and field made a packet invalid, with the
// value found and the bound it broke. It wraps one of the sentinel errors.
//
// Building one costs a single small allocation; the message is formatted only
// when Error is called, so a flood of bad packets stays cheap.
type ParseError struct {
	Header string // "ipv4", "icmpv4", "tcp", "tcp option"
	Field  string // "IHL", "total length", "checksum", "MSS", ...
	Got    int    // the value found (a length, a field, a checksum)
	Want   int    // the bound or expected value it was compared with
	Rel    string // how Got relates to Want: "<", ">", "!=" ("" prints neither)
	Err    error  // the sentinel
}

func (e *ParseError) Error() string {
	s := "header: " + e.Header + ": " + strings.TrimPrefix(e.Err.Error(), "header: ") + ": " + e.Field
	if e.Rel != "" {
		s += " " + strconv.Itoa(e.Got) + " " + e.Rel + " " + strconv.Itoa(e.Want)
	}
	return s
}

func (e *ParseError) Unwrap() error { return e.Err }

func parseErr(hdr, field string, sentinel error, got int, rel string, want int) error {
	return &ParseError{Header: hdr, Field: field, Got: got, Want: want, Rel: rel, Err: sentinel}
}
