package leftover_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"saturn/netproc/leftover"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNamespaceRecord(t *testing.T) {
	hdr := make([]byte, 4096)
	if got := leftover.Namespace(hdr); got != "" {
		t.Fatalf("empty header: %q", got)
	}
	leftover.SetNamespace(hdr, "saturn-a")
	if got := leftover.Namespace(hdr); got != "saturn-a" {
		t.Fatalf("got %q, want saturn-a", got)
	}
	leftover.SetNamespace(hdr, "b")
	if got := leftover.Namespace(hdr); got != "b" {
		t.Fatalf("a shorter name over a longer one: got %q", got)
	}
	long := string(make([]byte, leftover.NetnsMax+1))
	leftover.SetNamespace(hdr, long)
	if got := leftover.Namespace(hdr); got != "b" {
		t.Fatalf("a name too long must not be recorded: got %q", got)
	}
	hdr[leftover.NetnsOffset] = leftover.NetnsMax + 1 // a length past the record
	if got := leftover.Namespace(hdr); got != "" {
		t.Fatalf("a corrupt record: got %q", got)
	}
}

func persist(t *testing.T, magic, ns string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "persist")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	hdr := make([]byte, 4096)
	copy(hdr, magic)
	leftover.SetNamespace(hdr, ns)
	if _, err := f.Write(hdr); err != nil {
		t.Fatal(err)
	}
	return f
}

// A namespace that is gone already: the record is cleared and nothing is
// reported removed. No privileges needed.
func TestRemoveNamespaceGone(t *testing.T) {
	ns := "saturn-leftover-test-none"
	f := persist(t, leftover.Magic, ns)
	removed, err := leftover.RemoveNamespace(f, ns)
	if err != nil || removed != "" {
		t.Fatalf("RemoveNamespace = %q, %v; want \"\", nil", removed, err)
	}
	hdr := make([]byte, 4096)
	f.ReadAt(hdr, 0)
	if got := leftover.Namespace(hdr); got != "" {
		t.Fatalf("record not cleared: %q", got)
	}
}

// Memory that is not netproc's table, or records another namespace than the
// configured one, is left alone.
func TestRemoveNamespaceLeavesOthersAlone(t *testing.T) {
	for _, tc := range []struct{ name, magic, recorded, want string }{
		{"foreign magic", "SATDISK1", "saturn-x", "saturn-x"},
		{"other namespace", leftover.Magic, "saturn-x", "saturn-y"},
		{"nothing recorded", leftover.Magic, "", "saturn-x"},
		{"nothing configured", leftover.Magic, "saturn-x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := persist(t, tc.magic, tc.recorded)
			removed, err := leftover.RemoveNamespace(f, tc.want)
			if err != nil || removed != "" {
				t.Fatalf("RemoveNamespace = %q, %v; want \"\", nil", removed, err)
			}
			hdr := make([]byte, 4096)
			f.ReadAt(hdr, 0)
			if got := leftover.Namespace(hdr); got != tc.recorded {
				t.Fatalf("record changed: %q, want %q", got, tc.recorded)
			}
		})
	}
}
