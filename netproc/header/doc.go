// Package header holds typed byte-slice views of the wire headers saturn's
// user-level stack speaks (IPv4, ICMPv4, TCP and TCP options), the Internet
// checksum, and validation functions for untrusted input.
//
// A view such as [IPv4] or [TCP] is a []byte that starts at the first byte of
// the header. Its accessors read fields at named offsets in network byte
// order (big-endian) and its setters write them; a view never copies and
// never owns its bytes: whoever owns the slice owns the view.
//
// Accessors assume the view is long enough for the fixed part of its header
// (IPv4MinimumSize, TCPMinimumSize, ICMPv4MinimumSize). Untrusted bytes must
// first pass the matching Validate function ([ValidateIPv4], [ValidateTCP],
// [ValidateICMPv4], [ParseTCPOptions]); after that every accessor, including
// the variable-length ones (Options, Payload), stays within bounds. Those
// variable-length accessors also clamp on unvalidated input, so that a bad
// packet can make a caller drop it but never makes it panic.
//
// Validation errors are *[ParseError] values wrapping one of the package's
// sentinel errors (ErrTruncated, ErrBadChecksum, ...), so that
// errors.Is(err, header.ErrBadChecksum) sorts a drop into a counter and
// err.Error() says what was wrong with which field.
package header
