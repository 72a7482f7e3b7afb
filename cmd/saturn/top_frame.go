package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"saturn/proto"
)

// topSample is one status of the instance and when it was taken.
type topSample struct {
	at time.Time
	st *proto.StatusReply
}

// channelKey names a channel across samples: its id, and the server epoch
// (a counter that restarted with a new incarnation is not a negative rate).
type channelKey struct {
	id     uint64
	server string
}

// topFrame renders one frame of `saturn top` from the sample before (nil
// for none: no rates yet) and the current one: a header, the components,
// and the channels with their submission and completion rates. Lines past
// width are cut and rows past height are left out (0: no limit), so that a
// frame never scrolls the terminal.
func topFrame(w io.Writer, prev *topSample, cur topSample, every time.Duration, width, height int) {
	var b strings.Builder
	st := cur.st
	fmt.Fprintf(&b, "saturn top: instance %s (supervisor pid %d)  %s  every %s, q quits\n",
		st.Instance, st.Supervisor, cur.at.Format("15:04:05"), every)
	switch {
	case st.Metrics != "":
		fmt.Fprintf(&b, "metrics at %s\n", st.Metrics)
	case st.MetricsError != "":
		fmt.Fprintf(&b, "no metrics endpoint: %s\n", st.MetricsError)
	}
	var dt float64
	before := map[channelKey]proto.ChannelStatus{}
	prevCounters := map[string]map[string]uint64{}
	if prev != nil {
		dt = cur.at.Sub(prev.at).Seconds()
		for _, c := range prev.st.Components {
			prevCounters[c.Name] = c.Counters
			for _, ch := range c.Channels {
				before[channelKey{ch.ID, ch.Server}] = ch
			}
		}
	}
	// rate is the change of a counter per second, or "-" when there is
	// nothing to compare with (the first frame, a new channel, a counter
	// that went back: a new incarnation).
	rate := func(now, then uint64, ok bool) string {
		if !ok || dt <= 0 || now < then {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(now-then)/dt)
	}

	// Each app's sockets in netproc: its connections.
	sockets := map[string]int{}
	for _, c := range st.Components {
		for _, ch := range c.Channels {
			if ch.Usage != nil {
				sockets[ch.App] += ch.Usage.Sockets
			}
		}
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tPID\tSTATE\tUPTIME\tRESTARTS\tCONNS\tSUBMIT/s\tCOMPLETE/s\t")
	for _, c := range st.Components {
		pid, uptime := pidAndUptime(c)
		conns := "-"
		switch n, ok := c.Counters["tcp.curr_estab"]; {
		case ok:
			conns = fmt.Sprint(n) // netproc on usertcp: established connections
		case c.Kind == proto.KindApp && sockets[c.Name] > 0:
			conns = fmt.Sprint(sockets[c.Name])
		}
		// A server's totals over its channels; an app's over its own.
		var sub, done, subThen, doneThen uint64
		known := prev != nil
		for _, o := range st.Components {
			for _, ch := range o.Channels {
				if ch.Server != c.Name && ch.App != c.Name {
					continue
				}
				p, ok := before[channelKey{ch.ID, ch.Server}]
				if !ok || ch.Submitted < p.Submitted || ch.Completed < p.Completed {
					// New since the last frame, or restarted:
					// count it from now.
					p = ch
				}
				sub, done = sub+ch.Submitted, done+ch.Completed
				subThen, doneThen = subThen+p.Submitted, doneThen+p.Completed
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Name, c.Kind, pid, c.State, uptime, c.Restarts, conns,
			rate(sub, subThen, known), rate(done, doneThen, known))
	}
	tw.Flush()
	for _, c := range st.Components {
		if c.State != proto.StateRunning && c.Reason != "" {
			fmt.Fprintf(&b, "%s: %s\n", c.Name, c.Reason)
		}
	}
	// netproc's own traffic, where its backend counts it (usertcp).
	for _, c := range st.Components {
		if _, ok := c.Counters["tcp.in_segs"]; !ok {
			continue
		}
		pc, ok := prevCounters[c.Name]
		r := func(k string) string {
			then, had := pc[k]
			return rate(c.Counters[k], then, ok && had)
		}
		fmt.Fprintf(&b, "%s: segments in %s/s, out %s/s, retransmitted %s/s; %d connections, %d in TIME-WAIT\n",
			c.Name, r("tcp.in_segs"), r("tcp.out_segs"), r("tcp.retrans_segs"), c.Counters["tcp.conns"], c.Counters["tcp.time_wait"])
	}

	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tAPP\tSERVER\tEPOCH\tSUBMIT/s\tCOMPLETE/s\tSQ\tCQ\tSOCKETS\tWAITING\t")
	n := 0
	for _, c := range st.Components {
		for _, ch := range c.Channels {
			p, ok := before[channelKey{ch.ID, ch.Server}]
			socks, waiting := "-", "-"
			if u := ch.Usage; u != nil {
				socks, waiting = fmt.Sprint(u.Sockets), fmt.Sprint(u.Waiting)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", ch.ID, ch.App, ch.Server, ch.Epoch,
				rate(ch.Submitted, p.Submitted, ok), rate(ch.Completed, p.Completed, ok), ch.SQDepth, ch.CQDepth, socks, waiting)
			n++
		}
	}
	if n == 0 {
		fmt.Fprintln(tw, "(no channels: no app is attached)")
	}
	tw.Flush()

	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if height > 0 && len(lines) > height {
		lines = lines[:height]
	}
	for i, l := range lines {
		if width > 0 && len(l) > width {
			l = l[:width]
		}
		if i > 0 {
			io.WriteString(w, "\n")
		}
		io.WriteString(w, l)
	}
	io.WriteString(w, "\n")
}
