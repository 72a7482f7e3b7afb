package usertcp

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"saturn/netproc/link"
)

// ErrCaptureSlow ends a capture whose reader does not keep up: netproc
// never waits for a capture file, so it buffers up to captureQueue bytes
// and then stops recording rather than slow the stack down.
var ErrCaptureSlow = errors.New("usertcp: the capture's reader is too slow; capture stopped")

// ErrCaptureReaderGone ends a capture written to a pipe whose reader has
// closed it (`saturn capture | head -c 100`).
var ErrCaptureReaderGone = errors.New("usertcp: the capture's reader closed the pipe; capture stopped")

const captureQueue = 64 << 20

// Capture records what the stack sends and receives to f as a pcap file
// (link.Capture's format: raw IPv4, nanosecond stamps), until limit packets
// (0: no limit) or stop. f is written by a goroutine of its own, so that a
// slow reader (a pipe to tshark) never blocks the loop. When the capture
// ends, f is closed and done is called with the packets recorded and the
// error that ended it, if any. Safe from any goroutine.
func (s *Stack) Capture(f *os.File, limit int, done func(packets int, err error)) (stop func(), err error) {
	w := newAsyncWriter(f, captureQueue)
	sess, err := s.tap.Start(w, link.CaptureOptions{Limit: limit})
	if err != nil {
		w.close()
		if errors.Is(err, link.ErrCaptureActive) {
			return nil, fmt.Errorf("usertcp: a capture is already running")
		}
		return nil, err
	}
	go func() {
		<-sess.Done()
		werr := w.close()
		err := sess.Err()
		if err == nil {
			err = werr
		}
		done(sess.Count(), err)
	}()
	return func() { sess.Stop() }, nil
}

// asyncWriter queues what it is given and writes it to a file from a
// goroutine; past limit bytes queued it fails with ErrCaptureSlow.
type asyncWriter struct {
	f     *os.File
	limit int

	mu      sync.Mutex // guards everything below
	cond    sync.Cond
	queue   [][]byte
	queued  int
	err     error
	closing bool
	done    chan struct{}
}

func newAsyncWriter(f *os.File, limit int) *asyncWriter {
	w := &asyncWriter{f: f, limit: limit, done: make(chan struct{})}
	w.cond.L = &w.mu
	go w.run()
	return w
}

func (w *asyncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.queued+len(p) > w.limit {
		w.err = ErrCaptureSlow
		w.cond.Broadcast()
		return 0, w.err
	}
	w.queue = append(w.queue, append([]byte(nil), p...))
	w.queued += len(p)
	w.cond.Broadcast()
	return len(p), nil
}

func (w *asyncWriter) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closing && w.err == nil {
			w.cond.Wait()
		}
		if len(w.queue) == 0 || w.err != nil {
			w.mu.Unlock()
			return
		}
		chunk := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		w.mu.Unlock()
		_, err := w.f.Write(chunk)
		w.mu.Lock()
		w.queued -= len(chunk)
		if err != nil && w.err == nil {
			if errors.Is(err, syscall.EPIPE) {
				err = ErrCaptureReaderGone
			}
			w.err = err
		}
		w.mu.Unlock()
	}
}

// close writes what is queued (unless writing failed), closes the file and
// returns the first write error.
func (w *asyncWriter) close() error {
	w.mu.Lock()
	w.closing = true
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.done
	cerr := w.f.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return cerr
}
