package diskproc

import (
	"testing"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// TestDirentType: a directory record's d_type and a stat's mode give every
// type alike (d_type is the mode's type bits shifted down), and DT_UNKNOWN
// is a type not known rather than another one.
func TestDirentType(t *testing.T) {
	for dt, mode := range map[byte]uint32{
		unix.DT_REG: unix.S_IFREG, unix.DT_DIR: unix.S_IFDIR, unix.DT_LNK: unix.S_IFLNK,
		unix.DT_FIFO: unix.S_IFIFO, unix.DT_SOCK: unix.S_IFSOCK, unix.DT_CHR: unix.S_IFCHR, unix.DT_BLK: unix.S_IFBLK,
	} {
		if got, want := direntType(dt), fileType(mode|0o644); got != want {
			t.Errorf("direntType(%d) = %v, fileType(%#o) = %v", dt, got, mode|0o644, want)
		}
	}
	if got := direntType(unix.DT_UNKNOWN); got != proto.TypeUnknown {
		t.Errorf("direntType(DT_UNKNOWN) = %v, want %v", got, proto.TypeUnknown)
	}
}
