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

// storeThenLoad stores v into w so that no load that follows it in program
// order can be satisfied first: the half of the wake-up handshake that
// Producer.PublishDeferred (store tail, load the wake flag) and
// Consumer.Wait and ArmWakeup (store the wake flag, load tail) each do, so
// that of the two sides at least one sees the other's store.
//
// It is a Swap, not a Store. Go promises sequentially consistent atomics,
// and a Store on amd64 is already an XCHG, but under the race detector
// sync/atomic calls ThreadSanitizer, which ignores synchronization on
// memory outside Go's heap (our mmap'd regions) and does such a Store as a
// plain MOV: a load after it could then pass it in the store buffer, both
// sides would read the old values, and the consumer would sleep on an
// entry nobody wakes it for (appproc's TestFSConformance hung in 4 of 15
// runs that way under -race, and stalled in the others). A Swap is a locked XCHG in every
// build, at the cost of the Store it replaces.
func storeThenLoad(w *atomic.Uint32, v uint32) { w.Swap(v) }
