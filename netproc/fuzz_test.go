package netproc_test

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc"
	"saturn/netproc/netproctest"
	"saturn/proto"
)

// fuzzPermit keeps the fuzzer on loopback and on ports the kernel picks, so
// that it never takes a port another test wants.
func fuzzPermit(op proto.Op, addr netip.AddrPort) error {
	if err := netproctest.LoopbackOnly(op, addr); err != nil {
		return err
	}
	if op == proto.OpListen && addr.Port() != 0 {
		return syscall.EACCES
	}
	return nil
}

// FuzzSubmissions feeds random entries from a hostile app to a live
// netproc while a well-behaved app keeps a connection going through the
// same loop. Each input is a run of 64-byte entries, taken as they come
// except that small handle values name sockets the hostile app really has
// (so that entries reach its sockets, not just EBADF), and that listen and
// connect entries sometimes get a real address in their buffer. After the
// run the hostile app goes away; netproc must hold nothing of it, and the
// other app's connection must still work.
func FuzzSubmissions(f *testing.F) {
	seed := func(subs ...proto.Submission) []byte {
		var b []byte
		for _, s := range subs {
			e := make([]byte, proto.SubmissionSize)
			s.Encode(e)
			b = append(b, e...)
		}
		return b
	}
	f.Add(seed(proto.Submission{Op: proto.OpListen, Buf: 1, Len: proto.SockAddrSize},
		proto.Submission{Op: proto.OpAccept, Handle: 0, Buf: proto.NoBuffer},
		proto.Submission{Op: proto.OpConnect, Buf: 2, Len: proto.AddrPairSize},
		proto.Submission{Op: proto.OpSend, Handle: 1, Buf: 3, Len: 10},
		proto.Submission{Op: proto.OpRecv, Handle: 1, Buf: 4, Len: 10},
		proto.Submission{Op: proto.OpCancel, Args: [3]uint64{4}},
		proto.Submission{Op: proto.OpClose, Handle: 0}))
	f.Add(seed(proto.Submission{Op: proto.OpConnect, Buf: 1, Len: proto.SockAddrSize, Args: [3]uint64{1}},
		proto.Submission{Op: proto.OpRecv, Handle: 0, Buf: proto.NoBuffer, Args: [3]uint64{uint64(proto.RecvPoll)}},
		proto.Submission{Op: proto.OpSetsockopt, Handle: 0, Args: [3]uint64{uint64(proto.OptLinger), 0}},
		proto.Submission{Op: proto.OpShutdown, Handle: 0, Args: [3]uint64{proto.ShutBoth}},
		proto.Submission{Op: proto.OpGetpeername, Handle: 0, Buf: 2, Len: 24}))
	f.Add(seed(proto.Submission{Op: proto.OpProvide, Buf: 1},
		proto.Submission{Op: proto.OpListen, Buf: 2, Len: proto.SockAddrSize},
		proto.Submission{Op: proto.OpAccept, Handle: 0, Flags: proto.FlagSelect, Buf: proto.NoBuffer, Len: proto.AddrPairSize},
		proto.Submission{Op: proto.OpConnect, Flags: proto.FlagSelect, Buf: proto.NoBuffer, Len: proto.AddrPairSize, Offset: 2},
		proto.Submission{Op: proto.OpRecv, Handle: 1, Flags: proto.FlagSelect, Buf: proto.NoBuffer, Len: 100},
		proto.Submission{Op: proto.OpProvide, Buf: 3},
		proto.Submission{Op: proto.OpProvide, Buf: proto.NoBuffer},
		proto.Submission{Op: proto.OpRecv, Handle: 1, Flags: proto.FlagSelect, Buf: 4, Len: 1 << 30}))
	f.Add([]byte{0xff, 0x00, 0x12})
	f.Add(make([]byte, 3*proto.SubmissionSize))

	// A short linger: the hostile app's listeners are kept, with whatever
	// waited on them, for a moment after it goes.
	srv := netproctest.Start(f, netproc.Options{Permit: fuzzPermit, Linger: time.Millisecond, Limits: netproc.Limits{Sockets: 16, Pending: 32}})
	good := newRawApp(f, srv, "good")
	ln, bound, c := good.listen("127.0.0.1:0", 0)
	if c.Result < 0 {
		f.Fatal(c.Err())
	}
	client, err := net.Dial("tcp", bound.String())
	if err != nil {
		f.Fatal(err)
	}
	defer client.Close()
	c, _ = good.call(proto.Submission{Op: proto.OpAccept, Handle: ln})
	goodConn := uint64(c.Result)
	if c.Result <= 0 {
		f.Fatal(c.Err())
	}
	round := 0

	f.Fuzz(func(t *testing.T, data []byte) {
		round++
		good.t = t // the good app's helpers report to this round
		bad := newRawApp(t, srv, "hostile")
		var handles []uint64
		var ids []uint64
		for len(data) >= proto.SubmissionSize && len(ids) < 64 {
			entry := data[:proto.SubmissionSize]
			data = data[proto.SubmissionSize:]
			sub, _ := proto.DecodeSubmission(entry)
			if sub.Handle < 8 && len(handles) > 0 {
				sub.Handle = handles[int(sub.Handle)%len(handles)]
			}
			if sub.Op == proto.OpCancel && sub.Args[0] < 64 && len(ids) > 0 {
				sub.Args[0] = ids[int(sub.Args[0])%len(ids)]
			}
			if sub.Buf < 8 {
				sub.Buf = bad.fuzzBuffer(sub, entry[2], bound)
			}
			// Send the entry's own bytes, with our rewrites, and only the
			// reserved field as the fuzzer wrote it.
			raw := make([]byte, proto.SubmissionSize)
			sub.Encode(raw)
			raw[2], raw[3] = entry[2]&1, 0 // a reserved byte, sometimes set
			ids = append(ids, bad.submitRaw(raw))
			// Collect what has completed, learning new handles.
			for _, id := range ids {
				if c, ok := bad.early[id]; ok && c.Result > 0 && (c.Result>>48) != 0 {
					handles = append(handles, uint64(c.Result))
				}
			}
			bad.drainInto()
		}
		// A nop behind the run: once it completes, netproc has been
		// through every entry. Then the app goes away.
		bad.wait(bad.submit(proto.Submission{Op: proto.OpNop}), 5*time.Second)
		srv.Drop(bad.desc.ID)
		var socks, orphans int
		testkit.Until(5*time.Second, func() bool {
			srv.Do(func() {
				socks = srv.Handler.Sockets("hostile")
				orphans = srv.Handler.Kept()
			})
			return socks == 0 && orphans == 0
		})
		if socks != 0 || orphans != 0 {
			t.Fatalf("round %d: after the hostile app left, netproc holds %d of its sockets and %d listeners", round, socks, orphans)
		}
		// The good app's connection still carries data both ways.
		msg := []byte{byte(round), 'o', 'k'}
		client.Write(msg)
		c, got := good.call(proto.Submission{Op: proto.OpRecv, Handle: goodConn, Buf: good.buf(nil), Len: 3})
		if c.Result != 3 || string(got[:3]) != string(msg) {
			t.Fatalf("round %d: the good app's recv: %d %v", round, c.Result, c.Err())
		}
		c, _ = good.call(proto.Submission{Op: proto.OpSend, Handle: goodConn, Buf: good.buf(msg), Len: 3})
		if c.Result != 3 {
			t.Fatalf("round %d: the good app's send: %v", round, c.Err())
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		back := make([]byte, 3)
		if _, err := io.ReadFull(client, back); err != nil || string(back) != string(msg) {
			t.Fatalf("round %d: the good app's peer read %q %v", round, back, err)
		}
	})
}

// fuzzBuffer picks the buffer of a fuzzed entry: none, a real one (for
// listen and connect, sometimes holding a loopback address), or an index
// out of range.
func (a *rawApp) fuzzBuffer(sub proto.Submission, choice byte, target netip.AddrPort) uint32 {
	switch choice % 4 {
	case 0:
		return proto.NoBuffer
	case 3:
		return uint32(a.end.Pool.Len()) + uint32(choice) // out of range
	}
	b, err := a.end.Pool.Alloc()
	if err != nil {
		return proto.NoBuffer
	}
	buf := a.end.Pool.Bytes(b)
	clear(buf[:64])
	if choice%4 == 1 {
		switch sub.Op {
		case proto.OpListen:
			proto.EncodeSockAddr(buf, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0))
		case proto.OpConnect:
			proto.EncodeSockAddr(buf, target)
		default:
			binary.LittleEndian.PutUint64(buf, uint64(choice))
		}
	}
	return b
}

// submitRaw publishes an already-encoded entry, giving it a fresh
// user_data, and lends its buffer if it names one of ours.
func (a *rawApp) submitRaw(raw []byte) uint64 {
	a.nextID++
	binary.LittleEndian.PutUint64(raw[24:], a.nextID)
	if b := binary.LittleEndian.Uint32(raw[4:]); int(b) < a.end.Pool.Len() {
		a.end.Pool.Lend(b)
	}
	a.reserve()
	copy(a.end.Submit.Slot(0), raw)
	a.end.Submit.Publish(1)
	return a.nextID
}
