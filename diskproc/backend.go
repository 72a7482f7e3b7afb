package diskproc

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"saturn/internal/serverkit"
)

// backend carries ops out. All its methods run on the loop goroutine; it
// hands every op it was given back exactly once, through done, also on the
// loop goroutine.
type backend interface {
	// name is what status reports.
	name() string
	// bind registers the backend's descriptors with the loop.
	bind(loop *serverkit.Loop, done func(*op)) error
	// start queues o; nothing reaches the kernel before flush.
	start(o *op)
	// flush submits everything queued since the last flush, in one batch.
	flush()
	// addChannel and dropChannel register and forget a channel's buffer
	// pool (io_uring fixed buffers); dropChannel is only called once no op
	// of the channel is in flight.
	addChannel(a *appState)
	dropChannel(a *appState)
	// addFile and removeFile register and forget an open file (io_uring
	// fixed files); removeFile is only called once no op on it is in
	// flight, before its descriptor is closed.
	addFile(f *file)
	removeFile(f *file)
	// poll waits up to timeoutMS for completions and hands them to done:
	// how Dropped and shutdown wait for a channel's ops to finish.
	poll(timeoutMS int)
	close() error
}

// workers is a pool of goroutines that carry ops out with blocking system
// calls (pread, pwrite, fsync, openat2, statx, getdents). It is the whole
// of the threads backend, and the metadata half of the io_uring one.
//
// Locks: mu guards queue, done and stopped; workers hold it only to pop an
// op or push a result, never during a system call.
type workers struct {
	root int
	efd  int // signalled when done goes from empty to non-empty
	loop *serverkit.Loop
	fin  func(*op)

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*op
	done    []*op
	spare   []*op // the loop's last done slice, reused
	stopped bool

	local []*op // loop only: queued since the last flush
	wg    sync.WaitGroup
}

func newWorkers(root, n int) (*workers, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("diskproc: eventfd: %w", err)
	}
	w := &workers{root: root, efd: efd}
	w.cond = sync.NewCond(&w.mu)
	for range max(n, 1) {
		w.wg.Add(1)
		go w.work()
	}
	return w, nil
}

func (w *workers) bind(loop *serverkit.Loop, done func(*op)) error {
	w.loop, w.fin = loop, done
	return loop.AddFD(w.efd, unix.EPOLLIN, func(uint32) { w.reap() })
}

func (w *workers) start(o *op) { w.local = append(w.local, o) }

func (w *workers) flush() {
	if len(w.local) == 0 {
		return
	}
	w.mu.Lock()
	w.queue = append(w.queue, w.local...)
	n := len(w.local)
	w.mu.Unlock()
	for range n { // one worker per op: a broadcast would wake the whole pool
		w.cond.Signal()
	}
	clear(w.local)
	w.local = w.local[:0]
}

func (w *workers) work() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.stopped {
			w.cond.Wait()
		}
		if w.stopped {
			w.mu.Unlock()
			return
		}
		o := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		w.mu.Unlock()

		o.run(w.root)

		w.mu.Lock()
		wasEmpty := len(w.done) == 0
		w.done = append(w.done, o)
		w.mu.Unlock()
		if wasEmpty {
			var one = [8]byte{1}
			unix.Write(w.efd, one[:])
		}
	}
}

// reap hands finished ops to the loop.
func (w *workers) reap() {
	var buf [8]byte
	unix.Read(w.efd, buf[:])
	w.mu.Lock()
	done := w.done
	w.done = w.spare[:0]
	w.mu.Unlock()
	for i, o := range done {
		done[i] = nil
		w.fin(o)
	}
	w.spare = done[:0]
}

func (w *workers) poll(timeoutMS int) {
	fds := []unix.PollFd{{Fd: int32(w.efd), Events: unix.POLLIN}}
	unix.Poll(fds, timeoutMS)
	w.reap()
}

func (w *workers) close() error {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.cond.Broadcast()
	w.wg.Wait()
	if w.loop != nil {
		w.loop.DelFD(w.efd)
	}
	return unix.Close(w.efd)
}

// threadsBackend is the pread/pwrite worker pool, for where io_uring is
// missing or disabled.
type threadsBackend struct{ *workers }

func (t threadsBackend) name() string          { return "threads" }
func (t threadsBackend) addChannel(*appState)  {}
func (t threadsBackend) dropChannel(*appState) {}
func (t threadsBackend) addFile(*file)         {}
func (t threadsBackend) removeFile(*file)      {}
