package link_test

import (
	"bytes"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"saturn/internal/testkit"
	"saturn/netproc/link"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// slots returns n read slots with room for dev's packets.
func slots(dev link.Device, n int) []link.Packet {
	pkts := make([]link.Packet, n)
	for i := range pkts {
		pkts[i].Buf = make([]byte, link.MaxHeadroom+dev.MaxPacketSize())
		pkts[i].Off = link.MaxHeadroom
	}
	return pkts
}

func packetOf(data []byte) link.Packet {
	buf := make([]byte, link.MaxHeadroom+len(data))
	copy(buf[link.MaxHeadroom:], data)
	return link.Packet{Buf: buf, Off: link.MaxHeadroom, Len: len(data)}
}

func TestChannelPair(t *testing.T) {
	a, b := link.NewChannelPair(link.ChannelConfig{MaxPacketSize: link.MaxGSOPacketSize})
	defer a.Close()
	defer b.Close()
	p := packetOf([]byte("first"))
	p.GSOSize, p.Flags = 1448, link.FlagNeedsChecksum
	if n, err := a.Write([]link.Packet{p, packetOf([]byte("second"))}); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	// The device copied: reusing the buffer does not change what was sent.
	copy(p.Bytes(), "XXXXX")
	in := slots(b, 4)
	n, err := b.Read(in)
	if err != nil || n != 2 {
		t.Fatal(n, err)
	}
	if string(in[0].Bytes()) != "first" || in[0].GSOSize != 1448 || in[0].Flags != link.FlagNeedsChecksum || string(in[1].Bytes()) != "second" {
		t.Fatalf("got %q %d %v, %q", in[0].Bytes(), in[0].GSOSize, in[0].Flags, in[1].Bytes())
	}
}

func TestChannelInboundOutbound(t *testing.T) {
	c := link.NewChannel(link.ChannelConfig{MTU: 100})
	defer c.Close()
	c.Inbound() <- link.Frame{Data: bytes.Repeat([]byte{1}, 101)} // too big: dropped
	c.Inbound() <- link.Frame{Data: []byte{4, 5}}
	in := slots(c, 2)
	if n, err := c.Read(in); n != 1 || err != nil || !bytes.Equal(in[0].Bytes(), []byte{4, 5}) {
		t.Fatal(n, err)
	}
	if c.Oversized() != 1 {
		t.Fatalf("oversized %d", c.Oversized())
	}
	if _, err := c.Read([]link.Packet{{Buf: make([]byte, 50)}}); !errors.Is(err, link.ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
	c.Write([]link.Packet{packetOf([]byte{9})})
	if f := <-c.Outbound(); !bytes.Equal(f.Data, []byte{9}) {
		t.Fatalf("outbound %v", f.Data)
	}
}

func TestChannelCloseUnblocks(t *testing.T) {
	c := link.NewChannel(link.ChannelConfig{Queue: 1})
	errc := make(chan error, 2)
	go func() { _, err := c.Read(slots(c, 1)); errc <- err }()
	go func() {
		// The second write blocks on the full queue.
		_, err := c.Write([]link.Packet{packetOf([]byte{1}), packetOf([]byte{2})})
		errc <- err
	}()
	testkit.WaitBlocked(t, "saturn/netproc/link.(*Channel).Read", 1)
	testkit.WaitBlocked(t, "saturn/netproc/link.(*Channel).Write", 1)
	c.Close()
	for range 2 {
		if err := <-errc; !errors.Is(err, link.ErrClosed) {
			t.Fatalf("err %v, want ErrClosed", err)
		}
	}
}
