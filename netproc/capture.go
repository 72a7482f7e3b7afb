package netproc

import (
	"fmt"
	"os"
	"sync"

	"saturn/proto"
)

// Capturer is a backend that can record the packets it sends and receives
// (the usertcp backend; the kernel backend's packets are the kernel's).
// Capture writes a pcap stream to f until limit packets (0: none) or stop,
// then closes f and calls done. It is safe from any goroutine.
type Capturer interface {
	Capture(f *os.File, limit int, done func(packets int, err error)) (stop func(), err error)
}

// captures are the captures running, by the supervisor's ID.
type captures struct {
	mu   sync.Mutex // guards stop
	stop map[uint64]func()
}

// Control implements serverkit.Controller: the supervisor's capture
// requests. It runs on the control link's reader and does not block.
func (h *Handler) Control(r *proto.Request) bool {
	switch r.Type {
	case proto.MsgCapture:
		h.startCapture(r)
	case proto.MsgCaptureStop:
		var m proto.CaptureStop
		if err := r.Decode(&m); err != nil {
			r.Error(proto.CodeBadRequest, err.Error())
			return true
		}
		h.capt.mu.Lock()
		stop := h.capt.stop[m.ID]
		h.capt.mu.Unlock()
		if stop != nil {
			stop()
		}
		r.Reply(proto.MsgOK, nil)
	default:
		return false
	}
	return true
}

func (h *Handler) startCapture(r *proto.Request) {
	var m proto.Capture
	if err := r.Decode(&m); err != nil || len(r.Files) != 1 || m.Count < 0 {
		for _, f := range r.Files {
			f.Close()
		}
		r.Error(proto.CodeBadRequest, "capture: want a packet count of 0 or more and one descriptor, the file to write")
		return
	}
	f := r.Files[0]
	cp, ok := h.be.(Capturer)
	if !ok {
		f.Close()
		r.Error(proto.CodeFailed, fmt.Sprintf("capture needs netproc's own stack (backend = \"usertcp\"); this netproc runs the %s backend, whose packets are the kernel's (use tcpdump)", h.be.Name()))
		return
	}
	stop, err := cp.Capture(f, m.Count, func(n int, err error) {
		h.capt.mu.Lock()
		delete(h.capt.stop, m.ID)
		h.capt.mu.Unlock()
		rep := proto.CaptureReply{Packets: n}
		if err != nil {
			rep.Error = err.Error()
		}
		r.Reply(proto.MsgCaptureReply, &rep)
	})
	if err != nil {
		r.Error(proto.CodeFailed, err.Error())
		return
	}
	h.capt.mu.Lock()
	if h.capt.stop == nil {
		h.capt.stop = map[uint64]func(){}
	}
	h.capt.stop[m.ID] = stop
	h.capt.mu.Unlock()
	h.log.Info("capture started", "id", m.ID, "count", m.Count)
}
