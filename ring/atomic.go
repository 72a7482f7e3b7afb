package ring

import (
	"sync/atomic"
	"unsafe"
)

// This file is the only place that turns shared memory into atomic words.
// Every offset passed here is a constant of the header layout or was checked
// against the region's size, and is a multiple of the word's size, so the
// resulting pointer is in bounds and aligned (the mapping is page-aligned).

func word32(mem []byte, off int) *atomic.Uint32 {
	_ = mem[off+3] // bounds check once, here
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

func word64(mem []byte, off int) *atomic.Uint64 {
	_ = mem[off+7]
	if off%8 != 0 {
		panic("ring: misaligned 64-bit word")
	}
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off]))
}
