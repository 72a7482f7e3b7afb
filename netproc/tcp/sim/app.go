package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"saturn/netproc/tcp"
)

// runApp is the scripted application: write everything, shut down, read
// to EOF (checking every byte), then close.
func (w *world) runApp(ep *endpoint) {
	if ep.appClosed || ep.err != nil || ep.removed {
		return
	}
	c := &ep.conn
	if st := c.State(); st == tcp.StateSynSent || st == tcp.StateSynReceived {
		return
	}
	for ep.sent < len(ep.send) && c.SendSpace() > 0 && !ep.removed {
		n := 1 + w.rng.IntN(min(len(ep.send)-ep.sent, 8192))
		if err := w.step(ep, tcp.Input{Kind: tcp.InSend, Data: ep.send[ep.sent : ep.sent+n]}); err != nil {
			return
		}
		if w.out.N == 0 {
			break
		}
		ep.sent += w.out.N
	}
	if ep.sent == len(ep.send) && !ep.shutdown && !ep.removed {
		ep.shutdown = true
		if err := w.step(ep, tcp.Input{Kind: tcp.InShutdown}); err != nil {
			return
		}
	}
	size := 65536
	if w.sc.ReadChunk > 0 {
		size = 1 + w.rng.IntN(w.sc.ReadChunk)
	}
	buf := make([]byte, size)
	for !ep.removed {
		err := w.step(ep, tcp.Input{Kind: tcp.InRead, Data: buf})
		n := w.out.N
		if ep.got+n > len(ep.expect) {
			w.err = fmt.Errorf("%s: received more than the %d bytes sent", ep.name, len(ep.expect))
			return
		}
		if !bytes.Equal(buf[:n], ep.expect[ep.got:ep.got+n]) {
			w.err = fmt.Errorf("%s: corrupt data at offset %d", ep.name, ep.got)
			return
		}
		ep.got += n
		if errors.Is(err, io.EOF) {
			ep.eof = true
			break
		}
		if err != nil || n == 0 {
			break
		}
		if w.sc.ReadChunk > 0 {
			// A slow reader: come back later for the rest.
			if c.Readable() > 0 || c.PeerClosed() {
				w.wakeApp(ep)
			}
			break
		}
	}
	if ep.eof && ep.shutdown && !ep.appClosed && !ep.removed {
		ep.appClosed = true
		w.step(ep, tcp.Input{Kind: tcp.InClose})
	}
}
