package usertcp

import (
	"math"
	"testing"
)

// TestExtend: a stream position kept modulo 2^32 is widened against the
// app's 64-bit offset, on either side of it and across a wrap.
func TestExtend(t *testing.T) {
	for _, tc := range []struct {
		near uint64
		v    uint32
		want uint64
	}{
		{0, 0, 0},
		{100, 150, 150},
		{100, 90, 90},
		{1 << 32, 5, 1<<32 + 5},
		{1<<32 + 5, math.MaxUint32, 1<<32 - 1},
		{5<<32 - 10, 20, 5<<32 + 20},
		{7<<32 + 1<<20, 1<<20 - 4096, 7<<32 + 1<<20 - 4096},
	} {
		if got := extend(tc.near, tc.v); got != tc.want {
			t.Errorf("extend(%#x, %#x) = %#x, want %#x", tc.near, tc.v, got, tc.want)
		}
	}
}

// TestRecordOwner: a record carries its owner and step sequence in its
// free bytes, cleared when it is reused, and none of it touches the core's
// connection.
func TestRecordOwner(t *testing.T) {
	tab, err := openTable(nil, 4, 8<<10, 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.close()
	i, ok := tab.alloc(8<<10, 8<<10, 80)
	if !ok {
		t.Fatal("table full")
	}
	tab.setOwner(i, 42, 0x1234_5678_9abc)
	tab.seqWord(i).Add(1)
	if o, h := tab.owner(i); o != 42 || h != 0x1234_5678_9abc {
		t.Errorf("owner %d, handle %#x", o, h)
	}
	if s, r := tab.sizes(i); s != 8<<10 || r != 8<<10 {
		t.Errorf("sizes %d+%d after writing the owner", s, r)
	}
	if st := tab.conn(i).State(); st != 0 {
		t.Errorf("the core's state is %v after writing the owner", st)
	}
	tab.release(i)
	j, _ := tab.alloc(8<<10, 8<<10, 0)
	if j != i {
		t.Fatalf("reused record %d, want %d", j, i)
	}
	if o, h := tab.owner(j); o != 0 || h != 0 || tab.seqWord(j).Load() != 0 {
		t.Errorf("a reused record keeps owner %d, handle %#x, seq %d", o, h, tab.seqWord(j).Load())
	}
}
