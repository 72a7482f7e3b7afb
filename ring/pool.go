package ring

import "fmt"

// The data-buffer pool: BufferCount fixed-size buffers in the region,
// addressed by index. At any moment each buffer belongs to exactly one side.
//
//   - All buffers start with the app, free. The app allocates one (Alloc),
//     fills it or not, and lends it to the server by naming it in a
//     submission entry (Lend, just before publishing the entry).
//   - The server takes the buffer when it consumes that entry (Take), uses it,
//     and gives it back by naming it in the entry's completion (Return, just
//     before publishing the completion). After Return the server does not
//     touch it again.
//   - The app takes it back when it reads the completion (Reclaim), reads
//     what the server wrote, and frees it (Free) or lends it again.
//
// Neither side trusts the other's word about ownership. Each keeps its own
// private record (Pool on the app side, Loans on the server side) and refuses
// an index out of range, a length past a buffer's end, a loan of a buffer it
// already holds, and a return of a buffer it never lent (which is how a
// double return shows up). The bytes themselves are shared: a hostile peer
// can scribble on a buffer it does not own, which can only corrupt that
// peer's own data, never a bound or an index.

type bufState uint8

const (
	bufFree bufState = iota // with the app, unallocated
	bufHeld                 // with the app, allocated
	bufLent                 // with the server
)

// Pool is the app side's record of the buffers. It is not safe for
// concurrent use.
type Pool struct {
	mem   []byte
	off   int
	size  uint32
	state []bufState // private: the peer cannot touch it
	free  []uint32   // stack of free indices
}

func newPool(mem []byte, off int, size, count uint32) *Pool {
	p := &Pool{mem: mem, off: off, size: size, state: make([]bufState, count), free: make([]uint32, count)}
	for i := range p.free {
		p.free[i] = count - 1 - uint32(i) // pop hands out 0 first
	}
	return p
}

// BufferSize is the size of every buffer.
func (p *Pool) BufferSize() int { return int(p.size) }

// Len is the number of buffers in the pool.
func (p *Pool) Len() int { return len(p.state) }

// FreeCount reports how many buffers are free.
func (p *Pool) FreeCount() int { return len(p.free) }

func (p *Pool) bytes(i uint32) []byte {
	off := p.off + int(i)*int(p.size)
	end := off + int(p.size)
	return p.mem[off:end:end]
}

// Alloc takes a free buffer for the app. It fails with ErrNoBuffers when
// every buffer is allocated or lent.
func (p *Pool) Alloc() (uint32, error) {
	n := len(p.free)
	if n == 0 {
		return 0, ErrNoBuffers
	}
	i := p.free[n-1]
	p.free = p.free[:n-1]
	p.state[i] = bufHeld
	return i, nil
}

// Bytes is buffer i, which the app must hold (allocated and not lent).
func (p *Pool) Bytes(i uint32) []byte {
	if int(i) >= len(p.state) || p.state[i] != bufHeld {
		panic(fmt.Sprintf("ring: app touched buffer %d it does not hold", i))
	}
	return p.bytes(i)
}

// Lend records that buffer i goes to the server with the entry about to be
// published. The app must hold it.
func (p *Pool) Lend(i uint32) error {
	return p.move(i, bufHeld, bufLent, "lend", "the app does not hold")
}

// Unlend takes back a buffer that was marked lent but whose entry was never
// published (for example when the ring was full).
func (p *Pool) Unlend(i uint32) error { return p.reclaimState(i) }

// Reclaim takes buffer i back from a completion that names it, and returns
// its first n bytes (what the server says it wrote). A buffer that was never
// lent (a foreign index, or a double return) is refused and left alone; a
// length past the buffer's end reclaims the buffer but is refused.
func (p *Pool) Reclaim(i uint32, n uint32) ([]byte, error) {
	if err := p.reclaimState(i); err != nil {
		return nil, err
	}
	if n > p.size {
		return nil, fmt.Errorf("%w: completion says %d bytes in buffer %d of %d", ErrBufferLength, n, i, p.size)
	}
	return p.bytes(i)[:n], nil
}

func (p *Pool) reclaimState(i uint32) error {
	return p.move(i, bufLent, bufHeld, "return", "was not lent")
}

// move takes buffer i from state from to state to, refusing (with op and
// what is wrong in the error) an index past the pool or a buffer not in from.
func (p *Pool) move(i uint32, from, to bufState, op, notFrom string) error {
	if int(i) >= len(p.state) {
		return fmt.Errorf("%w: %s of buffer %d in a pool of %d", ErrBufferIndex, op, i, len(p.state))
	}
	if p.state[i] != from {
		return fmt.Errorf("%w: %s of buffer %d, which %s", ErrBufferNotOwned, op, i, notFrom)
	}
	p.state[i] = to
	return nil
}

// Free puts a buffer the app holds back on the free list.
func (p *Pool) Free(i uint32) error {
	if int(i) >= len(p.state) {
		return fmt.Errorf("%w: free of buffer %d in a pool of %d", ErrBufferIndex, i, len(p.state))
	}
	if p.state[i] != bufHeld {
		return fmt.Errorf("%w: free of buffer %d, which the app does not hold", ErrBufferNotOwned, i)
	}
	p.state[i] = bufFree
	p.free = append(p.free, i)
	return nil
}

// Loans is the server side's record of the buffers apps have lent it. It is
// not safe for concurrent use. A new server incarnation starts with no loans:
// the app resubmits what the dead one held (see Region.ServerEpoch).
type Loans struct {
	mem   []byte
	off   int
	size  uint32
	count uint32
	held  []uint64 // bitset, private
	n     int
}

func newLoans(mem []byte, off int, size, count uint32) *Loans {
	return &Loans{mem: mem, off: off, size: size, count: count, held: make([]uint64, (count+63)/64)}
}

// BufferSize is the size of every buffer.
func (l *Loans) BufferSize() int { return int(l.size) }

// Held reports how many buffers the server holds.
func (l *Loans) Held() int { return l.n }

// Memory is the whole pool's memory (every buffer, in index order), for
// registering it with the kernel once (io_uring fixed buffers) instead of
// one buffer per request. It grants nothing: the server still touches only
// the buffers it holds, through Take and Return.
func (l *Loans) Memory() []byte {
	end := l.off + int(l.count)*int(l.size)
	return l.mem[l.off:end:end]
}

func (l *Loans) check(i uint32) error {
	if i >= l.count {
		return fmt.Errorf("%w: buffer %d in a pool of %d", ErrBufferIndex, i, l.count)
	}
	return nil
}

// Take accepts the loan of buffer i, named by an entry the server just
// consumed, and returns its first length bytes (the bytes the app filled, or
// the room the server may fill). An index outside the pool, a length past
// the buffer, or a buffer the server already holds is refused, and the
// buffer is not taken.
func (l *Loans) Take(i uint32, length uint32) ([]byte, error) {
	if err := l.check(i); err != nil {
		return nil, err
	}
	if length > l.size {
		return nil, fmt.Errorf("%w: %d bytes in buffer %d of %d", ErrBufferLength, length, i, l.size)
	}
	w, bit := i/64, uint64(1)<<(i%64)
	if l.held[w]&bit != 0 {
		return nil, fmt.Errorf("%w: buffer %d lent twice", ErrBufferNotOwned, i)
	}
	l.held[w] |= bit
	l.n++
	off := l.off + int(i)*int(l.size)
	return l.mem[off : off+int(length) : off+int(l.size)], nil
}

// Return gives buffer i back; the completion naming it must be published
// after this call and the server must not touch the buffer again.
func (l *Loans) Return(i uint32) error {
	if err := l.check(i); err != nil {
		return err
	}
	w, bit := i/64, uint64(1)<<(i%64)
	if l.held[w]&bit == 0 {
		return fmt.Errorf("%w: return of buffer %d, which the server does not hold", ErrBufferNotOwned, i)
	}
	l.held[w] &^= bit
	l.n--
	return nil
}
