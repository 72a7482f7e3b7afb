package sim

import (
	"math/rand/v2"
	"time"

	"saturn/netproc/tcp"
)

// RandomScenario derives a scenario from seed: link impairments up to 20%
// loss, options, algorithms, buffer sizes and transfers of up to maxBytes
// in each direction.
func RandomScenario(seed uint64, maxBytes int) Scenario {
	r := rand.New(rand.NewPCG(seed, 0xc0ffee))
	pick := func(p float64) bool { return r.Float64() < p }
	dur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
	sc := Scenario{Seed: seed, Limit: 2 * time.Hour}
	sc.Link = LinkConfig{
		Loss:      []float64{0, 0.01, 0.05, 0.1, 0.2}[r.IntN(5)],
		Duplicate: []float64{0, 0.01, 0.05}[r.IntN(3)],
		Reorder:   []float64{0, 0.02, 0.1}[r.IntN(3)],
		ReorderBy: dur(time.Millisecond, 30*time.Millisecond),
		Delay:     dur(time.Millisecond, 60*time.Millisecond),
		Jitter:    dur(0, 3*time.Millisecond),
		Queue:     dur(20*time.Millisecond, 500*time.Millisecond),
	}
	if pick(0.7) {
		sc.Link.Bandwidth = []int64{50_000, 1_000_000, 100_000_000}[r.IntN(3)]
	}
	conf := func() tcp.Config {
		c := tcp.Config{
			MSS:                uint16(200 + r.IntN(1261)),
			DisableWindowScale: pick(0.2),
			DisableTimestamps:  pick(0.3),
			DisableSACK:        pick(0.3),
			NoDelay:            pick(0.5),
			Congestion:         []tcp.CCAlgorithm{tcp.CCReno, tcp.CCCubic}[r.IntN(2)],
			// Generous limits: a 20% loss rate must not time connections out.
			SynRetries: 12,
			Retries:    30,
			TimeWait:   2 * time.Minute,
		}
		if pick(0.2) {
			c.DelayedACK = -1
		}
		c.FastLossRecovery = pick(0.5)
		return c
	}
	sc.Client, sc.Server = conf(), conf()
	switch r.IntN(10) {
	case 0:
		sc.Cookies = tcp.CookiesAlways
	case 1:
		sc.Backlog = 1 // a second connection meets a full backlog
	}
	sc.Conns = 1 + r.IntN(2)
	sc.Simultaneous = pick(0.05)
	bytes := func() int {
		if pick(0.1) {
			return 0
		}
		return r.IntN(maxBytes + 1)
	}
	sc.ClientBytes, sc.ServerBytes = bytes(), bytes()
	buf := func() int { return []int{512, 2048, 8192, 65536, 262144}[r.IntN(5)] + r.IntN(100) }
	sc.ClientSndBuf, sc.ClientRcvBuf, sc.ServerSndBuf, sc.ServerRcvBuf = buf(), buf(), buf(), buf()
	sc.AppDelay = dur(0, 20*time.Millisecond)
	if pick(0.2) {
		sc.ReadChunk = 256 + r.IntN(4096)
		sc.AppDelay = dur(10*time.Millisecond, 200*time.Millisecond)
	}
	// Drawn last, so that the fields above are what they were before ECN.
	sc.Client.ECN, sc.Server.ECN = pick(0.3), pick(0.3)
	sc.Link.CE = []float64{0, 0.01, 0.1}[r.IntN(3)]
	// Drawn after ECN, for the same reason: window validation, and delay
	// spikes longer than the RTO, which make spurious timeouts (F-RTO).
	sc.Client.CwndValidation, sc.Server.CwndValidation = pick(0.5), pick(0.5)
	if pick(0.2) {
		sc.Link.Spike = []float64{0.005, 0.02}[r.IntN(2)]
		sc.Link.SpikeBy = dur(100*time.Millisecond, time.Second)
	}
	return sc
}
