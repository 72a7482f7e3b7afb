package ring

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Benchmarks between two processes. Each starts a child (see child_test.go),
// waits for it to attach, and times only the exchange. Run them with
// bench/ring.sh, which repeats them and prints medians and ratios.

func init() {
	childModes["floor"] = childFloor
	childModes["ring-echo"] = childRingEcho
	childModes["fd-echo"] = childFDEcho
	childModes["sink"] = childSink
	childModes["idle"] = childIdle
}

var benchGeometry = Geometry{SQEntrySize: 64, SQEntries: 1024, CQEntrySize: 32, CQEntries: 1024, BufferSize: 4096, BufferCount: 1}

// floorWord is a word in the pool, on its own page, for the ping-pong floor.
func floorWord(r *Region) *atomic.Uint64 { return word64(r.mem, int(r.lay.poolOffset)) }

// BenchmarkFloor is the floor under any shared-memory round trip: two
// processes bouncing one word, spinning. One op is one round trip.
func BenchmarkFloor(b *testing.B) {
	r := newRegion(b, benchGeometry)
	startChild(b, "floor", nil, r.File())
	w := floorWord(r)
	b.ResetTimer()
	for i := range uint64(b.N) {
		w.Store(2*i + 1)
		for w.Load() != 2*i+2 {
		}
	}
	b.StopTimer()
	w.Store(^uint64(0))
}

func childFloor() error {
	r, err := childRegion()
	if err != nil {
		return err
	}
	w := floorWord(r)
	ready()
	for {
		v := w.Load()
		if v == ^uint64(0) {
			return nil
		}
		if v%2 == 1 {
			w.Store(v + 1)
		}
	}
}

// BenchmarkRoundTrip is saturn's round trip: one submission to a server
// process, one completion back. spin: both sides poll; sleep: both sides
// sleep at once on an empty ring, so every entry costs a wake-up each way,
// on futex words (sleep-futex) or, as saturn's channels do, with the
// server's doorbell an eventfd and the app's a futex word (sleep-eventfd).
func BenchmarkRoundTrip(b *testing.B) {
	for _, mode := range []string{"spin", "sleep-futex", "sleep-eventfd"} {
		b.Run(mode, func(b *testing.B) {
			r := newRegion(b, benchGeometry)
			policy := WaitPolicy{Spin: -1}
			var bells Bells
			files := []*os.File{r.File()}
			if mode != "spin" {
				policy = WaitPolicy{}
			}
			if mode == "sleep-eventfd" {
				s, _ := NewEventDoorbell()
				defer s.Close()
				bells = Bells{Server: s}
				files = append(files, s.File())
			}
			startChild(b, "ring-echo", []string{"RING_MODE=" + mode}, files...)
			app, err := r.App(bells)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				app.Submit.Reserve(1)
				binary.LittleEndian.PutUint64(app.Submit.Slot(0)[8:], uint64(i))
				app.Submit.Publish(1)
				n, err := app.Complete.Wait(policy, time.Time{})
				for n == 0 && err == nil {
					n, err = app.Complete.Wait(policy, time.Time{})
				}
				if err != nil || n != 1 {
					b.Fatalf("wait: %d, %v", n, err)
				}
				app.Complete.Release(1)
			}
			b.StopTimer()
			app.Submit.Reserve(1)
			app.Submit.Slot(0)[0] = 1 // stop
			app.Submit.Publish(1)
		})
	}
}

func childRingEcho() error {
	r, err := childRegion()
	if err != nil {
		return err
	}
	mode := os.Getenv("RING_MODE")
	policy := WaitPolicy{Spin: -1}
	var bells Bells
	if mode != "spin" {
		policy = WaitPolicy{}
	}
	if mode == "sleep-eventfd" {
		s, err := EventDoorbellFromFile(os.NewFile(4, "server-bell"))
		if err != nil {
			return err
		}
		bells = Bells{Server: s}
	}
	srv, err := r.Server(bells)
	if err != nil {
		return err
	}
	ready()
	for {
		n, err := srv.Submit.Wait(policy, time.Time{})
		if err != nil {
			return err
		}
		for i := range n {
			in := srv.Submit.Slot(i)
			if in[0] == 1 {
				return nil
			}
			for {
				if k, _ := srv.Complete.Reserve(1); k == 1 {
					break
				}
			}
			copy(srv.Complete.Slot(0)[:8], in[8:16])
			srv.Complete.Publish(1)
		}
		srv.Submit.Release(n)
	}
}

// BenchmarkUnixSocketRoundTrip and BenchmarkPipeRoundTrip are the peers: the
// same 64-byte request and answer between two processes through the kernel.
func BenchmarkUnixSocketRoundTrip(b *testing.B) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "mine"), os.NewFile(uintptr(fds[1]), "theirs")
	defer mine.Close()
	fdRoundTrips(b, mine, mine, theirs, theirs)
}

func BenchmarkPipeRoundTrip(b *testing.B) {
	toChild, childIn, err := pipePair()
	if err != nil {
		b.Fatal(err)
	}
	childOut, fromChild, err := pipePair()
	if err != nil {
		b.Fatal(err)
	}
	// pipePair returns (write end, read end) of one pipe.
	defer toChild.Close()
	defer fromChild.Close()
	fdRoundTrips(b, fromChild, toChild, childIn, childOut)
}

// pipePair makes a pipe and returns its write end and read end.
func pipePair() (w, r *os.File, err error) {
	r, w, err = os.Pipe()
	return w, r, err
}

func fdRoundTrips(b *testing.B, rd, wr, childRd, childWr *os.File) {
	r := newRegion(b, benchGeometry) // unused, but the child expects descriptor 3
	startChild(b, "fd-echo", nil, r.File(), childRd, childWr)
	childRd.Close()
	if childWr != childRd {
		childWr.Close()
	}
	var msg [64]byte
	b.ResetTimer()
	for range b.N {
		if _, err := wr.Write(msg[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rd, msg[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func childFDEcho() error {
	rd, wr := os.NewFile(4, "in"), os.NewFile(5, "out")
	ready()
	var msg [64]byte
	for {
		if _, err := io.ReadFull(rd, msg[:]); err != nil {
			return nil // the parent is done
		}
		if _, err := wr.Write(msg[:]); err != nil {
			return err
		}
	}
}

// BenchmarkThroughput pushes 64-byte entries one way to a child that
// consumes them, at several batch sizes. One op is one entry.
func BenchmarkThroughput(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			r := newRegion(b, benchGeometry)
			startChild(b, "sink", []string{"RING_TOTAL=" + strconv.Itoa(b.N)}, r.File())
			app, err := r.App(Bells{})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				n, err := app.Submit.Reserve(min(batch, b.N-sent))
				if err != nil {
					b.Fatal(err)
				}
				for i := range n {
					binary.LittleEndian.PutUint64(app.Submit.Slot(i), uint64(sent+i))
				}
				app.Submit.Publish(n)
				sent += n
			}
			if _, err := app.Complete.Wait(WaitPolicy{Spin: -1}, time.Time{}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mentries/s")
		})
	}
}

func childSink() error {
	total := envInt("RING_TOTAL", 0)
	_, srv, err := childServer()
	if err != nil {
		return err
	}
	ready()
	var sum uint64
	for got := 0; got < total; {
		n, err := srv.Submit.Wait(WaitPolicy{Spin: -1}, time.Time{})
		if err != nil {
			return err
		}
		for i := range n {
			sum += binary.LittleEndian.Uint64(srv.Submit.Slot(i))
		}
		srv.Submit.Release(n)
		got += n
	}
	if want := uint64(total) * uint64(total-1) / 2; sum != want {
		return fmt.Errorf("sum of entries %d, want %d", sum, want)
	}
	srv.Complete.Reserve(1)
	return srv.Complete.Publish(1)
}

// BenchmarkIdleChannel measures the CPU an idle channel costs: a child holds
// both ends, a server waiting for submissions and an app waiting for
// completions, with the default wait policy, and nothing arrives for 10 s.
// One op is one 10 s window; the metric is the percentage of one core.
func BenchmarkIdleChannel(b *testing.B) {
	r := newRegion(b, benchGeometry)
	c := startChild(b, "idle", nil, r.File())
	for range b.N {
		before := cpuTime(b, c.cmd.Process.Pid)
		start := time.Now()
		time.Sleep(10 * time.Second)
		used := cpuTime(b, c.cmd.Process.Pid) - before
		b.ReportMetric(100*used.Seconds()/time.Since(start).Seconds(), "cpu-%")
	}
}

func childIdle() error {
	r, srv, err := childServer()
	if err != nil {
		return err
	}
	app, err := r.App(Bells{})
	if err != nil {
		return err
	}
	ready()
	errc := make(chan error, 2)
	go func() { _, err := srv.Submit.Wait(WaitPolicy{Spin: DefaultSpin}, time.Time{}); errc <- err }()
	go func() { _, err := app.Complete.Wait(WaitPolicy{Spin: DefaultSpin}, time.Time{}); errc <- err }()
	return <-errc
}

// cpuTime is the CPU time all of a process's threads have used, from the
// scheduler's nanosecond accounting (/proc/PID/task/*/schedstat).
func cpuTime(b *testing.B, pid int) time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
		total += time.Duration(ns)
	}
	return total
}
