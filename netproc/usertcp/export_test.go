package usertcp

import "saturn/netproc/tcp"

// ConnInfos returns the core's view of every connection. Loop only.
func (s *Stack) ConnInfos() []tcp.Info {
	var out []tcp.Info
	for _, c := range s.conns {
		if c != nil {
			out = append(out, s.tab.conn(c.slot).Info())
		}
	}
	return out
}
