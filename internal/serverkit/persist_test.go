package serverkit

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func testHeader(slots uint64) *PersistHeader {
	return &PersistHeader{Magic: "SATTEST1", Fields: []PersistField{
		{Name: "version", Off: 8, Size: 4, Want: 1},
		{Name: "slots", Off: 16, Size: 8, Want: slots},
	}}
}

func TestPersistHeader(t *testing.T) {
	mem := make([]byte, 64)
	h := testHeader(10)
	if v, _ := h.Check(mem); v != PersistFresh {
		t.Fatalf("zeros: %v, want PersistFresh", v)
	}
	h.Write(mem)
	if string(mem[:8]) != "SATTEST1" || mem[8] != 1 || mem[16] != 10 {
		t.Fatalf("Write wrote % x", mem[:24])
	}
	if v, what := h.Check(mem); v != PersistOurs || what != "" {
		t.Fatalf("after Write: %v %q, want PersistOurs", v, what)
	}
	if v, what := testHeader(12).Check(mem); v != PersistOtherLayout || !strings.Contains(what, "slots 10 (this binary wants 12)") {
		t.Fatalf("other slots: %v %q", v, what)
	}
	copy(mem, "SATTEST2")
	if v, what := h.Check(mem); v != PersistForeign || !strings.Contains(what, `"SATTEST2"`) {
		t.Fatalf("other magic: %v %q", v, what)
	}
}

func TestMapPersist(t *testing.T) {
	mem, err := MapPersist(nil, "serverkit-test", 3*4096)
	if err != nil {
		t.Fatal(err)
	}
	if len(mem) != 3*4096 {
		t.Fatalf("private memory of %d bytes, want %d", len(mem), 3*4096)
	}
	mem[len(mem)-1] = 1 // writable
	unix.Munmap(mem)

	f, err := os.CreateTemp(t.TempDir(), "persist")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := MapPersist(f, "", 0); err == nil {
		t.Fatal("an empty file was mapped")
	}
	mem, err = MapPersist(f, "", 8192) // grown
	if err != nil {
		t.Fatal(err)
	}
	copy(mem, "shared")
	unix.Munmap(mem)
	got := make([]byte, 6)
	if st, _ := f.Stat(); st.Size() != 8192 {
		t.Fatalf("file of %d bytes, want it grown to 8192", st.Size())
	}
	if f.ReadAt(got, 0); string(got) != "shared" {
		t.Fatalf("the mapping is not the file's: read %q", got)
	}
}
