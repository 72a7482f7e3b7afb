package usertcp

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLayoutHash: the hash tells apart layouts that the struct's size
// does not: fields swapped, a field's type changed for one of the same
// size, a nested struct's fields swapped. The same fields under another
// type name hash the same.
func TestLayoutHash(t *testing.T) {
	type inner struct {
		a, b uint32
	}
	type innerSwapped struct {
		b, a uint32
	}
	type base struct {
		una, nxt uint32
		in       inner
		ws       [4]byte
	}
	type sameFields struct {
		una, nxt uint32
		in       inner
		ws       [4]byte
	}
	type swapped struct {
		nxt, una uint32
		in       inner
		ws       [4]byte
	}
	type signed struct {
		una int32
		nxt uint32
		in  inner
		ws  [4]byte
	}
	type nestedSwapped struct {
		una, nxt uint32
		in       innerSwapped
		ws       [4]byte
	}
	type arrayRetyped struct {
		una, nxt uint32
		in       inner
		ws       uint32
	}
	h := func(v any) uint64 { return layoutHash(reflect.TypeOf(v)) }
	want := h(base{})
	if got := h(sameFields{}); got != want {
		t.Errorf("the same fields under another name: %#x, want %#x", got, want)
	}
	for name, v := range map[string]any{
		"two fields swapped":               swapped{},
		"a field's type changed":           signed{},
		"a nested struct's fields swapped": nestedSwapped{},
		"an array become an integer":       arrayRetyped{},
	} {
		if reflect.TypeOf(v).Size() != reflect.TypeOf(base{}).Size() {
			t.Fatalf("%s: the sizes differ; the case is meant to keep them", name)
		}
		if h(v) == want {
			t.Errorf("%s: the same hash %#x", name, want)
		}
	}
}

// TestTableLayoutHash: a table written by a binary whose tcp.Conn has
// another layout hash is discarded, saying why, and started afresh; one
// written with the same hash is taken over with its records.
func TestTableLayoutHash(t *testing.T) {
	fd, err := unix.MemfdCreate("usertcp-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	open := func(layout uint64) *table {
		t.Helper()
		dup, err := unix.Dup(fd)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := openTableLayout(os.NewFile(uintptr(dup), "usertcp-test"), 4, 8<<10, 8<<10, layout)
		if err != nil {
			t.Fatal(err)
		}
		return tab
	}
	const one, other = 0x1111, 0x2222

	tab := open(one)
	if !tab.fresh || tab.discard != "" {
		t.Fatalf("first open: fresh %v, discard %q", tab.fresh, tab.discard)
	}
	if _, ok := tab.alloc(8<<10, 8<<10, 80); !ok {
		t.Fatal("table full")
	}
	tab.close()

	tab = open(one)
	if tab.fresh || tab.discard != "" || tab.used != 1 || tab.incarnation != 2 {
		t.Fatalf("the same layout: fresh %v, discard %q, used %d, incarnation %d; want it taken over", tab.fresh, tab.discard, tab.used, tab.incarnation)
	}
	tab.close()

	tab = open(other)
	defer tab.close()
	if !tab.fresh || tab.used != 0 || tab.incarnation != 1 {
		t.Errorf("another layout: fresh %v, used %d, incarnation %d; want it discarded", tab.fresh, tab.used, tab.incarnation)
	}
	if !strings.Contains(tab.discard, "tcp.Conn layout hash 4369 (this binary wants 8738)") {
		t.Errorf("discarded because %q, want the layout hashes named", tab.discard)
	}
}
