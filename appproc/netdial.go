package appproc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"saturn/proto"
)

// dialTCP resolves address and connects to its addresses in turn, as
// package net does without its parallel "happy eyeballs" race, until one
// answers or ctx ends.
func dialTCP(ctx context.Context, ch *Channel, network, address string) (*TCPConn, error) {
	addrs, err := resolve(ctx, network, address, false)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var first error
	for _, ap := range addrs {
		c, err := connectTCP(ctx, ch, network, ap)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// connectTCP makes one connection. The context's deadline becomes
// netproc's connect timeout, and its cancellation cancels the connect.
func connectTCP(ctx context.Context, ch *Channel, network string, ap netip.AddrPort) (*TCPConn, error) {
	fail := func(err error) error { return opError("dial", network, nil, tcpAddr(ap), err) }
	req, err := connectRequest(ap)
	if err != nil {
		return nil, fail(err)
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, fail(context.DeadlineExceeded)
		}
	}
	req.Args[0] = uint64(timeout)
	res := make(chan acceptResult, 1)
	id, err := ch.start(req, sendAccepted(res), ctx.Done(), nil)
	if errors.Is(err, errAborted) {
		return nil, fail(ctx.Err())
	}
	if err != nil {
		return nil, fail(err)
	}
	var r acceptResult
	select {
	case r = <-res:
	case <-ctx.Done():
		ch.Cancel(id)
		if r = <-res; r.err == nil {
			netOp(ch, &Request{Op: proto.OpClose, Handle: r.h}) // connected just as we gave up
		}
		return nil, fail(ctx.Err())
	}
	if r.err != nil {
		if ctx.Err() != nil {
			return nil, fail(ctx.Err())
		}
		if dl, ok := ctx.Deadline(); ok && errors.Is(r.err, syscall.ETIMEDOUT) && time.Until(dl) < time.Millisecond {
			// netproc's timeout is the context's deadline, and its timer
			// can beat the context's own.
			return nil, fail(context.DeadlineExceeded)
		}
		return nil, fail(r.err)
	}
	return newTCPConn(ch, r.h, r.local, r.peer), nil
}

// connectRequest is the OpConnect of ap: its address in the entry itself
// and the address pair back in a buffer the server chooses once connected
// (proto.FlagSelect), so that a connect in progress, however long it
// takes, holds no buffer. Args[0] is the caller's timeout (a replay after
// netproc's death starts it again). Under netproc's resume the connect is
// replayed if netproc dies with it (Request.Resume): the next incarnation
// finishes the connection the dead one began for it, or begins one.
func connectRequest(ap netip.AddrPort) (*Request, error) {
	off, a1, a2, err := proto.InlineSockAddr(ap)
	if err != nil {
		return nil, err
	}
	return &Request{Op: proto.OpConnect, Flags: proto.FlagSelect, Room: proto.AddrPairSize, Offset: off, Args: [3]uint64{0, a1, a2}, Resume: true}, nil
}
