package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/urfave/cli/v2"

	"saturn/proto"
	"saturn/supervisor"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show every component of the instance: state, pid, uptime, restarts, last exit, rings",
		Flags: withInstance(&cli.BoolFlag{Name: "json", Usage: "print JSON for machines"},
			&cli.BoolFlag{Name: "metrics", Usage: "print what the metrics endpoint serves ([supervisor] metrics, http://127.0.0.1:9464/metrics by default): states, restarts, rings, the servers' counters, in Prometheus's text format"}),
		Action: func(c *cli.Context) error {
			var st proto.StatusReply
			if err := request(c, proto.MsgStatus, &proto.Status{}, &st, 10*time.Second); err != nil {
				return err
			}
			if c.Bool("metrics") {
				return printMetrics(c.App.Writer, &st)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(&st)
			}
			printStatus(c.App.Writer, &st)
			return nil
		},
	}
}

func printStatus(w io.Writer, st *proto.StatusReply) {
	fmt.Fprintf(w, "instance %s (supervisor pid %d)\n", st.Instance, st.Supervisor)
	switch {
	case st.Metrics != "":
		fmt.Fprintf(w, "metrics at %s\n", st.Metrics)
	case st.MetricsError != "":
		fmt.Fprintf(w, "no metrics endpoint: %s\n", st.MetricsError)
	}
	if cs := st.Config; cs != nil {
		fmt.Fprintf(w, "config %s, generation %d, loaded %s\n", cs.Source, cs.Generation, cs.LoadedAt.Local().Format(time.DateTime))
		if len(cs.NeedsRestart) > 0 {
			fmt.Fprintf(w, "kept until the instance is started again: %s\n", strings.Join(cs.NeedsRestart, ", "))
		}
		if cs.ReloadError != "" {
			fmt.Fprintf(w, "last reload failed, generation %d still in force: %s\n", cs.Generation, cs.ReloadError)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tPID\tSTATE\tUPTIME\tRESTARTS\tLAST EXIT\tINFO")
	for _, c := range st.Components {
		pid, uptime := pidAndUptime(c)
		kind := c.Kind
		if c.Attached {
			kind += " (self-attached)"
		}
		info := infoString(c.Info)
		if c.Type != "" {
			info = strings.TrimSpace("type=" + c.Type + " " + info)
		}
		if c.User != "" {
			info = strings.TrimSpace("user=" + strings.ReplaceAll(c.User, " ", "") + " " + info)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.Name, kind, pid, c.State, uptime, c.Restarts, c.LastExit, info)
	}
	tw.Flush()
	for _, c := range st.Components {
		if c.Reason != "" && c.State != "running" {
			fmt.Fprintf(w, "\n%s: %s", c.Name, c.Reason)
		}
	}
	var chans []proto.ChannelStatus
	for _, c := range st.Components {
		chans = append(chans, c.Channels...)
	}
	if len(chans) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CHANNEL\tAPP\tSERVER\tEPOCH\tSQ DEPTH\tCQ DEPTH\tSUBMITTED\tCOMPLETED\tSOCKETS\tMEMORY")
		for _, ch := range chans {
			socks, mem := "-", "-"
			if u := ch.Usage; u != nil {
				socks = fmt.Sprintf("%d/%s", u.Sockets, limitString(int64(u.SocketLimit), strconv.FormatInt))
				mem = fmt.Sprintf("%s/%s", sizeString(u.Memory), limitString(u.MemoryLimit, func(v int64, _ int) string { return sizeString(v) }))
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", ch.ID, ch.App, ch.Server, ch.Epoch, ch.SQDepth, ch.CQDepth, ch.Submitted, ch.Completed, socks, mem)
		}
		tw.Flush()
	} else {
		fmt.Fprintln(w)
	}
}

// limitString is a limit as status shows it: "none" for 0.
func limitString(v int64, format func(int64, int) string) string {
	if v <= 0 {
		return "none"
	}
	return format(v, 10)
}

// sizeString is a byte count in the largest binary unit under it, to a
// tenth.
func sizeString(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}

// infoString is the INFO column: what a component reports of itself (its
// counters are apart, in --json and --metrics).
// pidAndUptime are a component's PID and uptime as the tables show them:
// "-" for a component that is not running.
func pidAndUptime(c proto.ComponentStatus) (pid, uptime string) {
	pid, uptime = "-", "-"
	if c.PID != 0 {
		pid = fmt.Sprint(c.PID)
	}
	if c.Uptime > 0 {
		uptime = (time.Duration(c.Uptime * float64(time.Second))).Round(time.Second).String()
	}
	return pid, uptime
}

func infoString(info map[string]string) string {
	keys := slices.Sorted(maps.Keys(info))
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+info[k])
	}
	return strings.Join(parts, " ")
}

// printMetrics writes the instance's status as the metrics endpoint serves
// it (supervisor.StatusCollector), in Prometheus's text format, without
// the supervisor's own process and Go runtime figures.
func printMetrics(w io.Writer, st *proto.StatusReply) error {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(supervisor.NewStatusCollector(func() (*proto.StatusReply, error) { return st, nil })); err != nil {
		return err
	}
	families, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
