package link

import (
	"os"
	"testing"
)

// TestOpenTUNFallsBack makes the kernel refuse the offloads (TSO4 without
// checksum offload is invalid) and checks that OpenTUN falls back to a
// plain device and says so.
func TestOpenTUNFallsBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create TUN devices")
	}
	saved := offloadLadder
	defer func() { offloadLadder = saved }()
	offloadLadder = []Offloads{{VirtioHeader: true, TSO4: true}}
	tun, err := OpenTUN(TUNConfig{Offload: true})
	if err != nil {
		t.Skipf("skipping: cannot create a TUN device: %v", err)
	}
	defer tun.Close()
	if got := tun.Offloads(); got != (Offloads{}) || got.String() != "plain" || tun.Headroom() != 0 || tun.MaxPacketSize() != DefaultMTU {
		t.Fatalf("mode %v headroom %d max %d", got, tun.Headroom(), tun.MaxPacketSize())
	}
	offloadLadder = saved
	full, err := OpenTUN(TUNConfig{Offload: true})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	t.Logf("this kernel accepts %v", full.Offloads())
}
