package supervisor

import (
	"strconv"
	"strings"
)

// splitInfo separates what a component reports of itself (Ready's Info,
// strings on the wire) into its description and its counters. A counter is
// a dotted key ("tcp.in_segs", "link.rx_packets": layer and name, as
// serverkit and `saturn status` have always told them apart) whose value is
// a whole number; status hands counters on as numbers, so that `status
// --json` and the metrics endpoint need not parse strings. A dotted key
// whose value is not a number stays in the description.
func splitInfo(reported map[string]string) (info map[string]string, counters map[string]uint64) {
	for k, v := range reported {
		if strings.Contains(k, ".") {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				if counters == nil {
					counters = make(map[string]uint64)
				}
				counters[k] = n
				continue
			}
		}
		if info == nil {
			info = make(map[string]string)
		}
		info[k] = v
	}
	return info, counters
}
