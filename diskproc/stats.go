package diskproc

import (
	"strconv"
	"sync/atomic"
)

// stats are diskproc's counters, which status, `saturn top` and the
// metrics endpoint show as disk.* (the supervisor tells counters from the
// rest of Info by their dotted names). The loop adds to them; Info reads
// them from the goroutine that reports to the supervisor, hence atomics
// (uncontended: one writer).
type stats struct {
	ops       [opReaddir + 1]atomic.Uint64 // completed by the backend, by kind
	errors    atomic.Uint64                // of which failed
	readBytes atomic.Uint64
	wroteByte atomic.Uint64
	refused   atomic.Uint64 // answered with an error before reaching the backend (limits, grants, bad entries)
}

// statNames are the counters' names by op kind.
var statNames = [...]string{
	opRead: "disk.reads", opWrite: "disk.writes", opFsync: "disk.fsyncs", opOpen: "disk.opens",
	opStat: "disk.fstats", opStatPath: "disk.stats", opReaddir: "disk.readdirs",
}

// finished counts an op the backend carried out. Loop only.
func (st *stats) finished(o *op) {
	if int(o.kind) < len(st.ops) {
		st.ops[o.kind].Add(1)
	}
	switch {
	case o.err != nil:
		st.errors.Add(1)
	case o.kind == opRead && o.res > 0:
		st.readBytes.Add(uint64(o.res))
	case o.kind == opWrite && o.res > 0:
		st.wroteByte.Add(uint64(o.res))
	}
}

// add puts the counters into info, as whole numbers under dotted names.
func (st *stats) add(info map[string]string) {
	for k, name := range statNames {
		info[name] = strconv.FormatUint(st.ops[k].Load(), 10)
	}
	info["disk.errors"] = strconv.FormatUint(st.errors.Load(), 10)
	info["disk.read_bytes"] = strconv.FormatUint(st.readBytes.Load(), 10)
	info["disk.write_bytes"] = strconv.FormatUint(st.wroteByte.Load(), 10)
	info["disk.refused"] = strconv.FormatUint(st.refused.Load(), 10)
}
