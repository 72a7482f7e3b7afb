package ring

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

var crossEntries = flag.Int64("ring.entries", 0, "entries for TestCrossProcess (default 1e8, or 2e6 under -race or -short)")

func init() {
	childModes["verify-echo"] = childVerifyEcho
	childModes["pool-stress"] = childPoolStress
}

func mix(x uint64) uint64 { // splitmix64's finaliser
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// fillSubmission writes entry seq's deterministic contents into slot.
func fillSubmission(slot []byte, seq uint64) {
	binary.LittleEndian.PutUint64(slot, seq)
	for k := 1; k < 8; k++ {
		binary.LittleEndian.PutUint64(slot[8*k:], mix(seq*8+uint64(k)))
	}
}

// submissionHash is what both sides fold into their running checksums for
// entry seq.
func submissionHash(seq uint64) uint64 {
	h := seq
	for k := 1; k < 8; k++ {
		h = mix(h ^ mix(seq*8+uint64(k)))
	}
	return h
}

func crossTotal() uint64 {
	switch {
	case *crossEntries > 0:
		return uint64(*crossEntries)
	case raceEnabled || testing.Short():
		return 2_000_000
	}
	return 100_000_000
}

// TestCrossProcess pushes entries through a submission ring to a child
// process and back through a completion ring, with random batch sizes on
// both sides. The child checks every entry's order and contents and keeps a
// running checksum, which it returns in every completion; the parent checks
// each completion's order and the checksum it carries.
func TestCrossProcess(t *testing.T) {
	total := crossTotal()
	seed := uint64(time.Now().UnixNano())
	t.Logf("entries %d, seed %d", total, seed)
	r := newRegion(t, Geometry{SQEntrySize: 64, SQEntries: 256, CQEntrySize: 32, CQEntries: 256})
	c := startChild(t, "verify-echo", []string{
		"RING_TOTAL=" + strconv.FormatUint(total, 10),
		"RING_SEED=" + strconv.FormatUint(seed+1, 10),
	}, r.File())
	app, err := r.App(Bells{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	var sent, received, sum uint64
	policy := WaitPolicy{Spin: DefaultSpin}
	start := time.Now()
	for received < total {
		pushed := 0
		if sent < total {
			n, err := app.Submit.Reserve(int(min(uint64(1+rng.IntN(64)), total-sent)))
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				fillSubmission(app.Submit.Slot(i), sent+uint64(i))
			}
			if err := app.Submit.Publish(n); err != nil {
				t.Fatal(err)
			}
			sent += uint64(n)
			pushed = n
		}
		n, err := app.Complete.Peek(1 + rng.IntN(64))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && pushed == 0 {
			if _, err := app.Complete.Wait(policy, time.Now().Add(time.Minute)); err != nil {
				t.Fatalf("waiting for completion %d: %v", received, err)
			}
			continue
		}
		for i := range n {
			slot := app.Complete.Slot(i)
			seq := binary.LittleEndian.Uint64(slot)
			if seq != received {
				t.Fatalf("completion %d arrived as %d", received, seq)
			}
			sum = mix(sum ^ submissionHash(seq))
			if got := binary.LittleEndian.Uint64(slot[8:]); got != sum {
				t.Fatalf("completion %d: child's checksum %x, ours %x", seq, got, sum)
			}
			if binary.LittleEndian.Uint64(slot[16:]) != mix(seq) || binary.LittleEndian.Uint64(slot[24:]) != ^seq {
				t.Fatalf("completion %d: payload corrupt", seq)
			}
			received++
		}
		app.Complete.Release(n)
	}
	elapsed := time.Since(start)
	if line := c.line(t); line != fmt.Sprintf("done %x", sum) {
		t.Fatalf("child ended with %q, parent's checksum %x", line, sum)
	}
	c.wait(t)
	t.Logf("%d entries each way in %v (%.1f M round trips/s)", total, elapsed, float64(total)/elapsed.Seconds()/1e6)
}

func childVerifyEcho() error {
	total := uint64(envInt("RING_TOTAL", 0))
	seed, _ := strconv.ParseUint(os.Getenv("RING_SEED"), 10, 64)
	_, srv, err := childServer()
	if err != nil {
		return err
	}
	ready()
	rng := rand.New(rand.NewPCG(seed, 0))
	policy := WaitPolicy{Spin: DefaultSpin}
	var expect, sum uint64
	var want [64]byte
	for expect < total {
		n, err := srv.Submit.Wait(policy, time.Now().Add(time.Minute))
		if err != nil {
			return fmt.Errorf("waiting for entry %d: %w", expect, err)
		}
		n = min(n, 1+rng.IntN(64))
		// Answer in random batches, each no larger than the free room.
		for done := 0; done < n; {
			k, err := srv.Complete.Reserve(n - done)
			if err != nil {
				return err
			}
			if k == 0 {
				time.Sleep(time.Microsecond) // the app is behind; it drains soon
				continue
			}
			for i := range k {
				slot := srv.Submit.Slot(done + i)
				fillSubmission(want[:], expect)
				if string(slot) != string(want[:]) {
					return fmt.Errorf("entry %d arrived as %x", expect, slot[:8])
				}
				sum = mix(sum ^ submissionHash(expect))
				out := srv.Complete.Slot(i)
				binary.LittleEndian.PutUint64(out, expect)
				binary.LittleEndian.PutUint64(out[8:], sum)
				binary.LittleEndian.PutUint64(out[16:], mix(expect))
				binary.LittleEndian.PutUint64(out[24:], ^expect)
				expect++
			}
			if err := srv.Complete.Publish(k); err != nil {
				return err
			}
			done += k
		}
		srv.Submit.Release(n)
	}
	fmt.Printf("done %x\n", sum)
	return nil
}

// fillPattern writes seq's pattern into b; checkPattern verifies it.
func fillPattern(b []byte, seq uint64) {
	for i := range b {
		if i%8 == 0 {
			seq = mix(seq)
		}
		b[i] = byte(seq >> (8 * (i % 8)))
	}
}

func checkPattern(b []byte, seq uint64) bool {
	for i := range b {
		if i%8 == 0 {
			seq = mix(seq)
		}
		if b[i] != byte(seq>>(8*(i%8))) {
			return false
		}
	}
	return true
}

// TestCrossProcessPool lends buffers to a child that checks what the app
// wrote, tries to misuse them (every attempt must be refused), writes its
// answer and hands them back; the app checks every answer.
func TestCrossProcessPool(t *testing.T) {
	rounds := 200_000
	if raceEnabled || testing.Short() {
		rounds = 20_000
	}
	g := Geometry{SQEntrySize: 64, SQEntries: 64, CQEntrySize: 32, CQEntries: 64, BufferSize: 1024, BufferCount: 48}
	r := newRegion(t, g)
	c := startChild(t, "pool-stress", []string{"RING_TOTAL=" + strconv.Itoa(rounds)}, r.File())
	app, err := r.App(Bells{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	inFlight := map[uint32]uint64{} // buffer → seq
	var seq uint64
	var done int
	for done < rounds {
		// Lend a random number of buffers.
		for k := rng.IntN(8); k > 0 && int(seq) < rounds; k-- {
			i, err := app.Pool.Alloc()
			if errors.Is(err, ErrNoBuffers) {
				break
			}
			n, err := app.Submit.Reserve(1)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				app.Pool.Free(i)
				break
			}
			length := 1 + rng.IntN(int(g.BufferSize))
			fillPattern(app.Pool.Bytes(i)[:length], seq)
			if err := app.Pool.Lend(i); err != nil {
				t.Fatal(err)
			}
			slot := app.Submit.Slot(0)
			binary.LittleEndian.PutUint32(slot, i)
			binary.LittleEndian.PutUint32(slot[4:], uint32(length))
			binary.LittleEndian.PutUint64(slot[8:], seq)
			inFlight[i] = seq
			seq++
			app.Submit.Publish(1)
		}
		n, err := app.Complete.Peek(64)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && app.Pool.FreeCount() == 0 || n == 0 && int(seq) == rounds {
			if _, err := app.Complete.Wait(WaitPolicy{Spin: DefaultSpin}, time.Now().Add(time.Minute)); err != nil {
				t.Fatalf("waiting with %d in flight: %v", len(inFlight), err)
			}
			continue
		}
		for k := range n {
			slot := app.Complete.Slot(k)
			i := binary.LittleEndian.Uint32(slot)
			length := binary.LittleEndian.Uint32(slot[4:])
			s := binary.LittleEndian.Uint64(slot[8:])
			if want, ok := inFlight[i]; !ok || want != s {
				t.Fatalf("completion returns buffer %d for seq %d; lent for %d (%v)", i, s, want, ok)
			}
			b, err := app.Pool.Reclaim(i, length)
			if err != nil {
				t.Fatal(err)
			}
			if !checkPattern(b, ^s) {
				t.Fatalf("buffer %d (seq %d): the server's answer is corrupt", i, s)
			}
			delete(inFlight, i)
			if err := app.Pool.Free(i); err != nil {
				t.Fatal(err)
			}
			done++
		}
		app.Complete.Release(n)
	}
	if line := c.line(t); line != "done" {
		t.Fatalf("child said %q", line)
	}
	c.wait(t)
	if app.Pool.FreeCount() != int(g.BufferCount) {
		t.Fatalf("%d of %d buffers free at the end", app.Pool.FreeCount(), g.BufferCount)
	}
}

func childPoolStress() error {
	total := envInt("RING_TOTAL", 0)
	r, srv, err := childServer()
	if err != nil {
		return err
	}
	ready()
	count := r.Geometry().BufferCount
	size := r.Geometry().BufferSize
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 2))
	for done := 0; done < total; {
		n, err := srv.Submit.Wait(WaitPolicy{Spin: DefaultSpin}, time.Now().Add(time.Minute))
		if err != nil {
			return err
		}
		for k := range n {
			slot := srv.Submit.Slot(k)
			i := binary.LittleEndian.Uint32(slot)
			length := binary.LittleEndian.Uint32(slot[4:])
			seq := binary.LittleEndian.Uint64(slot[8:])
			b, err := srv.Loans.Take(i, length)
			if err != nil {
				return fmt.Errorf("seq %d: %w", seq, err)
			}
			if !checkPattern(b, seq) {
				return fmt.Errorf("buffer %d (seq %d): the app's data is corrupt", i, seq)
			}
			// Misuse that must be refused.
			if _, err := srv.Loans.Take(i, 1); !errors.Is(err, ErrBufferNotOwned) {
				return fmt.Errorf("second take of buffer %d: %v", i, err)
			}
			if _, err := srv.Loans.Take(count+uint32(rng.IntN(100)), 1); !errors.Is(err, ErrBufferIndex) {
				return fmt.Errorf("take of a foreign index: %v", err)
			}
			if _, err := srv.Loans.Take(i, size+1); err == nil {
				return fmt.Errorf("take past the end of buffer %d succeeded", i)
			}
			answer := 1 + rng.IntN(int(size))
			fillPattern(b[:answer], ^seq)
			if err := srv.Loans.Return(i); err != nil {
				return err
			}
			if err := srv.Loans.Return(i); !errors.Is(err, ErrBufferNotOwned) {
				return fmt.Errorf("double return of buffer %d: %v", i, err)
			}
			for {
				m, err := srv.Complete.Reserve(1)
				if err != nil {
					return err
				}
				if m == 1 {
					break
				}
				time.Sleep(time.Microsecond)
			}
			out := srv.Complete.Slot(0)
			binary.LittleEndian.PutUint32(out, i)
			binary.LittleEndian.PutUint32(out[4:], uint32(answer))
			binary.LittleEndian.PutUint64(out[8:], seq)
			srv.Complete.Publish(1)
			done++
		}
		srv.Submit.Release(n)
	}
	if srv.Loans.Held() != 0 {
		return fmt.Errorf("server still holds %d buffers", srv.Loans.Held())
	}
	fmt.Println("done")
	return nil
}
