package diskproc

import (
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// Grants: what one app may do to the files another serves. Every app
// reads beneath diskproc's root; one writes, creates or truncates only
// beneath the folders its config grants it ([[app]] disk_write), so that
// no app can rewrite the files another serves. A grant's folder is opened
// once, when the channel comes, and an open for writing under it resolves
// beneath that folder (openat2 with RESOLVE_BENEATH from its descriptor):
// a symbolic link inside it cannot lead the write out of it, though it
// could lead a read anywhere beneath the root.

// writableDir is one folder an app may write in.
type writableDir struct {
	name string // relative to the root, as the grant says it ("." is the whole root)
	fd   int
}

// rel is path (relative to the root, and held by d) relative to d.
func (d *writableDir) rel(path string) string {
	switch {
	case d.name == ".":
		return path
	case path == d.name:
		return "."
	}
	return strings.TrimPrefix(path, d.name+"/")
}

// holds reports whether path (a checked path, relative to the root) lies
// in d.
func (d *writableDir) holds(path string) bool {
	return d.name == "." || path == d.name || strings.HasPrefix(path, d.name+"/")
}

// applyGrants opens the folders an app may write in, from its channel's
// grants; a folder that cannot be opened is logged and not granted.
func (s *Server) applyGrants(a *appState, desc proto.ChannelDesc) {
	g := desc.Grants
	if g == nil {
		return // an embedding program's channel: unrestricted
	}
	a.restricted = true
	for _, name := range g.DiskWrite {
		name = strings.Trim(name, "/")
		if name == "" {
			name = "."
		}
		if name != "." {
			if _, err := proto.CheckPath(name); err != nil {
				s.log.Warn("an app's disk_write grant is not a path beneath the root: not granted", "app", desc.App, "folder", name, "err", err)
				continue
			}
		}
		res, err := openBeneath(s.root, name, proto.OpenRead|proto.OpenDirectory, 0, time.Time{})
		if err != nil {
			s.log.Warn("an app's disk_write folder cannot be opened: not granted", "app", desc.App, "folder", name, "err", err)
			continue
		}
		a.writable = append(a.writable, &writableDir{name: name, fd: res.fd})
	}
}

// writableFor is the grant under which a may open path for writing; ok
// is false when none holds it (or a is unrestricted: then nil, true).
func (a *appState) writableFor(path string) (*writableDir, bool) {
	if !a.restricted {
		return nil, true
	}
	for _, d := range a.writable {
		if d.holds(path) {
			return d, true
		}
	}
	return nil, false
}

// closeGrants closes the grants' folders, once no op of a's is in
// flight.
func (a *appState) closeGrants() {
	for _, d := range a.writable {
		unix.Close(d.fd)
	}
	a.writable = nil
}
