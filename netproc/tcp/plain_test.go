package tcp

import (
	"reflect"
	"testing"
	"unsafe"

	"saturn/netproc/tcp/seqnum"
)

// TestPlainData checks that the state types hold no pointers, slices,
// maps, strings, channels, functions or interfaces, so that they can live
// in shared memory and outlive the process that wrote them, and that a
// connection stays small (the memory per idle connection, beyond its
// buffers, is the size of Conn).
func TestPlainData(t *testing.T) {
	for _, v := range []any{Conn{}, Listener{}, Stats{}, CCState{}} {
		if err := plain(reflect.TypeOf(v), reflect.TypeOf(v).Name()); err != "" {
			t.Error(err)
		}
	}
	// usertcp's connection table holds a Conn in a record of 2304 bytes
	// after a 64-byte header (its table.go fails to compile beyond).
	if n := unsafe.Sizeof(Conn{}); n > 2240 {
		t.Errorf("Conn is %d bytes, want at most 2240", n)
	} else {
		t.Logf("Conn is %d bytes, Listener %d, Stats %d", n, unsafe.Sizeof(Listener{}), unsafe.Sizeof(Stats{}))
	}
}

func plain(ty reflect.Type, path string) string {
	switch ty.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return ""
	case reflect.Array:
		return plain(ty.Elem(), path+"[]")
	case reflect.Struct:
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			if err := plain(f.Type, path+"."+f.Name); err != "" {
				return err
			}
		}
		return ""
	}
	return path + " is a " + ty.Kind().String()
}

// TestCheckDetectsCorruption flips fields of a healthy connection, as a
// crash in the middle of a write to shared memory might, and expects Check
// to refuse the result.
func TestCheckDetectsCorruption(t *testing.T) {
	p := newPair([2]Config{{}, {}}, [2]int{4000, 4000}, [2]int{4000, 4000}, CookiesWhenFull)
	p.settle()
	p.send(0, 3000)
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
	good := p.conns[0]
	for name, corrupt := range map[string]func(c *Conn){
		"state":        func(c *Conn) { c.state = 99 },
		"una>nxt":      func(c *Conn) { c.snd.una = c.snd.nxt + 5 },
		"buffered":     func(c *Conn) { c.snd.buffered = c.sndSize + 1 },
		"readable":     func(c *Conn) { c.rcv.readable = c.rcvSize + 1 },
		"window":       func(c *Conn) { c.rcv.adv = c.rcv.nxt + seqnum.Value(c.rcvSize) + 1 },
		"ooo count":    func(c *Conn) { c.rcv.nOOO = 200 },
		"ooo order":    func(c *Conn) { c.rcv.nOOO = 1; c.rcv.ooo[0] = oooRange{start: c.rcv.nxt + 10, end: c.rcv.nxt + 5} },
		"sack outside": func(c *Conn) { c.sack.n = 1; c.sack.blocks[0] = seqRange{c.snd.nxt, c.snd.nxt + 10} },
		"nxt>data":     func(c *Conn) { c.snd.nxt = c.dataEnd() + 10 },
		"cwnd":         func(c *Conn) { c.cc.Cwnd = 0 },
		"mss":          func(c *Conn) { c.snd.mss = 0 },
		"mss raised":   func(c *Conn) { c.snd.mss = c.cfg.MSS + 1 },
		"probe":        func(c *Conn) { c.pmtu.max, c.pmtu.probeMSS = c.snd.mss, c.snd.mss },
		"cc":           func(c *Conn) { c.cc.Algo = 9 },
		"bbr snaps":    func(c *Conn) { c.cc.bbr.nSnaps = 200 },
		"bbr mode":     func(c *Conn) { c.cc.bbr.mode = 7 },
	} {
		c := good
		corrupt(&c)
		if err := c.Check(); err == nil {
			t.Errorf("%s: corruption not detected", name)
		}
	}
}
