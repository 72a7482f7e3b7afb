package supervisor

import "saturn/netproc/leftover"

// removeLeftovers undoes what a server left outside the instance and could
// not undo itself. netproc's usertcp backend creates its network namespace
// on first start and records that in its persistent memory; the netproc
// that stops removes it (see usertcp.Stack.Close), but when the instance
// stops while netproc is down (killed, and waiting out its back-off, or
// failed), no netproc is left to do it, so the supervisor does. Call it
// once every component has exited, before the persistent memory is
// closed.
func (s *Supervisor) removeLeftovers() {
	ns := s.cfg.Netproc.Netns
	for _, c := range s.components {
		if c.name != "netproc" || c.persist == nil || ns == "" {
			continue
		}
		removed, err := leftover.RemoveNamespace(c.persist, ns)
		switch {
		case err != nil:
			s.log.Warn("removing netproc's namespace", "netns", ns, "err", err)
		case removed != "":
			s.log.Info("removed the namespace netproc left", "netns", removed)
		}
	}
}
