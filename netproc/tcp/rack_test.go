package tcp

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"saturn/netproc/tcp/seqnum"
)

// txModel is the naive model of RACK's transmission log: one entry per
// outstanding byte.
type txModel struct {
	una  seqnum.Value
	sent []uint32 // per byte from una
	flag []uint8
}

// TestTxLogAgainstModel drives the transmission log with random sends,
// retransmissions, SACKs and cumulative ACKs, and compares it byte for
// byte with a naive model. While the window stays small enough for the
// table never to fill, they must agree exactly; with larger windows the
// table coarsens, and then it must still never claim a byte SACKed that
// was not, nor lose track of the order of its ranges.
func TestTxLogAgainstModel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window int
		exact  bool
		trials int
	}{{"small", 1200, true, 20}, {"large", 20000, false, 20}} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(tc.window)))
			for trial := 0; trial < tc.trials; trial++ {
				runTxTrial(t, r, tc.window, tc.exact, 2000)
			}
		})
	}
}

func runTxTrial(t *testing.T, r *rand.Rand, window int, exact bool, ops int) {
	t.Helper()
	var c Conn
	c.cfg.FastLossRecovery = true
	c.sack.ok = true
	c.snd.una = seqnum.Value(r.Uint32())
	c.snd.nxt = c.snd.una
	c.snd.mss = 100
	m := txModel{una: c.snd.una}
	var st Stats
	now := Time(time.Second)
	e := env{now: now, st: &st}
	for op := 0; op < ops; op++ {
		now = now.Add(time.Duration(1+r.IntN(3)) * time.Microsecond)
		e.now = now
		out := uint32(c.snd.una.Size(c.snd.nxt))
		switch k := r.IntN(10); {
		case k < 4 && int(out) < window: // new data
			n := uint32(1 + r.IntN(300))
			s := c.snd.nxt
			c.rackSent(&e, s, s.Add(seqnum.Size(n)))
			c.snd.nxt = s.Add(seqnum.Size(n))
			for i := uint32(0); i < n; i++ {
				m.sent = append(m.sent, usec(now))
				m.flag = append(m.flag, 0)
			}
		case k < 6 && out > 0: // retransmission of an unSACKed byte range
			a := uint32(r.IntN(int(out)))
			b := a + uint32(1+r.IntN(int(out-a)))
			c.rackSent(&e, c.snd.una.Add(seqnum.Size(a)), c.snd.una.Add(seqnum.Size(b)))
			for i := a; i < b; i++ {
				if m.flag[i]&txSACKed == 0 {
					m.sent[i] = usec(now)
					m.flag[i] = m.flag[i]&^txLost | txRetx
				}
			}
		case k < 8 && out > 0: // a SACK block
			a := uint32(r.IntN(int(out)))
			b := a + uint32(1+r.IntN(int(min(out-a, 400))))
			c.rackOnAck(&e, c.snd.una, []seqRange{{c.snd.una.Add(seqnum.Size(a)), c.snd.una.Add(seqnum.Size(b))}})
			for i := a; i < b; i++ {
				m.flag[i] = (m.flag[i] | txSACKed) &^ txLost
			}
		case k < 9 && out > 0: // a cumulative ACK
			n := uint32(1 + r.IntN(int(min(out, 500))))
			ack := c.snd.una.Add(seqnum.Size(n))
			c.rackOnAck(&e, ack, nil)
			c.snd.una = ack
			m.sent, m.flag = m.sent[n:], m.flag[n:]
			m.una = ack
		case out > 0: // loss marking by time, as RACK does it
			c.rack.valid = true
			c.rack.xmit, c.rack.endSeq, c.rack.rtt = usec(now), c.snd.nxt, uint32(r.IntN(20))
			c.rec.mode = modeSACK
			wnd := c.reoWnd()
			c.rackDetect(&e)
			c.rec.mode = modeOpen
			for i := range m.flag {
				if !exact {
					break // only the exact case follows loss marks
				}
				if m.flag[i]&(txSACKed|txLost) == 0 && usDur(usec(now)-m.sent[i]) >= usDur(c.rack.rtt)+wnd {
					m.flag[i] |= txLost
				}
			}
		}
		if err := checkTxLog(&c, &m, exact); err != "" {
			t.Fatalf("op %d: %s", op, err)
		}
	}
}

// checkTxLog compares the log with the model.
func checkTxLog(c *Conn, m *txModel, exact bool) string {
	l := &c.rack.log
	prev := c.snd.una
	covered := 0
	for i := 0; i < int(l.n); i++ {
		r := l.r[i]
		if r.start.LessThan(prev) || !r.start.LessThan(r.end) || r.end.GreaterThan(c.snd.nxt) {
			return "ranges out of order or outside [una, nxt)"
		}
		prev = r.end
		for s := r.start; s.LessThan(r.end); s++ {
			if !exact && s != r.start {
				s = r.end - 1 // the large case checks each range's ends only
			}
			j := m.una.Size(s)
			covered++
			if r.flags&txSACKed != 0 && m.flag[j]&txSACKed == 0 {
				return "a byte marked SACKed that was not"
			}
			if exact && (r.flags != m.flag[j] || r.sent != m.sent[j]) {
				return fmt.Sprintf("range %d [%d,%d) sent %d flags %b differs from the model at %d: sent %d flags %b",
					i, r.start-m.una, r.end-m.una, r.sent, r.flags, j, m.sent[j], m.flag[j])
			}
		}
	}
	if exact && covered != len(m.flag) {
		return "bytes not described"
	}
	return ""
}
