package tcp

import (
	"io"
	"time"
)

// appSend queues data for sending (RFC 9293, 3.10.2). It takes what fits in
// the send buffer and reports that count in Output.N; the application
// waits for WakeWritable to queue the rest.
func (c *Conn) appSend(e *env, data []byte) error {
	if err := c.usable(); err != nil {
		return err
	}
	switch c.state {
	case StateSynSent, StateSynReceived, StateEstablished, StateCloseWait:
	default:
		return ErrWriteClosed
	}
	if c.snd.finQueued {
		return ErrWriteClosed
	}
	n := min(uint32(len(data)), c.sndSize-c.snd.buffered)
	off := (c.snd.head + c.snd.buffered) % c.sndSize
	k := copy(e.snd[off:], data[:n])
	copy(e.snd, data[k:n])
	c.snd.buffered += n
	e.out.N = int(n)
	c.output(e)
	return nil
}

// usable returns the error for an application call on a connection that
// was closed by the application or failed.
func (c *Conn) usable() error {
	if c.appClosed {
		return ErrClosed
	}
	if c.state == StateClosed {
		if err := c.err.err(); err != nil {
			return err
		}
		return ErrNotConnected
	}
	return nil
}

// appRead copies readable bytes into dst and consumes them. With nothing to
// read it returns io.EOF after the peer's FIN, the failure after an error,
// and otherwise nil with Output.N zero: the application waits for
// WakeReadable.
func (c *Conn) appRead(e *env, dst []byte) error {
	if c.appClosed {
		return ErrClosed
	}
	if c.rcv.readable == 0 {
		switch {
		case c.rcv.finRcvd:
			return io.EOF
		case c.err != errNone:
			return c.err.err()
		case c.state == StateClosed:
			return ErrNotConnected
		}
		return nil
	}
	a, b := c.ReadableViews(e.rcv)
	n := copy(dst, a)
	n += copy(dst[n:], b)
	e.out.N = n
	c.consume(e, uint32(n))
	return nil
}

// appConsume releases n bytes the application read through ReadableViews.
func (c *Conn) appConsume(e *env, n int) error {
	if c.appClosed {
		return ErrClosed
	}
	if n < 0 || uint32(n) > c.rcv.readable {
		return ErrInvalid
	}
	c.consume(e, uint32(n))
	return nil
}

// consume frees receive-buffer space and sends a window update if the
// window opened enough to matter, or the ACK that scheduleACK held for
// this read.
func (c *Conn) consume(e *env, n uint32) {
	c.rcv.head = (c.rcv.head + n) % c.rcvSize
	c.rcv.readable -= n
	if n > 0 && (c.rcv.unacked >= 2 || c.windowUpdateDue()) {
		c.sendACK(e)
	}
}

// appShutdown queues a FIN after the data already queued (RFC 9293,
// 3.10.4). Before the handshake completes the FIN waits for it.
func (c *Conn) appShutdown(e *env) error {
	if err := c.usable(); err != nil {
		return err
	}
	c.queueFIN(e)
	return nil // already shut down: nothing more to do
}

// queueFIN queues a FIN after the data already queued (RFC 9293, 3.10.4):
// ESTABLISHED and CLOSE-WAIT send it at once, the handshake's states when
// it completes; in the other states the FIN is already queued or sent.
func (c *Conn) queueFIN(e *env) {
	switch c.state {
	case StateSynSent, StateSynReceived:
		c.snd.finQueued = true
	case StateEstablished:
		c.snd.finQueued = true
		c.setState(e, StateFinWait1)
		c.output(e)
	case StateCloseWait:
		c.snd.finQueued = true
		c.setState(e, StateLastAck)
		c.output(e)
	}
}

// appClose is the application's close (RFC 9293, 3.10.4). The connection
// lives on, orphaned, until its FIN is acknowledged and TIME-WAIT ends; the
// caller frees it when Done reports true. Closing with unread data resets
// the connection instead, so the peer learns that data was lost
// (RFC 2525, 2.17, as Linux does).
func (c *Conn) appClose(e *env) error {
	if c.appClosed {
		return ErrClosed
	}
	c.appClosed = true
	switch c.state {
	case StateClosed:
		return nil
	case StateSynSent:
		c.closed(e, errNone) // delete the TCB
		return nil
	}
	if c.rcv.readable > 0 {
		e.st.AbortOnClose++
		c.sendRST(e)
		c.closed(e, errNone)
		return nil
	}
	if c.state == StateFinWait2 {
		c.tm.close = e.now.Add(c.cfg.FinWait2Timeout)
	} else {
		c.queueFIN(e) // SYN-SENT is gone above
	}
	return nil
}

// appAbort resets the connection (RFC 9293, 3.10.5) and releases it.
func (c *Conn) appAbort(e *env) error {
	if c.appClosed {
		return ErrClosed
	}
	c.appClosed = true
	switch c.state {
	case StateSynReceived, StateEstablished, StateFinWait1, StateFinWait2, StateCloseWait:
		e.st.AbortOnClose++
		c.sendRST(e)
	}
	c.closed(e, errNone)
	return nil
}

// appSetOption changes a setting of an open connection. Settings wanted
// from the first segment on go in ConnectParams.Config or the listener's
// Config instead.
func (c *Conn) appSetOption(e *env, opt Option, v int64) error {
	if err := c.usable(); err != nil {
		return err
	}
	switch opt {
	case OptNoDelay:
		c.cfg.NoDelay = v != 0
		if c.cfg.NoDelay {
			c.output(e) // what Nagle held back may go now
		}
	case OptKeepAlive:
		c.cfg.KeepAlive = v != 0
		c.heardFromPeer(e)
	case OptKeepIdle, OptKeepInterval:
		if v <= 0 {
			return ErrInvalid
		}
		if opt == OptKeepIdle {
			c.cfg.KeepIdle = time.Duration(v)
		} else {
			c.cfg.KeepInterval = time.Duration(v)
		}
		c.heardFromPeer(e)
	case OptKeepCount:
		if v <= 0 || v > 255 {
			return ErrInvalid
		}
		c.cfg.KeepCount = uint8(v)
	default:
		return ErrInvalid
	}
	return nil
}
