package appproc

import "fmt"

// A reservation is a slot and a buffer taken ahead of a request by a caller
// that fills the buffer in place, instead of having start copy Request.In
// into it: TCPConn.ReadFrom reads a file straight into the buffer it then
// sends, so that the bytes are copied once in the app rather than twice.
//
// The caller owns data until it ends the reservation, with startReserved
// (the buffer goes to the server with the request) or unreserve. The region
// stays mapped until then, even if the channel is closed meanwhile: a file
// read may still be copying into data from another channel's dispatcher.
type reservation struct {
	buf  uint32
	data []byte // the whole buffer, in the channel's shared region
}

// reserve waits for a slot and a buffer, as start does (abort1 and abort2
// end the wait with errAborted), and allocates the buffer to the caller.
func (c *Channel) reserve(abort1, abort2 <-chan struct{}) (reservation, error) {
	if err := c.takeRoom(true, true, abort1, abort2); err != nil {
		return reservation{}, err
	}
	return c.allocReserved()
}

// tryReserve is reserve without the wait: ok is false when the channel has
// no free slot or buffer at the moment (or is dead).
func (c *Channel) tryReserve() (reservation, bool) {
	select {
	case <-c.slots:
	default:
		return reservation{}, false
	}
	select {
	case <-c.bufs:
	default:
		c.slots <- struct{}{}
		return reservation{}, false
	}
	r, err := c.allocReserved()
	return r, err == nil
}

// allocReserved allocates the buffer of a reservation whose tokens the
// caller took; on failure it gives them back.
func (c *Channel) allocReserved() (reservation, error) {
	c.mu.Lock()
	if c.dead != nil || c.closing {
		err := c.dead
		if err == nil {
			err = ErrChannelClosed
		}
		c.mu.Unlock()
		c.giveRoom(true, true)
		return reservation{}, err
	}
	b, err := c.end.Pool.Alloc()
	if err != nil {
		c.mu.Unlock()
		c.giveRoom(true, true)
		return reservation{}, fmt.Errorf("appproc: %w", err) // cannot happen: we hold a token
	}
	c.reserved++
	data := c.end.Pool.Bytes(b)
	c.mu.Unlock()
	return reservation{buf: b, data: data}, nil
}

// unreserve gives back a reservation that will not be submitted.
func (c *Channel) unreserve(r reservation) {
	c.mu.Lock()
	c.end.Pool.Free(r.buf)
	c.endReservation()
	c.mu.Unlock()
	c.giveRoom(true, true)
}

// startReserved starts req, as start does, with the reservation's buffer
// carrying its first n bytes (req.In and req.Room must be unset). It ends
// the reservation whatever happens.
func (c *Channel) startReserved(req *Request, r reservation, n int, cb Callback) (uint64, error) {
	if n < 0 || n > len(r.data) || len(req.In) > 0 || req.Room > 0 || len(req.Out) > 0 {
		c.unreserve(r)
		return 0, fmt.Errorf("appproc: %s request of %d bytes in a reserved buffer of %d", req.Op, n, len(r.data))
	}
	cl := &call{req: *req, owner: true, buf: r.buf, filled: uint32(n), sink: cb, slot: true}
	err := c.submit(cl, true) // on failure, submit has freed the buffer
	c.mu.Lock()
	c.endReservation()
	c.mu.Unlock()
	if err != nil {
		c.giveRoom(true, true)
		return 0, err
	}
	return cl.sub.UserData, nil
}

// endReservation counts a reservation out, unmapping the region if close
// left that to the last one. mu held.
func (c *Channel) endReservation() {
	c.reserved--
	if c.reserved == 0 && c.unmapLater {
		c.unmapLater = false
		c.region.Close()
	}
}
