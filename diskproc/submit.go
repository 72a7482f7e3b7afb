package diskproc

import (
	"math"
	"syscall"
	"time"
	"unsafe"

	"saturn/internal/serverkit"
	"saturn/proto"
)

// Submit checks one entry and starts it, or answers it with an error at
// once. Nothing in sub is trusted: it came from the app's ring.
func (s *Server) Submit(ch *serverkit.Channel, sub *proto.Submission) {
	a, ok := ch.Data.(*appState)
	if !ok {
		ch.CompleteErr(sub, syscall.EIO, false)
		return
	}
	if sub.Op == proto.OpCancel {
		// Disk operations are short and cannot be taken back from the
		// kernel half-done; a cancelled one completes on its own, so there
		// is nothing to do but say so.
		s.fail(a, sub, false, syscall.EALREADY, proto.ReasonNone, 0)
		return
	}
	if a.inflight >= s.opts.MaxInflight {
		s.fail(a, sub, false, syscall.EAGAIN, proto.ReasonTooManyInflight, uint32(s.opts.MaxInflight))
		return
	}
	switch sub.Op {
	case proto.OpRead, proto.OpWrite:
		s.submitData(a, sub)
	case proto.OpFsync:
		s.submitFsync(a, sub)
	case proto.OpOpen:
		s.submitOpen(a, sub)
	case proto.OpStat:
		s.submitStat(a, sub)
	case proto.OpReaddir:
		s.submitReaddir(a, sub)
	case proto.OpClose:
		s.submitClose(a, sub)
	default:
		s.fail(a, sub, false, syscall.EOPNOTSUPP, proto.ReasonNone, 0)
	}
}

// EndRound hands the round's ops to the kernel or the workers in one batch.
func (s *Server) EndRound() { s.back.flush() }

// fail answers sub with an error. If the entry names a buffer the server
// does not hold yet but may take, it is taken so that the completion hands
// it back: an honest app gets every buffer back, and a bad index is never
// echoed.
func (s *Server) fail(a *appState, sub *proto.Submission, held bool, errno syscall.Errno, reason proto.Reason, arg uint32) {
	s.stats.refused.Add(1)
	if !held && sub.Buf != proto.NoBuffer {
		_, err := a.ch.End.Loans.Take(sub.Buf, 0)
		held = err == nil
	}
	c := proto.Completion{UserData: sub.UserData, Result: proto.ErrResult(errno), Buf: proto.NoBuffer, Aux: proto.ReasonAux(reason, arg)}
	if held {
		c.Buf = sub.Buf
	}
	a.ch.Complete(c)
}

// answer is a successful completion of sub with result 0, handing back the
// buffer sub names if it is one the server may take.
func (s *Server) answer(a *appState, sub *proto.Submission) proto.Completion {
	c := proto.Completion{UserData: sub.UserData, Buf: proto.NoBuffer}
	if sub.Buf != proto.NoBuffer {
		if _, err := a.ch.End.Loans.Take(sub.Buf, 0); err == nil {
			c.Buf = sub.Buf
		}
	}
	return c
}

// take accepts the entry's buffer, length bytes of it. On failure the
// entry has been answered.
func (s *Server) take(a *appState, sub *proto.Submission, length uint32) ([]byte, bool) {
	if sub.Buf == proto.NoBuffer {
		s.fail(a, sub, false, syscall.EFAULT, proto.ReasonNoBuffer, 0)
		return nil, false
	}
	b, err := a.ch.End.Loans.Take(sub.Buf, length)
	if err != nil {
		s.fail(a, sub, false, syscall.EFAULT, proto.ReasonBadBuffer, 0)
		return nil, false
	}
	return b, true
}

// lookup finds the app's file for sub's handle; on failure sub has been
// answered.
func (s *Server) lookup(a *appState, sub *proto.Submission) (*file, bool) {
	f := a.files[sub.Handle]
	if f == nil {
		if a.stale[sub.Handle] {
			s.fail(a, sub, false, syscall.ESTALE, proto.ReasonStale, 0)
		} else {
			s.fail(a, sub, false, syscall.EBADF, proto.ReasonBadHandle, 0)
		}
		return nil, false
	}
	return f, true
}

// accept counts o in flight and hands it to the backend.
func (s *Server) accept(o *op) {
	o.app.inflight++
	if o.file != nil {
		o.file.refs++
	}
	s.back.start(o)
}

func (s *Server) submitData(a *appState, sub *proto.Submission) {
	write := sub.Op == proto.OpWrite
	allowed := proto.SubmitFlag(0)
	if write {
		allowed = proto.FlagAppend
	}
	if sub.Flags&^allowed != 0 {
		s.fail(a, sub, false, syscall.EINVAL, proto.ReasonBadFlags, 0)
		return
	}
	f, ok := s.lookup(a, sub)
	if !ok {
		return
	}
	switch {
	case f.typ == proto.TypeDir:
		s.fail(a, sub, false, syscall.EISDIR, proto.ReasonNone, 0)
		return
	case write && !f.flags.Writable():
		s.fail(a, sub, false, syscall.EBADF, proto.ReasonNotWritable, 0)
		return
	case !write && f.flags&proto.OpenRead == 0:
		s.fail(a, sub, false, syscall.EBADF, proto.ReasonNotReadable, 0)
		return
	case sub.Flags&proto.FlagAppend != 0 && f.flags&proto.OpenAppend == 0:
		s.fail(a, sub, false, syscall.EINVAL, proto.ReasonNotAppend, 0)
		return
	}
	if sub.Len == 0 && sub.Buf == proto.NoBuffer {
		a.ch.Complete(proto.Completion{UserData: sub.UserData, Buf: proto.NoBuffer})
		return
	}
	buf, ok := s.take(a, sub, sub.Len)
	if !ok {
		return
	}
	appendWrite := sub.Flags&proto.FlagAppend != 0
	if !appendWrite && sub.Offset > math.MaxInt64-uint64(sub.Len) {
		s.fail(a, sub, true, syscall.EINVAL, proto.ReasonBadOffset, 0)
		return
	}
	if f.flags&proto.OpenDirect != 0 {
		if reason, arg := directCheck(f, buf, sub.Offset, appendWrite); reason != proto.ReasonNone {
			s.fail(a, sub, true, syscall.EINVAL, reason, arg)
			return
		}
	}
	if len(buf) == 0 {
		a.ch.Complete(proto.Completion{UserData: sub.UserData, Buf: sub.Buf})
		return
	}
	o := s.newOp()
	*o = op{kind: opRead, app: a, sub: *sub, file: f, buf: buf, off: int64(sub.Offset)}
	if write {
		o.kind = opWrite
		if appendWrite {
			o.off = -1
		}
	}
	s.accept(o)
}

// directCheck enforces O_DIRECT's rules before the kernel does, so the app
// learns which rule it broke and what the alignment is, not just EINVAL.
func directCheck(f *file, buf []byte, off uint64, appendWrite bool) (proto.Reason, uint32) {
	if al := uint64(f.directAlign); al > 1 {
		if !appendWrite && off%al != 0 {
			return proto.ReasonDirectOffset, f.directAlign
		}
		if uint64(len(buf))%al != 0 {
			return proto.ReasonDirectLength, f.directAlign
		}
	}
	if al := uintptr(f.directMem); al > 1 && len(buf) > 0 && uintptr(unsafe.Pointer(&buf[0]))%al != 0 {
		return proto.ReasonDirectBuffer, f.directMem
	}
	return proto.ReasonNone, 0
}

func (s *Server) submitFsync(a *appState, sub *proto.Submission) {
	if sub.Flags != 0 || sub.Args[0]&^proto.FsyncDataOnly != 0 {
		s.fail(a, sub, false, syscall.EINVAL, proto.ReasonBadFlags, 0)
		return
	}
	f, ok := s.lookup(a, sub)
	if !ok {
		return
	}
	if sub.Buf != proto.NoBuffer {
		s.fail(a, sub, false, syscall.EINVAL, proto.ReasonBadBuffer, 0)
		return
	}
	s.accept(&op{kind: opFsync, app: a, sub: *sub, file: f, datasync: sub.Args[0]&proto.FsyncDataOnly != 0})
}

func (s *Server) submitStat(a *appState, sub *proto.Submission) {
	if sub.Flags&^proto.FlagPath != 0 {
		s.fail(a, sub, false, syscall.EINVAL, proto.ReasonBadFlags, 0)
		return
	}
	var f *file
	if sub.Flags&proto.FlagPath == 0 {
		var ok bool
		if f, ok = s.lookup(a, sub); !ok {
			return
		}
	}
	buf, ok := s.take(a, sub, sub.Len)
	if !ok {
		return
	}
	if len(buf) < proto.StatSize {
		s.fail(a, sub, true, syscall.EINVAL, proto.ReasonBufferSmall, proto.StatSize)
		return
	}
	o := &op{kind: opStat, app: a, sub: *sub, file: f, buf: buf}
	if f == nil {
		path, ok := s.pathOf(a, sub, buf)
		if !ok {
			return
		}
		o.kind, o.path = opStatPath, path
	}
	s.accept(o)
}

// pathOf reads and checks the path an entry carries in its buffer (held).
func (s *Server) pathOf(a *appState, sub *proto.Submission, buf []byte) (string, bool) {
	n := proto.PathLen(sub)
	if n > uint32(len(buf)) {
		s.fail(a, sub, true, syscall.EINVAL, proto.ReasonBadPath, 0)
		return "", false
	}
	path := string(buf[:n]) // one copy out of shared memory; checked below
	if reason, err := proto.CheckPath(path); err != nil {
		errno := syscall.EINVAL
		if reason == proto.ReasonDotDot || reason == proto.ReasonAbsolute {
			errno = syscall.EXDEV
		}
		if len(path) > proto.MaxPathLen {
			errno = syscall.ENAMETOOLONG
		}
		s.fail(a, sub, true, errno, reason, 0)
		return "", false
	}
	return path, true
}

func (s *Server) submitReaddir(a *appState, sub *proto.Submission) {
	if sub.Flags != 0 {
		s.fail(a, sub, false, syscall.EINVAL, proto.ReasonBadFlags, 0)
		return
	}
	f, ok := s.lookup(a, sub)
	if !ok {
		return
	}
	if f.typ != proto.TypeDir {
		s.fail(a, sub, false, syscall.ENOTDIR, proto.ReasonNone, 0)
		return
	}
	buf, ok := s.take(a, sub, sub.Len)
	if !ok {
		return
	}
	if sub.Offset > math.MaxInt64 {
		s.fail(a, sub, true, syscall.EINVAL, proto.ReasonBadOffset, 0)
		return
	}
	s.accept(&op{kind: opReaddir, app: a, sub: *sub, file: f, buf: buf, off: int64(sub.Offset)})
}

func (s *Server) submitOpen(a *appState, sub *proto.Submission) {
	flags, mode := proto.OpenFlag(sub.Args[0]), sub.Args[1]
	if sub.Flags != 0 || sub.Args[0] > math.MaxUint32 || flags.Check() != nil || mode > proto.MaxOpenMode {
		s.fail(a, sub, false, syscall.EINVAL, proto.ReasonBadFlags, 0)
		return
	}
	buf, ok := s.take(a, sub, sub.Len)
	if !ok {
		return
	}
	path, ok := s.pathOf(a, sub, buf)
	if !ok {
		return
	}
	// A replay of an open the dead incarnation finished: the same handle.
	if h, ok := a.openedBefore[sub.UserData]; ok {
		if f := a.files[h]; f != nil {
			delete(a.openedBefore, sub.UserData)
			a.ch.Complete(proto.Completion{UserData: sub.UserData, Result: int64(h), Buf: sub.Buf, Aux: openInfo(f)})
			return
		}
		if a.stale[h] {
			s.fail(a, sub, true, syscall.ESTALE, proto.ReasonStale, 0)
			return
		}
	}
	var under *writableDir
	if flags.Writable() {
		var ok bool
		if under, ok = a.writableFor(path); !ok {
			s.fail(a, sub, true, syscall.EACCES, proto.ReasonNotGranted, 0)
			return
		}
	}
	if len(a.files)+a.opening >= s.opts.MaxOpen {
		s.fail(a, sub, true, syscall.EMFILE, proto.ReasonTooManyOpen, uint32(s.opts.MaxOpen))
		return
	}
	if !s.admitOpen(a, sub) {
		return
	}
	o := &op{kind: opOpen, app: a, sub: *sub, buf: buf, path: path, under: under, flags: flags, mode: uint32(mode)}
	if r := a.intents[sub.UserData]; r != nil && r.path == path && r.flags == flags {
		// The dead incarnation started this very open and may have done
		// it: take over its intent record.
		delete(a.intents, sub.UserData)
		o.rec = r
		if flags&proto.OpenExclusive != 0 {
			o.exclSince = time.Unix(0, r.when)
		}
	} else {
		slot, ok := s.persist.alloc()
		if !ok {
			s.fail(a, sub, true, syscall.ENFILE, proto.ReasonTableFull, uint32(s.persist.slots))
			return
		}
		o.rec = &record{slot: slot, state: slotOpening, flags: flags, channel: a.id, openUD: sub.UserData,
			when: time.Now().UnixNano(), mode: uint32(mode), path: path}
		// The intent is on record before the open can happen: a restart
		// in between finds it and knows the open may have been done.
		s.persist.write(o.rec)
	}
	a.opening++
	s.accept(o)
}

func openInfo(f *file) uint64 {
	return proto.OpenInfo{Type: f.typ, DirectAlign: f.directAlign}.Encode()
}

func (s *Server) submitClose(a *appState, sub *proto.Submission) {
	if sub.Flags != 0 {
		s.fail(a, sub, false, syscall.EINVAL, proto.ReasonBadFlags, 0)
		return
	}
	f := a.files[sub.Handle]
	if f == nil {
		// A replayed close of a file the dead incarnation closed, or of
		// one that vanished across the restart: done.
		if a.closedBefore[sub.Handle] || a.stale[sub.Handle] {
			delete(a.closedBefore, sub.Handle)
			delete(a.stale, sub.Handle)
			a.ch.Complete(s.answer(a, sub))
			return
		}
		s.fail(a, sub, false, syscall.EBADF, proto.ReasonBadHandle, 0)
		return
	}
	// From now on the handle is gone for new requests. The tombstone goes
	// on record first, so that a restart before the completion reaches the
	// app lets the replayed close succeed.
	delete(a.files, f.handle)
	s.persist.setClosed(f.rec.slot, sub.UserData)
	c := s.answer(a, sub)
	if f.refs > 0 {
		f.closing = &c // completed when the last op on the file finishes
		a.inflight++
		return
	}
	s.closeFile(f)
	a.ch.Complete(c)
}
