package tcp

import (
	"bytes"
	"fmt"
	"time"

	"saturn/netproc/header"
	"saturn/netproc/tcp/seqnum"
)

// pair is two connections wired back to back through explicit queues, for
// tests that want to control every delivery. Side 0 opens actively; side 1
// is created by a listener.
type pair struct {
	now      Time
	conns    [2]Conn
	live     [2]bool
	bufs     [2][2][]byte // [side][send, recv]
	queue    [2][]Segment // segments in flight towards side i
	timer    [2]Time
	l        Listener
	stats    Stats
	sent     [2][]byte // what each application queued
	got      [2][]byte // what each application read
	injected bool      // forged segments were delivered: data may differ
	tuple    [2]Tuple
}

func newPair(cfg [2]Config, snd, rcv [2]int, cookies CookieMode) *pair {
	p := &pair{now: Time(time.Second)}
	for i := range 2 {
		p.bufs[i][0] = make([]byte, snd[i])
		p.bufs[i][1] = make([]byte, rcv[i])
	}
	p.tuple[0] = Tuple{LocalPort: 40000, RemotePort: 80}
	p.tuple[1] = Tuple{LocalPort: 80, RemotePort: 40000}
	p.l = NewListener(ListenerConfig{Conn: cfg[1], SendBuf: uint32(snd[1]), RecvBuf: uint32(rcv[1]), Cookies: cookies})
	p.live[0] = true
	p.step(0, Input{Kind: InConnect, Connect: ConnectParams{Tuple: p.tuple[0], ISS: 1000, Config: cfg[0]}})
	return p
}

func (p *pair) mem(i int) Mem {
	return Mem{Send: p.bufs[i][0], Recv: p.bufs[i][1], Stats: &p.stats}
}

// step runs an input on side i and queues its output for the other side.
func (p *pair) step(i int, in Input) (Output, error) {
	var out Output
	err := p.conns[i].Step(in, p.now, p.mem(i), &out)
	p.collect(i, &out)
	return out, err
}

func (p *pair) collect(i int, out *Output) {
	for _, s := range out.Segments {
		s.Payload = s.AppendPayload(nil)
		s.Payload2 = nil
		p.queue[1-i] = append(p.queue[1-i], s)
	}
	p.timer[i] = out.Timer
}

// deliver hands the k-th queued segment to side i, through the listener
// when side 1 has no connection yet.
func (p *pair) deliver(i, k int) {
	if k >= len(p.queue[i]) {
		return
	}
	seg := p.queue[i][k]
	p.queue[i] = append(p.queue[i][:k], p.queue[i][k+1:]...)
	p.receive(i, seg)
}

func (p *pair) receive(i int, seg Segment) {
	if p.live[i] {
		out, _ := p.step(i, Input{Kind: InSegment, Seg: seg})
		if !out.Reuse {
			return
		}
		p.live[i] = false
	}
	if i == 1 {
		var out Output
		var child Conn
		in := ListenInput{Seg: seg, Tuple: p.tuple[1]}
		if p.l.Step(&in, p.now, &child, p.mem(1), &out) == ListenNewConn {
			p.conns[1] = child
			p.live[1] = true
			p.collect(1, &out)
			return
		}
		p.collect(1, &out)
		return
	}
	if r, ok := ResetFor(&seg); ok {
		p.queue[1-i] = append(p.queue[1-i], r)
	}
}

// advance moves the clock by d, firing due timers.
func (p *pair) advance(d time.Duration) {
	target := p.now.Add(d)
	for n := 0; n < 100; n++ {
		i := -1
		for j := range 2 {
			if p.live[j] && p.timer[j] != 0 && p.timer[j] <= target && (i < 0 || p.timer[j] < p.timer[i]) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		p.now = max(p.now, p.timer[i])
		p.step(i, Input{Kind: InTimer})
	}
	p.now = target
}

// check verifies both connections' invariants and, when no forged segment
// was delivered, that every byte read is the byte the peer sent there.
func (p *pair) check() error {
	for i := range 2 {
		if err := p.conns[i].Check(); err != nil {
			return fmt.Errorf("side %d: %w", i, err)
		}
		c := &p.conns[i]
		if c.state != StateClosed && c.snd.una.LessThan(c.snd.iss) {
			return fmt.Errorf("side %d: snd.una before iss", i)
		}
		if !p.injected {
			got, sent := p.got[i], p.sent[1-i]
			if len(got) > len(sent) || !bytes.Equal(got, sent[:len(got)]) {
				return fmt.Errorf("side %d read %d bytes that differ from the %d sent", i, len(got), len(sent))
			}
		}
	}
	return nil
}

// run delivers everything in flight and fires timers until both sides are
// quiet, or gives up after a bound.
func (p *pair) settle() {
	for n := 0; n < 10000; n++ {
		switch {
		case len(p.queue[0]) > 0:
			p.deliver(0, 0)
		case len(p.queue[1]) > 0:
			p.deliver(1, 0)
		default:
			return
		}
	}
}

// send queues n pattern bytes on side i.
func (p *pair) send(i, n int) {
	data := make([]byte, n)
	for k := range data {
		data[k] = byte(len(p.sent[i]) + k*7 + i)
	}
	out, err := p.step(i, Input{Kind: InSend, Data: data})
	if err == nil {
		p.sent[i] = append(p.sent[i], data[:out.N]...)
	}
}

// read reads up to n bytes on side i.
func (p *pair) read(i, n int) {
	buf := make([]byte, n)
	out, _ := p.step(i, Input{Kind: InRead, Data: buf})
	p.got[i] = append(p.got[i], buf[:out.N]...)
}

// forge builds a segment aimed near side i's windows from fuzz bytes.
func (p *pair) forge(i int, b []byte) Segment {
	at := func(k int) byte {
		if k < len(b) {
			return b[k]
		}
		return 0
	}
	c := &p.conns[i]
	seg := Segment{Options: NoOptions()}
	seg.Flags = Flags(at(0))
	seg.Seq = c.rcv.nxt.Add(seqnum.Size(int32(int8(at(1))) * int32(at(2)+1)))
	seg.Ack = c.snd.una.Add(seqnum.Size(int32(int8(at(3))) * int32(at(4)+1)))
	seg.Window = uint16(at(5)) << (at(6) % 9)
	if at(7)&1 != 0 {
		seg.Options.TS = true
		seg.Options.TSVal = c.ts.recent + uint32(int8(at(8)))
		seg.Options.TSEcr = c.tsNow(p.now) - uint32(at(9))
	}
	if at(7)&2 != 0 {
		seg.Options.NumSACK = at(10) % 5
		for k := 0; k < int(seg.Options.NumSACK); k++ {
			s := uint32(c.snd.una) + uint32(int8(at(11+k)))*100
			seg.Options.SACK[k] = header.SACKBlock{Start: s, End: s + uint32(at(15+k))*10}
		}
	}
	if at(7)&4 != 0 {
		seg.Options.MSS = uint16(at(19)) * 8
		seg.Options.WScale = int8(at(20) % 16)
		seg.Options.SACKPermitted = at(20)&16 != 0
	}
	seg.Payload = make([]byte, int(at(21))*int(at(22)%8))
	return seg
}
