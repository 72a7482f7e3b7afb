package usertcp_test

import (
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/appproc"
	"saturn/internal/testkit"
	"saturn/netproc"
	"saturn/netproc/link"
	"saturn/netproc/netproctest"
	"saturn/netproc/usertcp"
)

// TestRecoverOwned takes a copy of the connection table while an app holds
// an established connection (what a death at that moment would leave) and
// starts a second stack on the copy, with resume on: the connection is
// kept for its app's channel and, nobody claiming it, reset when the grace
// ends; torn (its step sequence odd), it is reset at once.
func TestRecoverOwned(t *testing.T) {
	persist, stackSide := persistMemory(t)
	cfg := usertcp.Config{Persist: stackSide, MaxConns: 16, SendBuf: 64 << 10, RecvBuf: 64 << 10, Resume: true}
	e := startStack(t, cfg)
	ln, err := e.App.Listen("tcp", e.AddrPort(7100))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := e.Dial(e.AddrPort(7100))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}

	image := snapshot(t, e.Srv, persist)

	for _, torn := range []bool{false, true} {
		img := append([]byte(nil), image...)
		if torn {
			if n := usertcp.TearOwned(img); n != 1 {
				t.Fatalf("tore %d records, want the one connection's", n)
			}
		}
		dev := link.NewChannel(link.ChannelConfig{})
		st2, err := usertcp.New(usertcp.Config{
			Device: dev, Namespace: "copy", Address: netip.PrefixFrom(e.Addr, 24), Persist: memfdWith(t, img),
			MaxConns: 16, SendBuf: 64 << 10, RecvBuf: 64 << 10, Resume: true, ResumeGrace: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		srv2 := netproctest.Start(t, netproc.Options{Backend: st2})
		counters := func() map[string]uint64 {
			var m map[string]uint64
			srv2.Do(func() { m = st2.Counters() })
			return m
		}
		m := counters()
		switch {
		case torn && (m["tcp.recovered_torn"] != 1 || m["tcp.recovered_reset"] != 1 || m["tcp.resumed"] != 0):
			t.Errorf("torn: recovered_torn %d, recovered_reset %d, resumed %d; want 1, 1, 0", m["tcp.recovered_torn"], m["tcp.recovered_reset"], m["tcp.resumed"])
		case !torn && (m["tcp.resumed"] != 1 || m["tcp.recovered_reset"] != 0):
			t.Errorf("whole: resumed %d, recovered_reset %d; want 1, 0", m["tcp.resumed"], m["tcp.recovered_reset"])
		}
		if !torn {
			if !testkit.Until(5*time.Second, func() bool { return counters()["tcp.recovered_reset"] == 1 }) {
				t.Fatalf("the connection nobody claimed is still kept: %v", counters())
			}
		}
		srv2.Stop()
	}
}

// TestRecoverListenersHostile: a next incarnation rebuilds the listeners
// an earlier one left in its table, and checks each record as hostile: a
// record broken in any field (a port 0, a backlog or buffer size no Listen
// makes, an address not ours, an asked address that contradicts its
// family, a torn write, no owner, a port taken twice) is not rebuilt, and
// nothing panics. It needs no TUN device: the link is a test's channel.
func TestRecoverListenersHostile(t *testing.T) {
	persist, stackSide := persistMemory(t)
	addr := netip.MustParsePrefix("10.99.0.2/24")
	cfg := func(f *os.File) usertcp.Config {
		return usertcp.Config{Device: link.NewChannel(link.ChannelConfig{}), Namespace: "test", Address: addr, Persist: f,
			MaxConns: 16, SendBuf: 64 << 10, RecvBuf: 64 << 10, Resume: true}
	}
	st, err := usertcp.New(cfg(stackSide))
	if err != nil {
		t.Fatal(err)
	}
	srv := netproctest.Start(t, netproc.Options{Backend: st})
	desc, files := srv.Channel(t, "app", netproctest.Geometry)
	ch, err := appproc.OpenChannel(desc, files)
	if err != nil {
		t.Fatal(err)
	}
	app := appproc.NewApp("app", ch)
	defer app.Close()
	for _, a := range []string{"0.0.0.0:7100", "127.0.0.1:7101"} {
		ln, err := app.Listen("tcp4", a)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
	}
	image := snapshot(t, srv, persist)
	for _, tc := range []struct {
		how  string
		kept uint64
	}{
		{"none", 2}, {"port", 0}, {"backlog", 0}, {"bufsize", 0}, {"laddr", 0}, {"asked4", 0},
		{"torn", 0}, {"owner", 0}, {"dup", 1},
	} {
		img := append([]byte(nil), image...)
		if n := usertcp.CorruptListeners(img, tc.how); tc.how != "none" && n == 0 {
			t.Fatalf("%s: no listener record to break", tc.how)
		}
		st2, err := usertcp.New(cfg(memfdWith(t, img)))
		if err != nil {
			t.Fatal(err)
		}
		srv2 := netproctest.Start(t, netproc.Options{Backend: st2})
		var m map[string]uint64
		srv2.Do(func() { m = st2.Counters() })
		if m["tcp.resumed_listeners"] != tc.kept {
			t.Errorf("%s: %d listeners rebuilt, want %d", tc.how, m["tcp.resumed_listeners"], tc.kept)
		}
		srv2.Stop()
	}
}

// persistMemory makes a stack's persistent memory, as the supervisor keeps
// it: stackSide is for Config.Persist (the stack closes it), and the test
// keeps persist to read what the stack wrote, closed when the test ends.
func persistMemory(t *testing.T) (persist, stackSide *os.File) {
	persist = memfdWith(t, nil)
	t.Cleanup(func() { persist.Close() })
	fd, err := unix.Dup(int(persist.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return persist, os.NewFile(uintptr(fd), "persist")
}

// snapshot copies persist whole on srv's loop, between two of its steps:
// the table as a death at that moment would leave it.
func snapshot(t *testing.T, srv *netproctest.Server, persist *os.File) []byte {
	st, err := persist.Stat()
	if err != nil {
		t.Fatal(err)
	}
	image := make([]byte, st.Size())
	srv.Do(func() { _, err = persist.ReadAt(image, 0) })
	if err != nil {
		t.Fatal(err)
	}
	return image
}

// memfdWith returns a new memfd holding img, for a next incarnation's
// Config.Persist.
func memfdWith(t *testing.T, img []byte) *os.File {
	fd, err := unix.MemfdCreate("persist", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "persist")
	if _, err := f.WriteAt(img, 0); err != nil {
		t.Fatal(err)
	}
	return f
}
