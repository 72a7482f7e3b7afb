package appproc

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"saturn/proto"
)

// Events is the event-style socket API: the app's own loop submits
// operations on netproc's channel (Listen, Accept, Connect, Recv, Send,
// Shutdown, Close) and reaps their completions (Wait or Poll), with no
// goroutine per connection, as the seed's event-driven servers did. Each
// operation carries a Tag of the app's choosing; a Tag that is a
// EventCallback is called by Run instead of being returned.
//
// An idle connection costs what its Recv costs: an entry in netproc and a
// record here, no call slot and no buffer (the receive chooses a buffer
// once data has come: see Channel). So an app may keep a Recv waiting on
// every connection it holds, as an epoll loop keeps every socket
// registered.
//
// Submitting is safe from any goroutine, reaping from one at a time.
// Operations are not replayed if netproc restarts: they complete with
// ECONNRESET (see TCPConn for what a restart means to a socket).
type Events struct {
	ch *Channel

	mu    sync.Mutex
	ready []Event
	wake  chan struct{} // a token when ready went from empty to not
}

// Handle names a socket in netproc. It is meaningful only on the channel
// that made it.
type Handle uint64

// Event is a completed operation.
type Event struct {
	Op  proto.Op
	Tag any
	ID  uint64 // the operation's ID, as returned when it was submitted
	// Handle is the socket the operation was on; for Listen, Accept and
	// Connect, the new socket.
	Handle Handle
	// N is the count of bytes sent or received; a Recv with N == 0 and no
	// error is the end of the stream.
	N int
	// Data is the received bytes: a prefix of the buffer given to Recv.
	Data []byte
	// Local and Peer are the socket's addresses (Listen: Local; Accept and
	// Connect: both).
	Local, Peer netip.AddrPort
	// Adopted: this Listen took over the listener the app's previous
	// incarnation left, with what queued meanwhile.
	Adopted bool
	// Err is the errno netproc answered (a syscall.Errno), or why the
	// operation could not complete.
	Err error
}

// EventCallback is a Tag that Run calls with its event.
type EventCallback func(*Event)

// Events opens the event API on the app's netproc channel.
func (a *App) Events() (*Events, error) {
	ch, err := a.Channel("netproc")
	if err != nil {
		return nil, err
	}
	return NewEvents(ch), nil
}

// NewEvents opens the event API on ch, a channel to netproc.
func NewEvents(ch *Channel) *Events {
	return &Events{ch: ch, wake: make(chan struct{}, 1)}
}

// BufferSize is the most one Send or Recv moves.
func (e *Events) BufferSize() int { return e.ch.BufferSize() }

// post queues ev for reaping. It runs on the dispatcher.
func (e *Events) post(ev Event) {
	e.mu.Lock()
	e.ready = append(e.ready, ev)
	first := len(e.ready) == 1
	e.mu.Unlock()
	if first {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

func (e *Events) submit(req *Request, ev Event, fill func(*Event, Response, []byte)) (uint64, error) {
	return e.ch.Start(context.Background(), req, func(resp Response, data []byte, err error) {
		ev := ev
		ev.ID, ev.Err = resp.ID, err
		if err == nil && fill != nil {
			fill(&ev, resp, data)
		}
		e.post(ev)
	})
}

// Listen opens a listener on addr; flags are proto.ListenFlag bits.
func (e *Events) Listen(addr netip.AddrPort, backlog int, flags proto.ListenFlag, tag any) (uint64, error) {
	in := make([]byte, proto.SockAddrSize)
	if err := proto.EncodeSockAddr(in, addr); err != nil {
		return 0, err
	}
	req := &Request{Op: proto.OpListen, In: in, Args: [3]uint64{uint64(max(backlog, 0)), uint64(flags)}}
	return e.submit(req, Event{Op: proto.OpListen, Tag: tag}, func(ev *Event, resp Response, data []byte) {
		ev.Handle = Handle(resp.Result)
		ev.Local, _ = proto.DecodeSockAddr(data)
		ev.Adopted = resp.Aux == proto.ListenAdopted
	})
}

// Accept takes the next connection on listener ln.
func (e *Events) Accept(ln Handle, tag any) (uint64, error) {
	req := &Request{Op: proto.OpAccept, Handle: uint64(ln), Room: proto.AddrPairSize, Flags: proto.FlagSelect}
	return e.submit(req, Event{Op: proto.OpAccept, Tag: tag}, fillPair)
}

// Connect connects to addr, giving up after timeout (0: the kernel's own).
func (e *Events) Connect(addr netip.AddrPort, timeout time.Duration, tag any) (uint64, error) {
	req, err := connectRequest(addr)
	if err != nil {
		return 0, err
	}
	req.Args[0] = uint64(max(timeout, 0))
	return e.submit(req, Event{Op: proto.OpConnect, Tag: tag}, fillPair)
}

func fillPair(ev *Event, resp Response, data []byte) {
	ev.Handle = Handle(resp.Result)
	ev.Local, ev.Peer, _ = proto.DecodeAddrPair(data)
}

// Recv receives into buf (at most BufferSize bytes of it). buf belongs to
// the event API until the event is reaped: the data is copied into it as
// the completion arrives. With a nil buf, Recv takes up to RecvSize bytes
// into a slice made for them when they arrive, which the event's Data
// then is: a connection waiting to receive then holds no memory of the
// app's at all.
func (e *Events) Recv(h Handle, buf []byte, tag any) (uint64, error) {
	room := min(len(buf), e.ch.BufferSize())
	if buf == nil {
		room = min(RecvSize, e.ch.BufferSize())
	} else if len(buf) == 0 {
		return 0, fmt.Errorf("appproc: Recv into an empty buffer")
	}
	req := &Request{Op: proto.OpRecv, Handle: uint64(h), Room: room, Flags: proto.FlagSelect}
	return e.submit(req, Event{Op: proto.OpRecv, Tag: tag, Handle: h}, func(ev *Event, resp Response, data []byte) {
		if buf == nil {
			ev.Data = append([]byte(nil), data...)
			ev.N = len(ev.Data)
			return
		}
		ev.N = copy(buf, data)
		ev.Data = buf[:ev.N]
	})
}

// RecvSize is the most a Recv with a nil buffer takes at once.
const RecvSize = 16 << 10

// Send sends data (at most BufferSize bytes), which is copied before Send
// returns. It completes when netproc has handed all of it to the network.
func (e *Events) Send(h Handle, data []byte, tag any) (uint64, error) {
	req := &Request{Op: proto.OpSend, Handle: uint64(h), In: data}
	return e.submit(req, Event{Op: proto.OpSend, Tag: tag, Handle: h}, func(ev *Event, resp Response, _ []byte) {
		ev.N = int(resp.Result)
	})
}

// Shutdown shuts down reading, writing or both (proto.ShutRead, ...).
func (e *Events) Shutdown(h Handle, how int, tag any) (uint64, error) {
	req := &Request{Op: proto.OpShutdown, Handle: uint64(h), Args: [3]uint64{uint64(how)}}
	return e.submit(req, Event{Op: proto.OpShutdown, Tag: tag, Handle: h}, nil)
}

// Close closes h; what waits on it completes with ECANCELED.
func (e *Events) Close(h Handle, tag any) (uint64, error) {
	req := &Request{Op: proto.OpClose, Handle: uint64(h)}
	return e.submit(req, Event{Op: proto.OpClose, Tag: tag, Handle: h}, nil)
}

// Cancel asks netproc to cancel the operation id; it completes either way.
func (e *Events) Cancel(id uint64) { e.ch.Cancel(id) }

// Poll appends the completed events to into, without waiting.
func (e *Events) Poll(into []Event) []Event {
	e.mu.Lock()
	into = append(into, e.ready...)
	clear(e.ready)
	e.ready = e.ready[:0]
	e.mu.Unlock()
	return into
}

// Wait appends the completed events to into, waiting until there is at
// least one or ctx ends.
func (e *Events) Wait(ctx context.Context, into []Event) ([]Event, error) {
	for {
		n := len(into)
		if into = e.Poll(into); len(into) > n {
			return into, nil
		}
		select {
		case <-e.wake:
		case <-ctx.Done():
			return into, ctx.Err()
		case <-e.ch.done:
			return e.Poll(into), e.ch.deadErr()
		}
	}
}

// Run reaps events until ctx ends, calling the Tag of each that is an
// EventCallback, and fallback (if not nil) with the others.
func (e *Events) Run(ctx context.Context, fallback func(*Event)) error {
	var batch []Event
	for {
		var err error
		batch, err = e.Wait(ctx, batch[:0])
		for i := range batch {
			ev := &batch[i]
			if cb, ok := ev.Tag.(EventCallback); ok {
				cb(ev)
			} else if fallback != nil {
				fallback(ev)
			}
		}
		if err != nil {
			return err
		}
	}
}
