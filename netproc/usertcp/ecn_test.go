package usertcp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"saturn/netproc/tcp"
	"saturn/netproc/usertcp"
)

// TestECNWithLinux: with Config.Conn.ECN, saturn's app dials a kernel
// listener in the namespace. A capture there (tshark) must show saturn's
// SYN offering ECN (ECE and CWR), Linux agreeing in its SYN-ACK (ECE; its
// net.ipv4.tcp_ecn = 2 accepts ECN when asked), and saturn's data going
// out ECN-capable, ECT(0), in the IP header (RFC 3168, 5 and 6.1.1).
// Without ECN: none of it.
func TestECNWithLinux(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("no tshark (scripts/deps.sh installs it)")
	}
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("ecn=%v", on), func(t *testing.T) {
			e := startStack(t, usertcp.Config{Conn: tcp.Config{ECN: on}})
			ln, err := e.Listen(fmt.Sprintf("%s:0", e.Peer))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// tshark in the namespace, ready once it has seen a ping.
			capture := exec.CommandContext(ctx, "ip", "netns", "exec", e.NS, "tshark", "-l", "-n", "-i", "any",
				"-T", "fields", "-E", "separator=,", "-e", "ip.src", "-e", "tcp.flags", "-e", "ip.dsfield.ecn", "-e", "tcp.len",
				"icmp or tcp port "+port)
			stdout, _ := capture.StdoutPipe()
			if err := capture.Start(); err != nil {
				t.Fatal(err)
			}
			defer capture.Wait()
			defer capture.Process.Kill()
			lines := make(chan string, 1000)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					select {
					case lines <- sc.Text():
					default: // nobody reads any more
					}
				}
				close(lines)
			}()
			for ready := false; !ready; {
				e.Exec(ctx, "ping", "-c", "1", "-W", "1", e.Addr.String())
				for drained := false; !drained; {
					select {
					case l, ok := <-lines:
						if !ok {
							t.Fatal("tshark ended")
						}
						ready = ready || strings.HasPrefix(l, e.Addr.String()+",,")
					default:
						drained = true
					}
				}
				if ctx.Err() != nil {
					t.Fatal("tshark never saw a ping")
				}
			}
			acc := acceptOne(ln)
			c, err := e.App.Dial(ctx, "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			k := <-acc
			defer k.Close()
			go io.WriteString(c, strings.Repeat("x", 10000))
			k.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(k, make([]byte, 10000)); err != nil {
				t.Fatal(err)
			}
			// Wait for saturn's SYN, Linux's SYN-ACK and saturn's first data.
			var out []string
			for seen := 0; seen < 3; {
				select {
				case l := <-lines:
					out = append(out, l)
					if f := strings.Split(l, ","); len(f) == 4 && f[1] != "" {
						flags, _ := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 16)
						if flags&0x02 != 0 || f[0] == e.Addr.String() && f[3] != "0" {
							seen++
						}
					}
				case <-ctx.Done():
					t.Fatalf("capture incomplete:\n%s", strings.Join(out, "\n"))
				}
			}
			var synOffer, synAckAgrees, dataECT, dataSeen bool
			for _, line := range out {
				f := strings.Split(line, ",")
				if len(f) < 4 {
					continue
				}
				flags, _ := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 16)
				ecnField, _ := strconv.Atoi(f[2])
				n, _ := strconv.Atoi(f[3])
				fromSaturn := f[0] == e.Addr.String()
				switch {
				case fromSaturn && flags&0x12 == 0x02: // SYN
					synOffer = flags&0xc0 == 0xc0
				case !fromSaturn && flags&0x12 == 0x12: // SYN-ACK
					synAckAgrees = flags&0xc0 == 0x40
				case fromSaturn && n > 0 && !dataSeen:
					dataSeen, dataECT = true, ecnField == 2
				}
			}
			if synOffer != on || synAckAgrees != on || dataECT != on {
				t.Errorf("SYN offers ECN %v, SYN-ACK agrees %v, data ECT(0) %v; want %v:\n%s", synOffer, synAckAgrees, dataECT, on, strings.Join(out, "\n"))
			}
		})
	}
}
