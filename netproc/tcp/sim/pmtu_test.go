package sim

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"saturn/netproc/tcp"
)

// pmtuScenario is RandomScenario with a hop in the middle of the path that
// carries smaller packets than the ends' MSS allows, and that either
// reports it by ICMP (RFC 1191) or silently drops what does not fit (a
// black hole, left to RFC 4821's probing).
func pmtuScenario(seed uint64, maxBytes int, icmp bool) Scenario {
	sc := RandomScenario(seed, maxBytes)
	r := rand.New(rand.NewPCG(seed, 0x9e7))
	sc.Link.MTU = []int{576, 1000, 1280, 1400}[r.IntN(4)]
	sc.Link.ICMP = icmp
	if r.IntN(5) > 0 {
		sc.Client.MSS, sc.Server.MSS = 1460, 1460
	}
	return sc
}

// TestPathMTU runs random transfers in both directions through a hop of
// MTU 576 to 1400 between ends whose MSS is mostly 1460, with the
// impairments of TestRandomTransfers, once with the hop's ICMP delivered
// and once without: every byte must arrive and every connection close.
// The hop must have dropped packets (the path was too small) and the
// reaction must have been the expected one: ICMP reductions, or black
// holes found. 100 seeds of up to 32 KiB each way by default; -long runs
// 5,000 of up to 64 KiB (-seeds and -bytes as for TestRandomTransfers).
func TestPathMTU(t *testing.T) {
	n, bytes := scale{seeds: 100, short: 30, long: 5000, bytes: 32 << 10, longBytes: 64 << 10}.get()
	for _, icmp := range []bool{true, false} {
		name := "icmp"
		if !icmp {
			name = "blackhole"
		}
		t.Run(name, func(t *testing.T) {
			if *seedFlag != 0 {
				sc := pmtuScenario(*seedFlag, bytes, icmp)
				if *verbose {
					sc.Trace = func(s string) { t.Log(s) }
				}
				res, err := Run(sc)
				t.Logf("scenario %+v: elapsed %v, %d dropped by the hop, client %+v", sc, res.Elapsed, res.TooBig, res.Stats[0])
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var (
				tooBig, reductions, blackh  atomic.Int64
				probes, probeFails, ignored atomic.Int64
			)
			runSeeds(*firstFlag, n, func(seed uint64) {
				res, err := Run(pmtuScenario(seed, bytes, icmp))
				if err != nil {
					t.Errorf("seed %d: %v\n\treplay: go test ./netproc/tcp/sim -run 'TestPathMTU/%s$' -seed=%d -bytes=%d -v",
						seed, err, name, seed, bytes)
					return
				}
				tooBig.Add(int64(res.TooBig))
				for _, st := range res.Stats {
					reductions.Add(int64(st.PMTUReductions))
					blackh.Add(int64(st.PMTUBlackholes))
					probes.Add(int64(st.PMTUProbes))
					probeFails.Add(int64(st.PMTUProbeFailures))
					ignored.Add(int64(st.PMTUIgnored))
				}
			})
			t.Logf("%d seeds: %d packets too big for the hop; %d ICMP reductions (%d messages ignored), %d black holes, %d probes (%d failed)",
				n, tooBig.Load(), reductions.Load(), ignored.Load(), blackh.Load(), probes.Load(), probeFails.Load())
			if tooBig.Load() == 0 {
				t.Error("no packet was too big for the hop: the test tests nothing")
			}
			if icmp && reductions.Load() == 0 {
				t.Error("ICMP delivered, but no MSS reduction")
			}
			if !icmp && blackh.Load() == 0 {
				t.Error("no black hole found")
			}
		})
	}
}

// TestMTUProbingCostsNothing runs bulk transfers over paths with no
// smaller hop, clean and lossy, with path MTU probing on and off: the runs
// must be the same event for event (same time, same packets), since on a
// path that needs no discovery the black-hole search must never fire. A
// path that times out twice in a row on the same data would fire it; at
// these rates none does. -long runs 5 seeds of 8 MB at 0, 1, 5 and 10%
// loss, and logs the figures of docs/benchmarks.md ("Path MTU").
func TestMTUProbingCostsNothing(t *testing.T) {
	seeds, size, losses := uint64(2), 1<<20, []float64{0, 0.05}
	if *longFlag {
		seeds, size, losses = 5, 8<<20, []float64{0, 0.01, 0.05, 0.10}
	}
	for _, loss := range losses {
		var elapsed [2]time.Duration
		var timeouts [2]uint64
		for seed := uint64(1); seed <= seeds; seed++ {
			var res [2]Result
			for i, off := range []bool{false, true} {
				cfg := tcp.Config{MSS: 1460, NoDelay: true, FastLossRecovery: true, Retries: 30, TimeWait: 10 * time.Millisecond, DisableMTUProbing: off}
				sc := Scenario{Seed: seed, Limit: time.Hour,
					Link:   LinkConfig{Loss: loss, Delay: 5 * time.Millisecond, Bandwidth: 100_000_000, Queue: 50 * time.Millisecond},
					Client: cfg, Server: cfg, Conns: 1, ClientBytes: size,
					ClientSndBuf: 512 << 10, ClientRcvBuf: 512 << 10, ServerSndBuf: 512 << 10, ServerRcvBuf: 512 << 10}
				r, err := Run(sc)
				if err != nil {
					t.Fatalf("loss %g, seed %d, probing off %v: %v", loss, seed, off, err)
				}
				res[i] = r
				elapsed[i] += r.Elapsed
				timeouts[i] += r.Stats[0].Timeouts
			}
			if res[0].Elapsed != res[1].Elapsed || res[0].Packets != res[1].Packets || res[0].Stats[0].PMTUBlackholes != 0 {
				t.Errorf("loss %g, seed %d: with probing %v and %d packets (%d black holes), without %v and %d",
					loss, seed, res[0].Elapsed, res[0].Packets, res[0].Stats[0].PMTUBlackholes, res[1].Elapsed, res[1].Packets)
			}
		}
		t.Logf("loss %g%%: %d runs of %d MB: probing on %v, %d timeouts; off %v, %d timeouts",
			loss*100, seeds, size>>20, elapsed[0].Round(time.Millisecond), timeouts[0], elapsed[1].Round(time.Millisecond), timeouts[1])
	}
}
