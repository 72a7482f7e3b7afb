package proto

import (
	"slices"
	"testing"
)

func TestStoreMsg(t *testing.T) {
	keys := []uint64{1, 1 << 40, 7}
	for _, tc := range []struct {
		op  StoreOp
		fds int
		ok  bool
	}{
		{StorePut, 3, true}, {StoreBack, 3, true}, {StoreDrop, 0, true},
		{StorePut, 2, false}, {StoreDrop, 1, false}, {StoreEnd, 0, false}, {'X', 0, false},
	} {
		op, got, err := DecodeStoreMsg(AppendStoreMsg(nil, tc.op, keys), tc.fds, nil)
		if (err == nil) != tc.ok {
			t.Errorf("%c with %d descriptors: %v", tc.op, tc.fds, err)
			continue
		}
		if tc.ok && (op != tc.op || !slices.Equal(got, keys)) {
			t.Errorf("%c: decoded %c %v", tc.op, op, got)
		}
	}
	if _, _, err := DecodeStoreMsg(AppendStoreMsg(nil, StoreEnd, nil), 0, nil); err != nil {
		t.Errorf("end: %v", err)
	}
	bad := [][]byte{
		nil, {'P', 0, 0}, {'D', 1, 0, 0, 0, 0, 0, 0},
		{'D', 0, 0, 0, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8},           // count past the bytes
		AppendStoreMsg(nil, StorePut, make([]uint64, StoreMaxFDs+1)), // past SCM_MAX_FD
	}
	for _, b := range bad {
		if _, _, err := DecodeStoreMsg(b, 0, nil); err == nil {
			t.Errorf("% x decoded", b)
		}
	}
	if _, _, err := DecodeStoreMsg(AppendStoreMsg(nil, StorePut, make([]uint64, StoreMaxFDs+1)), StoreMaxFDs+1, nil); err == nil {
		t.Error("a put past SCM_MAX_FD decoded")
	}
}

// FuzzStoreMsg: whatever the bytes, decoding never panics, and what it
// accepts encodes back to the same bytes.
func FuzzStoreMsg(f *testing.F) {
	f.Add(AppendStoreMsg(nil, StorePut, []uint64{1, 2}), 2)
	f.Add(AppendStoreMsg(nil, StoreEnd, nil), 0)
	f.Fuzz(func(t *testing.T, b []byte, fds int) {
		op, keys, err := DecodeStoreMsg(b, fds, nil)
		if err != nil {
			return
		}
		if again := AppendStoreMsg(nil, op, keys); !slices.Equal(again, b) {
			t.Fatalf("% x decoded to %c %v, which encodes to % x", b, op, keys, again)
		}
	})
}
