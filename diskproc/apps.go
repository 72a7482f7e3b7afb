package diskproc

import (
	"math/rand/v2"
	"sync"
	"time"

	"saturn/internal/serverkit"
	"saturn/proto"
)

// maxHandle bounds handles: they are positive in a completion's int64
// result with room to spare.
const maxHandle = 1<<62 - 1

// appState is what diskproc holds for one app (one channel). Loop only.
type appState struct {
	ch *serverkit.Channel
	id uint64

	files map[uint64]*file
	// From the dead incarnation, for the requests the app replays:
	stale        map[uint64]bool   // handles whose file vanished or changed across the restart
	closedBefore map[uint64]bool   // handles it closed (tombstones), for a replayed close
	openedBefore map[uint64]uint64 // open user_data → the handle that open made
	intents      map[uint64]*record

	opening  int // opens in flight (they count toward the open-file limit)
	inflight int // ops accepted and not yet completed

	bufSlot int   // io_uring fixed-buffer slot of the channel's pool, or -1
	pinned  int64 // the memory that registration pins

	// Grants (grants.go): restricted when the channel came with grants
	// (the supervisor's always do); then the app writes only beneath the
	// folders of writable.
	restricted bool
	writable   []*writableDir

	sharesWarned time.Time // when running out of shares was last logged (shares.go)
}

func newAppState(ch *serverkit.Channel) *appState {
	return &appState{
		ch: ch, id: ch.Desc.ID, files: map[uint64]*file{},
		stale: map[uint64]bool{}, closedBefore: map[uint64]bool{},
		openedBefore: map[uint64]uint64{}, intents: map[uint64]*record{},
		bufSlot: -1,
	}
}

// newHandle picks a fresh random handle: unguessable, so a handle says
// nothing about other apps' files or how many there are, and never one
// this app holds or held before the restart.
func (a *appState) newHandle() uint64 {
	for {
		h := rand.Uint64() & maxHandle
		if h != 0 && a.files[h] == nil && !a.stale[h] && !a.closedBefore[h] {
			return h
		}
	}
}

// file is one open file of one app.
type file struct {
	handle uint64
	fd     int
	fixed  int // io_uring fixed-file slot, or -1
	flags  proto.OpenFlag
	typ    proto.FileType
	rec    *record // its persistent slot
	// O_DIRECT alignment of offsets and lengths, and of buffer addresses.
	directAlign, directMem uint32

	refs    int               // ops in flight on fd: it is closed only when none is left
	closing *proto.Completion // a close's answer, waiting for refs to reach zero
	closed  bool

	dirMu sync.Mutex // serialises readdir's seek and reads (on workers)
}
