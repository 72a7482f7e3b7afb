package tcp

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"saturn/netproc/tcp/seqnum"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the golden scripts in testdata/")

// TestScripts runs the golden scripts in testdata/: each command (an input
// segment, a timer advance, an application call) is followed by the
// segments and wake-ups it produced. Run with -rewrite to regenerate the
// expected output after a deliberate change, and review the diff.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runScript(t, f)
		})
	}
}

// block is one command of a script and its expected output.
type block struct {
	pre    []string // comments and blank lines before the command
	cmd    string
	line   int
	expect string
}

func parseScript(t *testing.T, path string) ([]block, []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var blocks []block
	var pre []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			continue
		}
		b := block{pre: pre, cmd: l, line: i + 1}
		pre = nil
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("%s:%d: command without ---- line", path, b.line)
		}
		var out []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			out = append(out, lines[i])
		}
		b.expect = strings.Join(out, "\n")
		blocks = append(blocks, b)
	}
	return blocks, pre
}

func runScript(t *testing.T, path string) {
	blocks, trailer := parseScript(t, path)
	h := newHarness()
	var rewritten strings.Builder
	for _, b := range blocks {
		got := strings.TrimRight(h.run(t, b.cmd), "\n")
		if *rewrite {
			for _, p := range b.pre {
				rewritten.WriteString(p + "\n")
			}
			rewritten.WriteString(b.cmd + "\n----\n")
			if got != "" {
				rewritten.WriteString(got + "\n")
			}
			rewritten.WriteString("\n")
			continue
		}
		if got != b.expect {
			t.Errorf("%s:%d: %s\n--- got:\n%s\n--- want:\n%s", path, b.line, b.cmd, got, b.expect)
		}
	}
	if *rewrite {
		for _, p := range trailer {
			if strings.TrimSpace(p) != "" {
				rewritten.WriteString(p + "\n")
			}
		}
		s := strings.TrimRight(rewritten.String(), "\n") + "\n"
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// harness holds one connection (or a listener and its child) under test.
type harness struct {
	now      Time
	start    Time
	c        Conn
	haveConn bool
	l        Listener
	snd, rcv []byte
	stats    Stats
	tuple    Tuple
	lastTS   uint32 // TSval of the last segment we sent
	lastISS  uint32 // sequence number of the last SYN we sent
	pattern  byte
	sent     []sentSeg // data segments we sent, for peer
}

// sentSeg is a data segment the connection sent, and when.
type sentSeg struct {
	at  Time
	end seqnum.Value
}

func newHarness() *harness {
	h := &harness{now: Time(time.Second), start: 0}
	h.tuple = Tuple{LocalPort: 80, RemotePort: 40000}
	h.tuple.LocalAddr[0], h.tuple.RemoteAddr[0] = 10, 10
	h.tuple.LocalAddr[3], h.tuple.RemoteAddr[3] = 1, 2
	return h
}

// run executes one command line and returns what it produced.
func (h *harness) run(t *testing.T, line string) string {
	fields := strings.Fields(line)
	cmd, args := fields[0], fields[1:]
	var b strings.Builder
	fail := func(format string, a ...any) string {
		t.Fatalf("%s: %s", line, fmt.Sprintf(format, a...))
		return ""
	}
	kv := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		kv[k] = v
	}
	switch cmd {
	case "connect":
		cfg, snd, rcv := h.config(t, kv)
		h.snd, h.rcv = make([]byte, snd), make([]byte, rcv)
		h.haveConn = true
		h.c = Conn{}
		p := ConnectParams{Tuple: h.tuple, ISS: seqnum.Value(h.num(t, kv["iss"])), TSOffset: uint32(h.num(t, kv["tsoff"])), Config: cfg}
		h.step(t, &b, Input{Kind: InConnect, Connect: p})
	case "listen":
		cfg, snd, rcv := h.config(t, kv)
		lc := ListenerConfig{Conn: cfg, SendBuf: uint32(snd), RecvBuf: uint32(rcv)}
		if v, ok := kv["backlog"]; ok {
			lc.Backlog = uint32(h.num(t, v))
		}
		switch kv["cookies"] {
		case "always":
			lc.Cookies = CookiesAlways
		case "never":
			lc.Cookies = CookiesNever
		}
		h.l = NewListener(lc)
		h.snd, h.rcv = make([]byte, snd), make([]byte, rcv)
	case "lrecv":
		seg := h.segment(t, args)
		var out Output
		halfOpen := 0
		if v, ok := kv["halfopen"]; ok {
			halfOpen = int(h.num(t, v))
		}
		var child Conn
		in := ListenInput{Seg: seg, Tuple: h.tuple, HalfOpen: halfOpen}
		res := h.l.Step(&in, h.now, &child, Mem{Send: h.snd, Recv: h.rcv, Stats: &h.stats}, &out)
		fmt.Fprintf(&b, "listener: %s\n", [...]string{"dropped", "replied", "new-conn"}[res])
		if res == ListenNewConn {
			h.c = child
			h.haveConn = true
			h.report(&b, &out, nil)
		} else {
			h.reportSegments(&b, &out)
		}
	case "recv":
		h.step(t, &b, Input{Kind: InSegment, Seg: h.segment(t, args)})
	case "tick":
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return fail("%v", err)
		}
		h.advance(t, &b, h.now.Add(d))
	case "send":
		data := make([]byte, h.num(t, kv["n"]))
		for i := range data {
			data[i] = 'a' + h.pattern%26
			h.pattern++
		}
		h.step(t, &b, Input{Kind: InSend, Data: data})
	case "read":
		h.step(t, &b, Input{Kind: InRead, Data: make([]byte, h.num(t, kv["n"]))})
	case "shutdown":
		h.step(t, &b, Input{Kind: InShutdown})
	case "close":
		h.step(t, &b, Input{Kind: InClose})
	case "abort":
		h.step(t, &b, Input{Kind: InAbort})
	case "set":
		opts := map[string]Option{"nodelay": OptNoDelay, "keepalive": OptKeepAlive, "keepidle": OptKeepIdle,
			"keepintvl": OptKeepInterval, "keepcnt": OptKeepCount}
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			val := int64(0)
			if d, err := time.ParseDuration(v); err == nil {
				val = int64(d)
			} else {
				val = h.num(t, v)
			}
			h.step(t, &b, Input{Kind: InSetOption, Opt: opts[k], Value: val})
		}
	case "state":
		i := h.c.Info()
		fmt.Fprintf(&b, "%s una=%d nxt=%d wnd=%d rcv.nxt=%d rcv.wnd=%d\n", i.State, i.SndUna, i.SndNxt, i.SndWnd, i.RcvNxt, i.RcvWnd)
		fmt.Fprintf(&b, "cwnd=%d ssthresh=%d recovery=%s rto=%v srtt=%v backoff=%d mss=%d\n", i.Cwnd, i.Ssthresh, i.Recovery, i.RTO, i.SRTT, i.Backoff, i.MSS)
		fmt.Fprintf(&b, "buffered=%d readable=%d ooo=%d sacked=%d\n", i.Buffered, i.Readable, i.OOORanges, i.SACKed)
	case "stats":
		h.printStats(&b)
	case "rack":
		h.printRACK(&b)
	case "peer":
		// The peer acknowledges, cumulatively, every segment we sent at
		// least rtt ago, with a window of win bytes (a path of that round
		// trip and a receiver with that window).
		rtt := h.dur(t, kv["rtt"])
		ack := h.c.snd.una
		for _, s := range h.sent {
			if s.at <= h.now.Add(-rtt) && s.end.GreaterThan(ack) {
				ack = s.end
			}
		}
		if _, lose := kv["lose"]; lose {
			// The first segment above SND.UNA was lost: the rest is
			// SACKed.
			for _, s := range h.sent {
				if s.at <= h.now.Add(-rtt) && s.end.GreaterThan(h.c.snd.una) && s.end.LessThan(ack) {
					line := fmt.Sprintf("ACK seq=%d ack=%d win=%s sack=%d-%d", h.c.rcv.nxt, h.c.snd.una, kv["win"], s.end, ack)
					fmt.Fprintf(&b, "< %s\n", line)
					h.step(t, &b, Input{Kind: InSegment, Seg: h.segment(t, strings.Fields(line))})
					return b.String()
				}
			}
		}
		line := fmt.Sprintf("ACK seq=%d ack=%d win=%s", h.c.rcv.nxt, ack, kv["win"])
		fmt.Fprintf(&b, "< %s\n", line)
		h.step(t, &b, Input{Kind: InSegment, Seg: h.segment(t, strings.Fields(line))})
	case "bbr":
		if _, ok := kv["expire"]; ok {
			// Stands for ten seconds of round trips none shorter than
			// the least one seen: the min RTT filter expires.
			h.c.cc.bbr.minRTTAt = h.now.Add(-bbrMinRTTWindow - time.Millisecond)
			break
		}
		m := h.c.BBR()
		fmt.Fprintf(&b, "bbr: %s", m.Mode)
		if m.Mode == "probe_bw" {
			fmt.Fprintf(&b, " phase=%d", m.Phase)
		}
		fmt.Fprintf(&b, " bw=%d minrtt=%v pacing=%d gain=%d/%d rounds=%d full=%v cwnd=%d pipe=%d recovery=%s\n",
			m.Bw, m.MinRTT, m.PacingRate, m.PacingGain, m.CwndGain, m.Rounds, m.FilledPipe, h.c.cc.Cwnd, h.c.pipe(), h.c.rec.mode)
	case "cwv":
		w := &h.c.cwv
		phase := "validated"
		if w.nvpStart != 0 {
			phase = "non-validated since " + h.at(w.nvpStart)
		}
		fmt.Fprintf(&b, "cwv: pipeack=%d cwnd=%d ssthresh=%d %s\n", w.pipeACK, h.c.cc.Cwnd, h.c.cc.Ssthresh, phase)
	case "icmp": // an ICMP "fragmentation needed" for the connection
		h.step(t, &b, Input{Kind: InPacketTooBig, PTB: PacketTooBig{
			MTU: uint16(h.num(t, kv["mtu"])), Size: uint16(h.num(t, kv["size"])), Seq: seqnum.Value(h.num(t, kv["seq"]))}})
	case "pmtu":
		p := &h.c.pmtu
		fmt.Fprintf(&b, "mss=%d max=%d high=%d probe=%d", h.c.snd.mss, p.max, p.high, p.probeMSS)
		if p.probeMSS != 0 {
			fmt.Fprintf(&b, " at %d-%d", p.probe.start, p.probe.end)
		}
		if p.next != 0 {
			fmt.Fprintf(&b, " next=%s", time.Duration(p.next-Time(time.Second)))
		}
		b.WriteString("\n")
	default:
		return fail("unknown command %q", cmd)
	}
	if err := h.c.Check(); h.haveConn && err != nil {
		t.Errorf("%s: invariant: %v", line, err)
	}
	return b.String()
}

// config builds a connection configuration from script arguments.
func (h *harness) config(t *testing.T, kv map[string]string) (Config, int, int) {
	cfg := Config{MSS: 1000}
	snd, rcv := 8000, 8000
	for k, v := range kv {
		switch k {
		case "mss":
			cfg.MSS = uint16(h.num(t, v))
		case "ws":
			cfg.DisableWindowScale = v == "off"
		case "ts":
			cfg.DisableTimestamps = v == "off"
		case "sack":
			cfg.DisableSACK = v == "off"
		case "nodelay":
			cfg.NoDelay = true
		case "fast":
			cfg.FastLossRecovery = true
		case "ecn":
			cfg.ECN = true
		case "cwv":
			cfg.CwndValidation = true
		case "mtuprobe":
			cfg.DisableMTUProbing = v == "off"
		case "delack":
			if v == "off" {
				cfg.DelayedACK = -1
			} else {
				cfg.DelayedACK = h.dur(t, v)
			}
		case "cc":
			cfg.Congestion = map[string]CCAlgorithm{"reno": CCReno, "cubic": CCCubic, "bbr": CCBBR}[v]
		case "minrto":
			cfg.MinRTO = h.dur(t, v)
		case "timewait":
			cfg.TimeWait = h.dur(t, v)
		case "retries":
			cfg.Retries = uint8(h.num(t, v))
		case "challenge":
			cfg.ChallengeACKLimit = uint16(h.num(t, v))
		case "synretries":
			cfg.SynRetries = uint8(h.num(t, v))
		case "snd":
			snd = int(h.num(t, v))
		case "rcv":
			rcv = int(h.num(t, v))
		}
	}
	return cfg, snd, rcv
}

func (h *harness) dur(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// num parses a number, or an expression "name+k" / "name-k" where name is
// iss (the sequence number of our last SYN), irs, nxt (our SND.NXT), rcvnxt or tsval (our last TSval).
func (h *harness) num(t *testing.T, s string) int64 {
	if s == "" {
		return 0
	}
	base, off, sign := s, "", int64(1)
	if i := strings.IndexAny(s, "+-"); i > 0 {
		base, off = s[:i], s[i+1:]
		if s[i] == '-' {
			sign = -1
		}
	}
	var v int64
	switch base {
	case "iss":
		v = int64(h.lastISS)
	case "irs":
		v = int64(h.c.rcv.irs)
	case "nxt":
		v = int64(h.c.snd.nxt)
	case "rcvnxt":
		v = int64(h.c.rcv.nxt)
	case "tsval":
		v = int64(h.lastTS)
	default:
		n, err := strconv.ParseInt(base, 10, 64)
		if err != nil {
			t.Fatalf("bad number %q", s)
		}
		v = n
	}
	if off != "" {
		n, err := strconv.ParseInt(off, 10, 64)
		if err != nil {
			t.Fatalf("bad number %q", s)
		}
		v += sign * n
	}
	return int64(uint32(v))
}

// segment parses "FLAGS key=value..." into a segment.
func (h *harness) segment(t *testing.T, args []string) Segment {
	seg := Segment{Options: NoOptions()}
	for _, f := range strings.Split(args[0], "|") {
		m := map[string]Flags{"SYN": FlagSYN, "ACK": FlagACK, "FIN": FlagFIN, "RST": FlagRST, "PSH": FlagPSH, "URG": FlagURG,
			"ECE": FlagECE, "CWR": FlagCWR}
		fl, ok := m[f]
		if !ok && f != "none" {
			t.Fatalf("bad flag %q", f)
		}
		seg.Flags |= fl
	}
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "seq":
			seg.Seq = seqnum.Value(h.num(t, v))
		case "ack":
			seg.Ack = seqnum.Value(h.num(t, v))
		case "win":
			seg.Window = uint16(h.num(t, v))
		case "mss":
			seg.Options.MSS = uint16(h.num(t, v))
		case "ws":
			seg.Options.WScale = int8(h.num(t, v))
		case "sackok":
			seg.Options.SACKPermitted = true
		case "ts":
			val, ecr, _ := strings.Cut(v, ",")
			seg.Options.TS = true
			seg.Options.TSVal = uint32(h.num(t, val))
			seg.Options.TSEcr = uint32(h.num(t, ecr))
		case "sack":
			for _, blk := range strings.Split(v, ",") {
				s, e, _ := strings.Cut(blk, "-")
				n := seg.Options.NumSACK
				seg.Options.SACK[n].Start = uint32(h.num(t, s))
				seg.Options.SACK[n].End = uint32(h.num(t, e))
				seg.Options.NumSACK++
			}
		case "len":
			seg.Payload = make([]byte, h.num(t, v))
			for i := range seg.Payload {
				seg.Payload[i] = 'A' + byte(i%26)
			}
		case "ce":
			seg.CE = true
		case "halfopen":
		default:
			t.Fatalf("bad segment field %q", k)
		}
	}
	return seg
}

// step runs one input and reports its output.
func (h *harness) step(t *testing.T, b *strings.Builder, in Input) {
	var out Output
	err := h.c.Step(in, h.now, Mem{Send: h.snd, Recv: h.rcv, Stats: &h.stats}, &out)
	for _, s := range out.Segments {
		if s.PayloadLen() > 0 {
			h.sent = append(h.sent, sentSeg{h.now, s.Seq.Add(seqnum.Size(s.PayloadLen()))})
		}
	}
	h.report(b, &out, err)
}

// advance moves the clock to target, firing the timer at each deadline on
// the way, as a shell would.
func (h *harness) advance(t *testing.T, b *strings.Builder, target Time) {
	for i := 0; i < 1000; i++ {
		d := h.c.nextDeadline()
		if d == 0 || d > target {
			break
		}
		h.now = max(h.now, d)
		fmt.Fprintf(b, "fire %s:\n", h.clock())
		h.step(t, b, Input{Kind: InTimer})
	}
	h.now = target
}

func (h *harness) clock() string {
	return h.at(h.now)
}

// at prints an instant as the scripts count time, from their start.
func (h *harness) at(t Time) string {
	return "t=" + time.Duration(t-Time(time.Second)).String()
}

// report prints an output: segments, wake-ups, errors, counts, state.
func (h *harness) report(b *strings.Builder, out *Output, err error) {
	h.reportSegments(b, out)
	if out.Wake != 0 {
		fmt.Fprintf(b, "wake: %s\n", out.Wake)
	}
	if out.Err != nil {
		fmt.Fprintf(b, "conn error: %v\n", out.Err)
	}
	if err != nil {
		fmt.Fprintf(b, "error: %v\n", err)
	}
	if out.N != 0 {
		fmt.Fprintf(b, "n=%d\n", out.N)
	}
	if out.Reuse {
		b.WriteString("reuse\n")
	}
	if !h.haveConn {
		return
	}
	timer := "none"
	if out.Timer != 0 {
		timer = "+" + time.Duration(out.Timer-h.now).String()
	}
	fmt.Fprintf(b, "%s readable=%d timer=%s\n", h.c.State(), out.Readable, timer)
}

// reportSegments prints the output segments and remembers the values
// scripts refer to (iss, tsval).
func (h *harness) reportSegments(b *strings.Builder, out *Output) {
	for _, s := range out.Segments {
		fmt.Fprintf(b, "> %s\n", s)
		if s.Options.TS {
			h.lastTS = s.Options.TSVal
		}
		if s.Flags&FlagSYN != 0 {
			h.lastISS = uint32(s.Seq)
		}
	}
}

// printStats prints the non-zero counters.
func (h *harness) printStats(b *strings.Builder) {
	s := fmt.Sprintf("%+v", h.stats)
	s = strings.Trim(s, "{}")
	var parts []string
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "Drops:") {
			break
		}
		if !strings.HasSuffix(f, ":0") {
			parts = append(parts, f)
		}
	}
	for i, d := range h.stats.Drops {
		if d != 0 {
			parts = append(parts, fmt.Sprintf("drop.%s:%d", DropReason(i), d))
		}
	}
	b.WriteString(strings.Join(parts, " ") + "\n")
}

// printRACK prints RACK's state and the transmission log, times relative
// to the script's start.
func (h *harness) printRACK(b *strings.Builder) {
	rk := &h.c.rack
	at := func(us uint32) time.Duration { return usDur(us - usec(Time(time.Second))) }
	fmt.Fprintf(b, "rack: rtt=%v minrtt=%v reownd=%v reoseen=%v mult=%d pipe=%d cwnd=%d",
		usDur(rk.rtt), usDur(rk.minRTT), h.c.reoWnd(), rk.reoSeen, max(rk.reoMult, 1), h.c.pipe(), h.c.cc.Cwnd)
	if rk.valid {
		fmt.Fprintf(b, " xmit=%v end=%d", at(rk.xmit), rk.endSeq)
	}
	b.WriteString("\nlog:")
	for i := 0; i < int(rk.log.n); i++ {
		r := rk.log.r[i]
		fmt.Fprintf(b, " %d-%d@%v", r.start, r.end, at(r.sent))
		for _, f := range []struct {
			bit  uint8
			name string
		}{{txSACKed, "sacked"}, {txRetx, "retx"}, {txLost, "lost"}} {
			if r.flags&f.bit != 0 {
				b.WriteString("," + f.name)
			}
		}
	}
	b.WriteString("\n")
}
