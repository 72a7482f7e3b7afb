package link_test

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc/header"
	"saturn/netproc/ipv4"
	"saturn/netproc/link"
)

// serveICMP answers ICMP echo on dev with netproc/ipv4 until dev is closed,
// fragmenting replies larger than the MTU. It returns a wait function.
func serveICMP(t *testing.T, dev link.Device, addr netip.Addr) (wait func() ipv4.Stats) {
	ep := ipv4.New(ipv4.Config{Addr: header.IPv4Addr(addr.As4()), Protocols: []uint8{header.TCPProtocolNumber}})
	var wg sync.WaitGroup
	var stats ipv4.Stats
	wg.Add(1)
	go func() {
		defer wg.Done()
		hr := dev.Headroom()
		batch := make([]link.Packet, dev.BatchSize())
		for i := range batch {
			batch[i].Buf = make([]byte, link.MaxHeadroom+dev.MaxPacketSize())
			batch[i].Off = link.MaxHeadroom
		}
		frags := make([][]byte, 64)
		for i := range frags {
			frags[i] = make([]byte, dev.MTU())
		}
		out := make([]link.Packet, 64)
		for {
			n, err := dev.Read(batch)
			if err != nil {
				if !errors.Is(err, link.ErrClosed) {
					t.Errorf("read: %v", err)
				}
				stats = ep.Stats()
				return
			}
			for i := range batch[:n] {
				res := ep.Input(batch[i].Bytes(), time.Now())
				if res.Verdict != ipv4.VerdictReply {
					continue
				}
				k, err := ep.Fragment(res.Reply, dev.MTU(), frags)
				if err != nil {
					t.Errorf("fragment: %v", err)
					continue
				}
				for j := range k {
					buf := make([]byte, hr+dev.MTU())
					m := copy(buf[hr:], frags[j][:header.IPv4(frags[j]).TotalLength()])
					out[j].Set(buf, hr, m)
				}
				if _, err := dev.Write(out[:k]); err != nil && !errors.Is(err, link.ErrClosed) {
					t.Errorf("write: %v", err)
				}
			}
		}
	}()
	return func() ipv4.Stats { wg.Wait(); return stats }
}

func nsExec(ctx context.Context, ns string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

func TestNetnsTUNPing(t *testing.T) {
	testkit.NeedTUN(t)
	needCommand(t, "ip", "ping")
	for _, offload := range []bool{false, true} {
		name := "plain"
		if offload {
			name = "offload"
		}
		t.Run(name, func(t *testing.T) {
			ns, prefix := testkit.TestNet()
			dev, err := link.OpenNetnsTUN(link.NetnsConfig{Namespace: ns, Address: prefix, IfName: "saturn0", Offload: offload})
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			t.Logf("namespace %s, saturn %v, kernel %v, mode %v", ns, dev.Address(), dev.PeerAddress(), dev.Offloads())
			if !dev.CreatedNamespace() || dev.Name() != "saturn0" || dev.PeerAddress().Addr() != prefix.Masked().Addr().Next() {
				t.Fatalf("created %v name %s peer %v", dev.CreatedNamespace(), dev.Name(), dev.PeerAddress())
			}
			if offload != dev.Offloads().VirtioHeader {
				t.Logf("offload asked %v, got %v", offload, dev.Offloads())
			}
			wait := serveICMP(t, dev, prefix.Addr())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			target := prefix.Addr().String()
			for _, args := range [][]string{
				{"ping", "-c", "3", "-i", "0.2", "-W", "2", target},
				// 4000 bytes: the kernel fragments the request, saturn
				// reassembles it and fragments the reply.
				{"ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", "-M", "dont", target},
			} {
				out, err := nsExec(ctx, ns, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
				}
				if !strings.Contains(string(out), " 0% packet loss") {
					t.Fatalf("%s:\n%s", strings.Join(args, " "), out)
				}
			}
			if err := dev.Close(); err != nil {
				t.Fatal(err)
			}
			st := wait()
			if st.ICMPOutEchoReps < 5 || st.ReasmOKs < 2 || st.FragOKs < 2 {
				t.Fatalf("stats %+v", st)
			}
			testkit.NoNamespaceLeft(t, ns)
		})
	}
}

// TestNetnsTUNPingImpaired pings through an impaired link: ping sees losses
// and duplicates, and the same seed loses the same packets.
func TestNetnsTUNPingImpaired(t *testing.T) {
	testkit.NeedTUN(t)
	needCommand(t, "ip", "ping")
	ns, prefix := testkit.TestNet()
	tun, err := link.OpenNetnsTUN(link.NetnsConfig{Namespace: ns, Address: prefix})
	if err != nil {
		t.Fatal(err)
	}
	dev := link.NewImpaired(tun, link.ImpairOptions{Seed: 1, DropPercent: 20, DuplicatePercent: 20, Delay: 5 * time.Millisecond})
	defer dev.Close()
	wait := serveICMP(t, dev, prefix.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := nsExec(ctx, ns, "ping", "-c", "40", "-i", "0.02", "-W", "1", prefix.Addr().String()).CombinedOutput()
	t.Logf("%s", out)
	s := string(out)
	if strings.Contains(s, " 0% packet loss") || strings.Contains(s, "100% packet loss") || !strings.Contains(s, "DUP!") {
		t.Fatalf("expected some loss and duplicates:\n%s", s)
	}
	dev.Close()
	wait()
	tx, rx := dev.Stats()
	t.Logf("tx %+v\nrx %+v", tx, rx)
	if rx.Packets < 40 || rx.Dropped == 0 || tx.Dropped == 0 || rx.Duplicated == 0 || tx.Delayed == 0 {
		t.Fatalf("tx %+v rx %+v", tx, rx)
	}
	testkit.NoNamespaceLeft(t, ns)
}

// TestNetnsExistingNamespaceKept uses a namespace that exists already and
// leaves it in place at Close.
func TestNetnsExistingNamespaceKept(t *testing.T) {
	testkit.NeedTUN(t)
	ns, prefix := testkit.TestNet()
	created, err := link.EnsureNamespace(ns)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	defer link.DeleteNamespace(ns)
	if again, err := link.EnsureNamespace(ns); err != nil || again {
		t.Fatalf("second EnsureNamespace: created %v err %v", again, err)
	}
	dev, err := link.OpenNetnsTUN(link.NetnsConfig{Namespace: ns, Address: prefix, IfName: "sat0"})
	if err != nil {
		t.Fatal(err)
	}
	if dev.CreatedNamespace() {
		t.Fatal("claims to have created an existing namespace")
	}
	// A second device with the same interface name in the namespace fails
	// cleanly.
	if _, err := link.OpenNetnsTUN(link.NetnsConfig{Namespace: ns, Address: prefix, IfName: "sat0"}); !errors.Is(err, link.ErrInterfaceExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, err := link.NamespaceExists(ns); !ok || err != nil {
		t.Fatalf("namespace removed although not ours: %v %v", ok, err)
	}
}
