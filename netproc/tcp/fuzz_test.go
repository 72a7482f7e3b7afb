package tcp

import (
	"testing"
	"time"

	"saturn/netproc/tcp/seqnum"
)

// FuzzStep drives two connections (one from a listener) with a byte
// string read as a program: deliver, drop, duplicate or reorder segments,
// forge segments near the windows, make application calls, advance time.
// This reaches every state, including simultaneous close, TIME-WAIT and
// the failure paths. After every step the invariants must hold (Check:
// snd.una <= snd.nxt, buffers within bounds, windows within free space,
// ordered range tables) and, unless forged segments were delivered, every
// byte read must be the byte sent there. Nothing may panic.
func FuzzStep(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 4, 200, 0, 1, 1, 5, 50, 6, 0, 1, 0, 7, 1, 9, 255})
	f.Add([]byte{0x81, 1, 0, 1, 0, 4, 10, 4, 10, 0, 2, 0, 9, 30, 0, 1, 6, 1, 1, 0, 6, 0})
	f.Add([]byte{2, 0, 9, 100, 0, 1, 0, 10, 0x14, 3, 1, 0, 0, 0, 5, 1, 0, 9, 200, 9, 200})
	f.Add([]byte{0x46, 1, 0, 1, 0, 4, 255, 4, 255, 3, 1, 0, 11, 0, 0, 0, 12, 1, 0, 0, 6, 0, 6, 1})
	f.Fuzz(runFuzzProg)
}

// runFuzzProg runs one FuzzStep program.
func runFuzzProg(t *testing.T, prog []byte) {
	if len(prog) > 4096 {
		return
	}
	at := func(k int) byte {
		if k < len(prog) {
			return prog[k]
		}
		return 0
	}
	// The first byte picks the configuration.
	c0 := at(0)
	var cfg [2]Config
	for i := range cfg {
		cfg[i] = Config{
			MSS: 100 + uint16(c0&3)*400, DisableSACK: c0&4 != 0, DisableTimestamps: c0&8 != 0,
			DisableWindowScale: c0&16 != 0, NoDelay: c0&32 != 0, Congestion: CCAlgorithm(1 + c0>>7),
			SynRetries: 3, Retries: 4, TimeWait: 5 * time.Second, KeepAlive: c0&64 != 0,
			KeepIdle: 3 * time.Second, KeepInterval: time.Second, KeepCount: 2,
		}
	}
	cookies := CookiesWhenFull
	if c0&0x40 != 0 {
		cookies = CookiesAlways
	}
	p := newPair(cfg, [2]int{3000, 70000}, [2]int{70000, 2500}, cookies)
	for pc := 1; pc < len(prog); pc += 2 {
		op, arg := prog[pc], at(pc+1)
		side := int(op>>7) & 1
		switch op & 15 {
		case 0, 1:
			p.deliver(side, int(arg)%4)
		case 2:
			if len(p.queue[side]) > 0 {
				p.queue[side] = p.queue[side][1:]
			}
		case 3:
			if len(p.queue[side]) > 0 {
				p.queue[side] = append(p.queue[side], p.queue[side][0])
			}
		case 4:
			if p.live[side] {
				p.send(side, int(arg)*13)
			}
		case 5:
			if p.live[side] {
				p.read(side, int(arg)*11+1)
			}
		case 6:
			if p.live[side] {
				p.step(side, Input{Kind: InShutdown})
			}
		case 7:
			if p.live[side] {
				p.step(side, Input{Kind: InClose})
			}
		case 8:
			if p.live[side] && arg < 32 {
				p.step(side, Input{Kind: InAbort})
			}
		case 9:
			p.advance(time.Duration(arg) * 20 * time.Millisecond)
		case 10, 11:
			if p.live[side] {
				seg := p.forge(side, prog[min(pc+1, len(prog)):])
				pc += 22
				p.injected = true
				p.receive(side, seg)
			}
		case 12:
			if p.live[side] {
				p.step(side, Input{Kind: InSetOption, Opt: Option(arg%6 + 1), Value: int64(arg) * int64(time.Second)})
			}
		case 13:
			if p.live[side] {
				// Take bytes through the views, as a zero-copy reader.
				a, b := p.conns[side].ReadableViews(p.bufs[side][1])
				n := min(int(arg), len(a)+len(b))
				taken := append(append([]byte(nil), a...), b...)[:n]
				if _, err := p.step(side, Input{Kind: InConsume, N: n}); err == nil {
					p.got[side] = append(p.got[side], taken...)
				}
			}
		default:
			p.settle()
		}
		if err := p.check(); err != nil {
			t.Fatalf("after op %d (%#x): %v", pc, op, err)
		}
	}
}

// FuzzListener feeds arbitrary segments to a listener under every cookie
// mode and checks any connection it creates.
func FuzzListener(f *testing.F) {
	f.Add(uint8(0), uint8(0x02), uint32(100), uint32(0), uint16(1000), uint16(1460), int8(7), true, true, uint32(5), uint32(0), 0)
	f.Add(uint8(1), uint8(0x10), uint32(101), uint32(77), uint16(1000), uint16(0), int8(-1), false, true, uint32(5), uint32(9), 10)
	f.Fuzz(func(t *testing.T, mode, flags uint8, seq, ack uint32, win, mss uint16, ws int8, sackOK, ts bool, tsval, tsecr uint32, n int) {
		l := NewListener(ListenerConfig{SendBuf: 4000, RecvBuf: 9000, Backlog: 1, Cookies: CookieMode(mode % 3)})
		var child Conn
		snd, rcv := make([]byte, 4000), make([]byte, 9000)
		tuple := Tuple{LocalPort: 80, RemotePort: 1234}
		now := Time(time.Hour)
		// A SYN first, so that cookies are in use, then the fuzzed segment.
		syn := Segment{Seq: 99, Flags: FlagSYN, Window: 1000, Options: NoOptions()}
		syn.Options.TS, syn.Options.TSVal = ts, 1
		var out Output
		l.Step(&ListenInput{Seg: syn, Tuple: tuple, HalfOpen: 1}, now, &child, Mem{Send: snd, Recv: rcv}, &out)
		seg := Segment{Seq: seqnum.Value(seq), Ack: seqnum.Value(ack), Flags: Flags(flags), Window: win, Options: NoOptions()}
		if len(out.Segments) > 0 && ack < 4 {
			// Aim at the cookie, give or take.
			seg.Ack = out.Segments[0].Seq + seqnum.Value(ack)
		}
		seg.Options.MSS, seg.Options.WScale, seg.Options.SACKPermitted = mss, ws, sackOK
		seg.Options.TS, seg.Options.TSVal, seg.Options.TSEcr = ts, tsval, tsecr
		if n < 0 || n > 5000 {
			n = 0
		}
		seg.Payload = make([]byte, n)
		out.Reset()
		res := l.Step(&ListenInput{Seg: seg, Tuple: tuple}, now, &child, Mem{Send: snd, Recv: rcv}, &out)
		if res == ListenNewConn {
			if err := child.Check(); err != nil {
				t.Fatal(err)
			}
			if s := child.State(); s != StateSynReceived && s != StateClosed && !s.synchronized() {
				t.Fatalf("child in %s", s)
			}
		}
	})
}
