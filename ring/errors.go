package ring

import "errors"

// Errors returned by this package. Each is a sentinel that errors.Is
// recognises; the error returned usually wraps it with what was wrong.
var (
	// ErrBadHeader: a region's header is not one this package wrote, or lies
	// about its geometry or size.
	ErrBadHeader = errors.New("ring: bad region header")
	// ErrVersion: the region speaks another ABI version.
	ErrVersion = errors.New("ring: unsupported ABI version")
	// ErrBadGeometry: ring or pool dimensions out of range.
	ErrBadGeometry = errors.New("ring: bad geometry")
	// ErrNotSealed: the region's file can still grow or shrink, so a peer
	// could truncate it under us and turn a load into SIGBUS.
	ErrNotSealed = errors.New("ring: region is not sealed against resizing")
	// ErrCorrupt: a ring's shared counters contradict each other (a peer
	// moved them out of range). The ring is dead; the channel must be torn
	// down, as cilium/ebpf's reader does with a corrupt ring buffer.
	ErrCorrupt = errors.New("ring: corrupt ring counters")
	// ErrBufferIndex: a buffer index outside the pool.
	ErrBufferIndex = errors.New("ring: buffer index out of range")
	// ErrBufferLength: a length past the end of a buffer.
	ErrBufferLength = errors.New("ring: length past end of buffer")
	// ErrBufferNotOwned: a buffer named by a side that does not own it: a
	// double return, a return of a buffer never lent, or a loan of a buffer
	// already lent.
	ErrBufferNotOwned = errors.New("ring: buffer not owned by this side")
	// ErrNoBuffers: every buffer in the pool is in use.
	ErrNoBuffers = errors.New("ring: no free buffers")
	// ErrWaitTimeout: a wait ended because its deadline passed.
	ErrWaitTimeout = errors.New("ring: wait timed out")
)
