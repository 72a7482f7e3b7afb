package sim

import (
	"testing"
	"time"

	"saturn/netproc/tcp"
)

// bbrBulk runs one bulk transfer of mb MiB over a path of the given loss
// rate, 10 ms each way and 100 Mbit/s with a queue of 20 ms, and returns
// its goodput in Mbit/s.
func bbrBulk(t *testing.T, cc tcp.CCAlgorithm, loss float64, seed uint64, mb int) (float64, Result) {
	t.Helper()
	cfg := tcp.Config{MSS: 1460, NoDelay: true, FastLossRecovery: true, CwndValidation: true, Congestion: cc,
		Retries: 30, TimeWait: 10 * time.Millisecond}
	sc := Scenario{Seed: seed, Limit: time.Hour,
		Link:   LinkConfig{Loss: loss, Delay: 10 * time.Millisecond, Bandwidth: 12_500_000, Queue: 20 * time.Millisecond},
		Client: cfg, Server: cfg, Conns: 1, ClientBytes: mb << 20,
		ClientSndBuf: 4 << 20, ClientRcvBuf: 4 << 20, ServerSndBuf: 4 << 20, ServerRcvBuf: 4 << 20}
	res, err := Run(sc)
	if err != nil {
		t.Fatalf("%v at %.0f%% loss, seed %d: %v", cc, loss*100, seed, err)
	}
	return float64(mb<<20) * 8 / res.Elapsed.Seconds() / 1e6, res
}

// TestBBRAgainstCUBICOnLoss compares BBR's goodput with CUBIC's over a
// path that drops 1% and 5% of its packets at random in each direction:
// CUBIC reads every loss as congestion and keeps its window small, BBR
// keeps sending at the bandwidth it measures (draft, 1 and 4.2.3.4).
// 4 MiB over 100 Mbit/s, 20 ms round trip, a queue of 20 ms.
func TestBBRAgainstCUBICOnLoss(t *testing.T) {
	for _, loss := range []float64{0.01, 0.05} {
		cubic, cres := bbrBulk(t, tcp.CCCubic, loss, 1, 4)
		bbr, bres := bbrBulk(t, tcp.CCBBR, loss, 1, 4)
		t.Logf("%.0f%% loss: cubic %.1f Mbit/s (%d timeouts, %d retransmissions), bbr %.1f Mbit/s (%d timeouts, %d retransmissions): %.1fx",
			loss*100, cubic, cres.Stats[0].Timeouts, cres.Stats[0].RetransSegs, bbr, bres.Stats[0].Timeouts, bres.Stats[0].RetransSegs, bbr/cubic)
		if bbr < 2*cubic {
			t.Errorf("%.0f%% loss: bbr %.1f Mbit/s, want at least twice cubic's %.1f", loss*100, bbr, cubic)
		}
	}
}

// TestBBRRandomTransfers runs the random scenarios of TestRandomTransfers
// (loss up to 20%, duplication, reordering, delay spikes, rate limits,
// SACK, timestamps and window scaling on or off) with BBR at both ends:
// every byte arrives, in order, and every connection closes. It runs 150
// seeds of up to 16 KiB each way (50 with -short; -long: 3,000 of up to
// 64 KiB; -seeds, -first and -bytes as for TestRandomTransfers), and a
// seed replays with -seed.
func TestBBRRandomTransfers(t *testing.T) {
	n, bytes := scale{seeds: 150, short: 50, long: 3000, bytes: 16 << 10, longBytes: 64 << 10}.get()
	bbrScenario := func(seed uint64) Scenario {
		sc := RandomScenario(seed, bytes)
		sc.Client.Congestion, sc.Server.Congestion = tcp.CCBBR, tcp.CCBBR
		return sc
	}
	if *seedFlag != 0 {
		if _, err := Run(bbrScenario(*seedFlag)); err != nil {
			t.Fatalf("seed %d: %v", *seedFlag, err)
		}
		return
	}
	runSeeds(*firstFlag, n, func(seed uint64) {
		if _, err := Run(bbrScenario(seed)); err != nil {
			t.Errorf("seed %d: %v\n\treplay: go test ./netproc/tcp/sim -run 'TestBBRRandomTransfers$' -seed=%d -bytes=%d -v", seed, err, seed, bytes)
		}
	})
}

// TestBBRDeterministic checks that a BBR run replays exactly: the model
// is integer arithmetic, so the same seed gives the same events.
func TestBBRDeterministic(t *testing.T) {
	_, a := bbrBulk(t, tcp.CCBBR, 0.05, 7, 1)
	_, b := bbrBulk(t, tcp.CCBBR, 0.05, 7, 1)
	if a.Elapsed != b.Elapsed || a.Events != b.Events || a.Stats != b.Stats {
		t.Fatalf("two runs of one seed differ: %v/%d and %v/%d", a.Elapsed, a.Events, b.Elapsed, b.Events)
	}
}
