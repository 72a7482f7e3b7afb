package diskproc

import (
	"syscall"

	"saturn/proto"
)

// finish takes an op back from the backend, on the loop goroutine, and
// completes its entry. The buffer goes back to the app with the completion
// (Channel.Complete returns it before the completion is published).
func (s *Server) finish(o *op) {
	a := o.app
	a.inflight--
	s.stats.finished(o)
	c := proto.Completion{UserData: o.sub.UserData, Result: o.res, Buf: proto.NoBuffer, Aux: o.aux}
	if o.buf != nil {
		c.Buf = o.sub.Buf
	}
	if o.kind == opOpen {
		s.finishOpen(o, &c)
	}
	if o.err != nil {
		c.Result = proto.ErrResult(o.err.errno)
		c.Aux = proto.ReasonAux(o.err.reason, o.err.arg)
	}
	if f := o.file; f != nil {
		f.refs--
		if f.refs == 0 && f.closing != nil {
			// The close that waited for this op: now the descriptor goes.
			s.closeFile(f)
			a.ch.Complete(*f.closing)
			f.closing = nil
			a.inflight--
		}
	}
	a.ch.Complete(c)
	s.freeOp(o)
}

// maxFreeOps bounds the ops kept for reuse.
const maxFreeOps = 4096

// newOp takes an op from the free list: reads and writes come and go by
// the hundred thousand a second, and recycling their ops keeps the garbage
// collector out of the loop's way. Loop only.
func (s *Server) newOp() *op {
	if n := len(s.freeOps); n > 0 {
		o := s.freeOps[n-1]
		s.freeOps = s.freeOps[:n-1]
		return o
	}
	return new(op)
}

// freeOp recycles o, which nothing references any more (the backend handed
// it back and its entry is completed). Loop only.
func (s *Server) freeOp(o *op) {
	if len(s.freeOps) < maxFreeOps {
		*o = op{}
		s.freeOps = append(s.freeOps, o)
	}
}

// finishOpen enters a newly opened file into the app's table and publishes
// its record, or releases the intent of an open that failed.
func (s *Server) finishOpen(o *op, c *proto.Completion) {
	a := o.app
	a.opening--
	if o.err != nil {
		s.persist.release(o.rec.slot)
		return
	}
	if len(a.files) >= s.opts.MaxOpen { // the limit was checked at submit; a rebuild may have filled it since
		s.closeFile(&file{fd: o.opened.fd, fixed: -1})
		s.persist.release(o.rec.slot)
		o.err = &opError{errno: syscall.EMFILE, reason: proto.ReasonTooManyOpen, arg: uint32(s.opts.MaxOpen)}
		return
	}
	st := o.opened.stat
	f := &file{handle: a.newHandle(), fd: o.opened.fd, flags: o.flags, typ: st.Type, rec: o.rec}
	if o.flags&proto.OpenDirect != 0 {
		f.directAlign, f.directMem = st.DirectAlign, st.DirectMem
	}
	s.back.addFile(f)
	a.files[f.handle] = f
	o.rec.handle, o.rec.dev, o.rec.ino, o.rec.state = f.handle, st.Dev, st.Ino, slotOpen
	s.persist.setOpen(o.rec)
	c.Result = int64(f.handle)
	c.Aux = openInfo(f)
}
