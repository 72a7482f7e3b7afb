package link_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"saturn/netproc/header"
	"saturn/netproc/link"
)

var (
	capSrc = header.IPv4Addr{10, 77, 0, 1}
	capDst = header.IPv4Addr{10, 77, 0, 2}
)

// tcpSegment builds a TCP/IPv4 packet; with bogusChecksum its TCP checksum
// is left wrong, as a stack relying on FlagNeedsChecksum leaves it.
func tcpSegment(seq uint32, payload []byte, bogusChecksum bool) []byte {
	total := 40 + len(payload)
	b := make([]byte, total)
	header.IPv4(b).Encode(&header.IPv4Fields{TotalLength: uint16(total), TTL: 64, Protocol: header.TCPProtocolNumber,
		Flags: header.IPv4FlagDontFragment, SrcAddr: capSrc, DstAddr: capDst})
	tcp := header.TCP(b[20:])
	tcp.Encode(&header.TCPFields{SrcPort: 80, DstPort: 40000, SeqNum: seq, DataOffset: 20, Flags: header.TCPFlagAck, WindowSize: 100})
	copy(tcp[20:], payload)
	if bogusChecksum {
		tcp.SetChecksum(0xdead)
	} else {
		tcp.SetChecksum(header.TCPChecksum(capSrc, capDst, tcp))
	}
	return b
}

// readPcap reads a capture file back with gopacket and checks every record
// decodes as IPv4 with a valid header checksum, and TCP with a valid
// checksum when it is TCP.
func readPcap(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Fatalf("link type %v", r.LinkType())
	}
	var out [][]byte
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if ci.CaptureLength != ci.Length {
			t.Fatalf("record truncated: %d of %d", ci.CaptureLength, ci.Length)
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeIPv4, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatalf("record %d does not decode: %v", len(out), el.Error())
		}
		if err := header.ValidateIPv4(data); err != nil {
			t.Fatalf("record %d: %v", len(out), err)
		}
		ip := header.IPv4(data)
		if ip.Protocol() == header.TCPProtocolNumber {
			if err := header.ValidateTCP(ip.Payload(), ip.SourceAddress(), ip.DestinationAddress(), true); err != nil {
				t.Fatalf("record %d: %v", len(out), err)
			}
		}
		out = append(out, data)
	}
	return out
}

// tsharkCheck has tshark read the file with checksum validation on and
// fails on malformed packets or bad checksums; it skips without tshark.
func tsharkCheck(t *testing.T, path string, wantFrames int) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not installed; skipping its check (apt-get install -y tshark)")
		return
	}
	frames, problems := tsharkProblems(t, path)
	if frames != wantFrames {
		t.Fatalf("tshark read %d frames, want %d", frames, wantFrames)
	}
	if problems != "" {
		t.Fatalf("tshark finds malformed packets or bad checksums:\n%s", problems)
	}
}

// tsharkProblems returns the number of frames tshark reads in path and its
// one-line summaries of those malformed or with a bad IP, TCP or ICMP
// checksum.
func tsharkProblems(t *testing.T, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) string {
		args = append([]string{"-n", "-r", path, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"}, args...)
		cmd := exec.CommandContext(ctx, "tshark", args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v\n%s", args, err, stderr.Bytes())
		}
		return strings.TrimSpace(string(out))
	}
	frames := len(strings.Fields(run("-T", "fields", "-e", "frame.number")))
	// Checksum status 0 is "bad" (1 good, 2 unverified).
	return frames, run("-Y", "_ws.malformed || ip.checksum.status == 0 || tcp.checksum.status == 0 || icmp.checksum.status == 0")
}

// TestTsharkCheckDetectsBadChecksum makes sure the check above can fail.
func TestTsharkCheckDetectsBadChecksum(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("skipping: tshark not installed")
	}
	path := filepath.Join(t.TempDir(), "bad.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65535, layers.LinkTypeRaw)
	for _, pkt := range [][]byte{tcpSegment(1, []byte("good"), false), tcpSegment(5, []byte("bad!"), true)} {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(pkt), Length: len(pkt)}, pkt)
	}
	f.Close()
	frames, problems := tsharkProblems(t, path)
	if frames != 2 || !strings.HasPrefix(problems, "2 ") || !strings.Contains(problems, "CHECKSUM INCORRECT") || strings.Contains(problems, "\n") {
		t.Fatalf("frames %d, problems:\n%s", frames, problems)
	}
}

func TestCaptureReadAndWrite(t *testing.T) {
	ch := link.NewChannel(link.ChannelConfig{})
	capt := link.NewCapture(ch)
	defer capt.Close()
	path := filepath.Join(t.TempDir(), "cap.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sess, err := capt.Start(f, link.CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := capt.Start(f, link.CaptureOptions{}); !errors.Is(err, link.ErrCaptureActive) {
		t.Fatalf("second Start: %v", err)
	}
	var want [][]byte
	// Received: three packets.
	for i := range 3 {
		pkt := tcpSegment(uint32(7*i), []byte("inbound"), false)
		want = append(want, pkt)
		ch.Inbound() <- link.Frame{Data: pkt}
	}
	in := slots(capt, 8)
	for got := 0; got < 3; {
		n, err := capt.Read(in)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	// Sent: one complete, one leaving its checksum to the device.
	complete := tcpSegment(21, []byte("outbound"), false)
	partial := tcpSegment(29, []byte("outbound, checksum left to the device"), true)
	p := packetOf(partial)
	p.Flags = link.FlagNeedsChecksum
	if _, err := capt.Write([]link.Packet{packetOf(complete), p}); err != nil {
		t.Fatal(err)
	}
	fixed := tcpSegment(29, []byte("outbound, checksum left to the device"), false)
	want = append(want, complete, fixed)
	if sess.Count() != 5 {
		t.Fatalf("count %d", sess.Count())
	}
	if err := sess.Stop(); err != nil {
		t.Fatal(err)
	}
	// The device itself got the packet as written, checksum untouched.
	<-ch.Outbound()
	if f := <-ch.Outbound(); !bytes.Equal(f.Data, partial) {
		t.Fatal("capture changed the packet it passed on")
	}
	got := readPcap(t, path)
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
	tsharkCheck(t, path, 5)
	// After Stop a new session may start.
	s2, err := capt.Start(&bytes.Buffer{}, link.CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Stop()
}

func TestCaptureLimit(t *testing.T) {
	ch := link.NewChannel(link.ChannelConfig{Queue: 16})
	capt := link.NewCapture(ch)
	defer capt.Close()
	var buf bytes.Buffer
	sess, err := capt.Start(&buf, link.CaptureOptions{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		capt.Write([]link.Packet{packetOf(tcpSegment(uint32(i), nil, false))})
	}
	select {
	case <-sess.Done():
	case <-time.After(time.Second):
		t.Fatal("session not done after its limit")
	}
	if sess.Count() != 3 || capt.Session() != nil || sess.Err() != nil {
		t.Fatalf("count %d session %v err %v", sess.Count(), capt.Session(), sess.Err())
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d records, want 3", n)
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestCaptureWriteError(t *testing.T) {
	ch := link.NewChannel(link.ChannelConfig{Queue: 16})
	capt := link.NewCapture(ch)
	defer capt.Close()
	sess, err := capt.Start(&failingWriter{n: 1}, link.CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	capt.Write([]link.Packet{packetOf(tcpSegment(1, nil, false))})
	<-sess.Done()
	if sess.Err() == nil || capt.Session() != nil {
		t.Fatalf("err %v", sess.Err())
	}
	// The device keeps working without the capture.
	if _, err := capt.Write([]link.Packet{packetOf(tcpSegment(2, nil, false))}); err != nil {
		t.Fatal(err)
	}
}
