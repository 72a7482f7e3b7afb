package testkit

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// GiveTo makes path, and everything beneath it, belong to the user that
// component name of the instance runs as (its status's user, "UID:GID
// (how)"), as an operator gives diskproc's own user the folders apps may
// write in. Nothing changes when it runs as the supervisor's user.
func (in *Instance) GiveTo(name, path string) {
	in.t.Helper()
	c := Component(in.Status(), name)
	if c == nil {
		in.t.Fatalf("no %s in status", name)
	}
	ids, _, _ := strings.Cut(c.User, " ")
	us, gs, ok := strings.Cut(ids, ":")
	uid, err1 := strconv.Atoi(us)
	gid, err2 := strconv.Atoi(gs)
	if !ok || err1 != nil || err2 != nil {
		return // "inherit", or not root: it runs as we do
	}
	err := filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		in.t.Fatalf("giving %s to %s (uid %d): %v", path, name, uid, err)
	}
}
