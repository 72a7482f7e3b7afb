package testkit

import (
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestUntil(t *testing.T) {
	var n atomic.Int32
	if !Until(5*time.Second, func() bool { return n.Add(1) == 3 }) {
		t.Fatal("a condition that holds on the third check was given up")
	}
	start := time.Now()
	if Until(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds was reported held")
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("gave up after %v, before the timeout", el)
	}
	if !Until(0, func() bool { return true }) {
		t.Fatal("a condition that holds at once needs no time")
	}
}

func TestBlocked(t *testing.T) {
	ch := make(chan int)
	done, done2 := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); blockHere(ch) }()
	go func() { defer close(done2); blockHere(ch) }()
	WaitBlocked(t, "saturn/internal/testkit.blockHere", 2)
	close(ch)
	<-done
	<-done2
	if Blocked("saturn/internal/testkit.blockHere") != 0 {
		t.Fatal("a goroutine that returned is still seen blocked")
	}
}

//go:noinline
func blockHere(ch chan int) { <-ch }
