package diskproc

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// Shares. Each app's open-file limit (MaxOpen) is its own, but diskproc's
// descriptors and its table of open files are everyone's: any number of
// apps, each within its limit, could take them all. So each of the MaxApps
// apps that may attach is guaranteed a few open files (guaranteedFiles),
// and only what is left over is first come, first served: an app past its
// guarantee opens a file only while the shared part has room. However the
// others behave, an app can always open its guarantee, and together they
// never pass the capacity (EMFILE with ReasonShares past it).

// guaranteedFiles is each app's guaranteed share of diskproc's files
// (less when the capacity cannot give every app as many).
const guaranteedFiles = 32

// descriptorsKept is what the capacity leaves of the process's
// descriptors to everything but apps' files: the loop, doorbells, the
// io_uring, the workers' pipes.
const descriptorsKept = 512

// capacity is how many files diskproc can hold open for apps, all
// together: its table's slots, and its descriptors.
func (s *Server) capacity() int {
	n := s.persist.slots
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 1<<30 {
		n = min(n, max(int(lim.Cur)-descriptorsKept, 0))
	}
	return n
}

// guaranteed is each app's guaranteed share.
func (s *Server) guaranteed() int {
	return min(guaranteedFiles, s.capacity()/s.opts.MaxApps, s.opts.MaxOpen)
}

// admitOpen reports whether a may open one more file under the shares,
// failing sub with EMFILE (ReasonShares) and logging when it may not.
func (s *Server) admitOpen(a *appState, sub *proto.Submission) bool {
	floor := s.guaranteed()
	if len(a.files)+a.opening < floor {
		return true
	}
	shared := 0
	for _, b := range s.apps {
		shared += max(len(b.files)+b.opening-floor, 0)
	}
	capacity := s.capacity()
	if shared < capacity-s.opts.MaxApps*floor {
		return true
	}
	if now := time.Now(); now.Sub(a.sharesWarned) >= 10*time.Second {
		a.sharesWarned = now
		s.log.Warn("diskproc's open files are all taken: refusing the app more than its guaranteed share (EMFILE)",
			"app", a.ch.Desc.App, "open", len(a.files), "guaranteed", floor, "capacity", capacity, "max_apps", s.opts.MaxApps)
	}
	s.fail(a, sub, true, syscall.EMFILE, proto.ReasonShares, uint32(floor))
	return false
}
