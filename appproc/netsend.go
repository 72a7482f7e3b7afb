package appproc

import (
	"bytes"
	"io"
	"net"
	"os"
	"strings"
)

// The write path that reads straight into the channel's buffers. Write
// copies the caller's bytes into a buffer; a server that sends a file would
// first copy the file into its own slice (diskproc's buffer → the slice)
// and Write would copy it again (the slice → netproc's buffer). ReadFrom
// and WriteFrom read the source into the buffer that then goes to netproc,
// so that file bytes are copied once in the app, and, for a section of an
// io.ReaderAt, read several buffers' worth at once, so that a response of
// several buffers waits for one file read rather than one per buffer.

var (
	_ io.ReaderFrom = (*TCPConn)(nil)
)

// ReadFrom implements io.ReaderFrom (io.Copy uses it): it sends what r
// yields until io.EOF, under the same rules as Write (write-behind,
// deadline, errors), and returns how many bytes of r it sent.
//
// A source that cannot stall (an *io.SectionReader, a *File, a
// *bytes.Reader or *strings.Reader, or an *io.LimitedReader over one of
// them) is read straight into the channel's buffers; a section of an
// io.ReaderAt (a *File, say) is read with up to maxWriteBehind ReadAt calls
// in flight at once, in parallel, as io.ReaderAt allows. Any other source
// (a socket, a pipe: something whose Read may wait for long) is copied
// through a buffer of our own, as io.Copy would, so that it never holds
// one of the channel's buffers while it waits.
func (c *TCPConn) ReadFrom(r io.Reader) (int64, error) {
	return c.WriteFrom(nil, r)
}

// WriteFrom sends head and then what r yields until io.EOF, as Write(head)
// followed by ReadFrom(r) would, except that a short head shares its
// buffer, and so its send, with r's first bytes: a response head and the
// start of its body leave in one send. It returns how many bytes of r it
// sent (head not counted); on an error, head may or may not have been sent.
func (c *TCPConn) WriteFrom(head []byte, r io.Reader) (int64, error) {
	if !readsAtOnce(r) {
		return c.copyFrom(head, r)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(head) > c.maxRoom/2 { // it would crowd the first buffer: on its own
		if _, err := c.write(head); err != nil {
			return 0, err // already an *net.OpError
		}
		head = nil
	}
	var n int64
	var err error
	if sr, ok := r.(*io.SectionReader); ok {
		n, err = c.sendSection(head, sr)
	} else {
		n, err = c.sendReads(head, r)
	}
	if err == io.EOF {
		err = nil
	}
	return n, c.opErr("readfrom", err)
}

// readsAtOnce reports whether r's Read returns without waiting on anyone
// but a local file, so that it may fill a channel buffer in place.
func readsAtOnce(r io.Reader) bool {
	switch r := r.(type) {
	case *File, *bytes.Reader, *strings.Reader, *io.SectionReader:
		return true
	case *io.LimitedReader:
		return readsAtOnce(r.R)
	}
	return false
}

// takeSendRoom waits until the connection may have another send in flight
// and counts it in sending; the caller then starts the send (its completion
// counts it out) or calls dropSendRoom. It fails as Write does: closed,
// after a send failed, or past the write deadline.
func (c *TCPConn) takeSendRoom() error {
	for {
		expired := c.wdl.expired()
		c.mu.Lock()
		closed, werr, full := c.closed, c.werr, c.sending >= maxWriteBehind
		if !closed && werr == nil && !full && !expired {
			c.sending++
		}
		c.mu.Unlock()
		switch {
		case closed:
			return net.ErrClosed
		case werr != nil:
			return werr
		case expired:
			return os.ErrDeadlineExceeded
		case full:
			select {
			case <-c.wroom:
			case <-c.wdl.wait():
			case <-c.closing:
			}
			continue
		}
		return nil
	}
}

// trySendRoom is takeSendRoom without the wait: false if there is no room
// now (or no point: closed, failed).
func (c *TCPConn) trySendRoom() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.werr != nil || c.sending >= maxWriteBehind {
		return false
	}
	c.sending++
	return true
}

// dropSendRoom gives back room taken for a send that never started.
func (c *TCPConn) dropSendRoom() {
	c.mu.Lock()
	c.sending--
	c.mu.Unlock()
	select {
	case c.wroom <- struct{}{}:
	default:
	}
}

// reserve takes room for one more send and a channel buffer for it,
// waiting as Write does.
func (c *TCPConn) reserve() (reservation, error) {
	if err := c.takeSendRoom(); err != nil {
		return reservation{}, err
	}
	res, err := c.ch.reserve(c.closing, c.wdl.wait())
	if err != nil {
		c.dropSendRoom()
		if err == errAborted {
			if c.isClosed() {
				return reservation{}, net.ErrClosed
			}
			return reservation{}, os.ErrDeadlineExceeded
		}
		return reservation{}, err
	}
	return res, nil
}

// tryReserve is reserve without the wait.
func (c *TCPConn) tryReserve() (reservation, bool) {
	if !c.trySendRoom() {
		return reservation{}, false
	}
	res, ok := c.ch.tryReserve()
	if !ok {
		c.dropSendRoom()
	}
	return res, ok
}

// sendReserved sends the first n bytes of res, or gives it back if n is 0.
// It ends the reservation and the room taken with it.
func (c *TCPConn) sendReserved(res reservation, n int) error {
	if n == 0 {
		c.ch.unreserve(res)
		c.dropSendRoom()
		return nil
	}
	if _, err := c.ch.startReserved(c.sendRequest(nil), res, n, c.sendCB); err != nil {
		c.dropSendRoom()
		return err
	}
	c.sendOff.Add(uint64(n))
	return nil
}

// sendReads fills one buffer per Read of r (after head, in the first) and
// sends it.
func (c *TCPConn) sendReads(head []byte, r io.Reader) (int64, error) {
	var sent int64
	for {
		res, err := c.reserve()
		if err != nil {
			return sent, err
		}
		h := copy(res.data, head)
		head = head[h:]
		k, rerr := r.Read(res.data[h:])
		if err := c.sendReserved(res, h+k); err != nil {
			return sent, err
		}
		sent += int64(k)
		if rerr != nil {
			return sent, rerr
		}
	}
}

// sectionFill is one buffer of a section being read in place.
type sectionFill struct {
	res  reservation
	head int           // bytes of the head at the front of the buffer
	want int           // head plus the bytes asked of the section
	n    int           // head plus the bytes read
	err  error         // the ReadAt's
	done chan struct{} // closed when the ReadAt returns; nil if it ran inline
}

// sendSection sends the rest of sr (after head, in the first buffer),
// reading up to maxWriteBehind buffers of it at once with ReadAt, and
// sending them in order as they fill. It waits for room only while it holds
// no filled buffer, so that connections holding buffers never wait on one
// another for more.
func (c *TCPConn) sendSection(head []byte, sr *io.SectionReader) (int64, error) {
	at, base, size := sr.Outer()
	pos, err := sr.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if size-pos <= 0 {
		if len(head) > 0 {
			_, err = c.write(head)
		}
		return 0, err
	}
	s := sectionSend{c: c, at: at, head: head, off: base + pos, left: size - pos}
	var sent int64
	for {
		s.fill()
		if s.queued == 0 {
			break
		}
		sent += s.sendNext()
	}
	sr.Seek(pos+sent, io.SeekStart)
	if s.stop == io.EOF {
		return sent, nil // a short section is an end, as io.Copy sees it
	}
	return sent, s.stop
}

// sectionSend is sendSection's state: the part of the section not yet
// asked for, and the buffers asked for, in order.
type sectionSend struct {
	c         *TCPConn
	at        io.ReaderAt
	head      []byte // not yet copied into a buffer
	off, left int64  // the section's bytes not yet asked for
	// The buffers being read or read, in order: queued of them from
	// queue[first] on, wrapping around.
	queue         [maxWriteBehind]*sectionFill
	first, queued int
	stop          error // why no more is sent: a failure, or a read that came up short
}

// fill reserves buffers and starts reading the section into them, up to
// maxWriteBehind in all. It waits for room only with no buffer queued.
func (s *sectionSend) fill() {
	for s.left > 0 && s.stop == nil && s.queued < maxWriteBehind {
		var res reservation
		if s.queued == 0 {
			var err error
			if res, err = s.c.reserve(); err != nil {
				s.stop = err
				return
			}
		} else {
			var ok bool
			if res, ok = s.c.tryReserve(); !ok {
				return
			}
		}
		s.queue[(s.first+s.queued)%maxWriteBehind] = s.start(res)
		s.queued++
	}
}

// start fills res with what is left of the head, then starts reading the
// next bytes of the section after it: on a goroutine of its own, or here
// for the last piece, which is read while the others run.
func (s *sectionSend) start(res reservation) *sectionFill {
	h := copy(res.data, s.head)
	s.head = s.head[h:]
	k := int(min(int64(len(res.data)-h), s.left))
	f := &sectionFill{res: res, head: h, want: h + k, n: h}
	at, dst, off := s.at, res.data[h:h+k], s.off
	if int64(k) == s.left {
		m, err := at.ReadAt(dst, off)
		f.n += m
		f.err = err
	} else {
		f.done = make(chan struct{})
		go func() {
			m, err := at.ReadAt(dst, off)
			f.n += m
			f.err = err
			close(f.done)
		}()
	}
	s.off += int64(k)
	s.left -= int64(k)
	return f
}

// sendNext waits for the first queued buffer to fill and sends it, or
// only gives it back once the send has stopped; it returns the section's
// bytes it sent.
func (s *sectionSend) sendNext() int64 {
	f := s.queue[s.first]
	s.queue[s.first] = nil
	s.first = (s.first + 1) % maxWriteBehind
	s.queued--
	if f.done != nil {
		<-f.done // its ReadAt writes into the buffer: wait, whatever happened
	}
	n := f.n
	switch {
	case s.stop != nil:
		n = 0 // past a failure or the end: the buffer only goes back
	case f.n < f.want:
		// The source ended early (the file shrank) or failed: send
		// what came, and nothing after it.
		s.stop = f.err
		if s.stop == nil {
			s.stop = io.ErrUnexpectedEOF // a ReadAt must say why it is short
		}
	}
	if err := s.c.sendReserved(f.res, n); err != nil {
		if s.stop == nil || s.stop == io.EOF {
			s.stop = err
		}
		return 0
	}
	return int64(max(n-f.head, 0))
}

// copyFrom sends r through a buffer of its own, as io.Copy does, for a
// source whose Read may wait: each Write takes the write lock, and the wait
// for r holds neither the lock nor any of the channel's buffers.
func (c *TCPConn) copyFrom(head []byte, r io.Reader) (int64, error) {
	if len(head) > 0 {
		if _, err := c.Write(head); err != nil {
			return 0, err
		}
	}
	buf := make([]byte, min(32<<10, c.maxRoom))
	var sent int64
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			m, err := c.Write(buf[:k])
			sent += int64(m)
			if err != nil {
				return sent, err
			}
		}
		switch {
		case rerr == io.EOF:
			return sent, nil
		case rerr != nil:
			return sent, c.opErr("readfrom", rerr)
		}
	}
}
