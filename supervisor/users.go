package supervisor

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"saturn/configs"
	"saturn/proto"
)

// Apps run under users of their own. An app that shares a uid with
// another process can reach into it: open its shared-memory regions
// through /proc/PID/fd, signal it, trace it. So when the supervisor runs
// as root, each app it starts runs as a uid of its own unless its config
// says otherwise ([[app]] user):
//
//   - "" or "dynamic": a uid that no account of the system has, picked from
//     systemd's range for dynamic users (61184 to 65519) by a hash of the
//     instance and the app's name, so that the app keeps it across restarts
//     (it is also the identity that owns the app's kept listeners: see
//     netproc's orphans), with a group of the same number and no others;
//   - "inherit": the supervisor's own user (every app shared it before);
//   - a user name, or a numeric "UID" or "UID:GID".
//
// A supervisor that is not root cannot switch users: its apps run as it.
//
// Servers get users the same way, from [netproc] user and [diskproc]
// user (identifyServer), but switch to them themselves.

// Dynamic uids, as systemd's DynamicUser= allocates them.
const (
	dynamicFirst = 61184
	dynamicLast  = 65519
)

// appUser is who an app runs as: nil for the supervisor's own user.
type appUser struct {
	uid, gid uint32
	how      string // "dynamic", a user's name, or the numbers
}

func (u *appUser) String() string {
	if u == nil {
		return "inherit"
	}
	return fmt.Sprintf("%d:%d (%s)", u.uid, u.gid, u.how)
}

func (u *appUser) credential() *syscall.Credential {
	if u == nil {
		return nil
	}
	return &syscall.Credential{Uid: u.uid, Gid: u.gid} // no supplementary groups
}

// resolveUser decides who the app called name runs as, from its config's
// user key; taken lists the uids other apps of the instance hold.
func resolveUser(instance, name, spec string, taken map[uint32]string) (*appUser, error) {
	if os.Geteuid() != 0 {
		if spec != "" && spec != "dynamic" && spec != "inherit" {
			return nil, fmt.Errorf("%s: user %q: the supervisor is not root and cannot switch users", name, spec)
		}
		return nil, nil
	}
	switch spec {
	case "inherit":
		return nil, nil
	case "", "dynamic":
		return dynamicUser(instance, name, taken)
	}
	if uid, gid, ok := numericUser(spec); ok {
		return &appUser{uid: uid, gid: gid, how: spec}, nil
	}
	u, err := user.Lookup(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: user %q: %w", name, spec, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%s: user %q has uid %q, gid %q", name, spec, u.Uid, u.Gid)
	}
	return &appUser{uid: uint32(uid), gid: uint32(gid), how: spec}, nil
}

// numericUser parses "UID" or "UID:GID".
func numericUser(s string) (uid, gid uint32, ok bool) {
	us, gs, both := strings.Cut(s, ":")
	u, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, false
	}
	g := u
	if both {
		if g, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, false
		}
	}
	return uint32(u), uint32(g), true
}

// dynamicUser picks the app's dynamic uid: the hash of instance and name
// in the range, moved on past uids that an account of the system or
// another app holds.
func dynamicUser(instance, name string, taken map[uint32]string) (*appUser, error) {
	accounts := systemIDs()
	h := fnv.New32a()
	h.Write([]byte(instance + "/" + name))
	span := uint32(dynamicLast - dynamicFirst + 1)
	start := h.Sum32() % span
	for i := range span {
		uid := dynamicFirst + (start+i)%span
		if accounts[uid] {
			continue
		}
		if holder, ok := taken[uid]; ok && holder != name {
			continue
		}
		return &appUser{uid: uid, gid: uid, how: "dynamic"}, nil
	}
	return nil, fmt.Errorf("%s: no dynamic uid is free in %d-%d", name, dynamicFirst, dynamicLast)
}

// systemIDs is every uid and gid /etc/passwd and /etc/group name.
func systemIDs() map[uint32]bool {
	ids := map[uint32]bool{}
	for _, file := range []string{"/etc/passwd", "/etc/group"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if len(fields) > 2 {
				if id, err := strconv.ParseUint(fields[2], 10, 32); err == nil {
					ids[uint32(id)] = true
				}
			}
		}
		f.Close()
	}
	return ids
}

// identify gives app c its user, uid, grants and servers: those of its
// config (conf; nil for an app the config does not list), over what the
// launch asked (user, listen, diskWrite). Loop only.
func (s *Supervisor) identify(c *component, conf *configs.App, user string, listen, diskWrite []string) error {
	if conf != nil {
		user, listen, diskWrite = conf.User, conf.Listen, conf.DiskWrite
	}
	u, err := resolveUser(s.opts.Paths.Instance, c.name, user, s.takenUIDs(c))
	if err != nil {
		return err
	}
	c.user, c.uid = u, uint32(os.Geteuid())
	if u != nil {
		c.uid = u.uid
		c.spec.cred = u.credential()
	}
	for _, l := range listen {
		if _, err := proto.ParseListenGrant(l); err != nil {
			return err
		}
	}
	c.grants = &proto.ChannelGrants{Listen: slices.Clone(listen), DiskWrite: slices.Clone(diskWrite)}
	c.servers = configs.AppServers(conf)
	return nil
}

// roomForApp refuses another app past [supervisor] max_apps: netproc and
// diskproc guarantee each of that many apps its share of what they hold
// for all, and could not guarantee one more. Loop only.
func (s *Supervisor) roomForApp() error {
	n := 0
	for _, c := range s.components {
		if c.kind == proto.KindApp {
			n++
		}
	}
	if max := s.cfg.Supervisor.MaxApps; n >= max {
		s.log.Warn("an app was refused: the instance has as many apps as it allows", "apps", n, "max_apps", max)
		return fmt.Errorf("the instance has %d apps, its limit ([supervisor] max_apps)", max)
	}
	return nil
}

// identifyServer gives server c the user of its config section's user
// key. Unlike an app, a server is started as root and switches to its user
// itself once set up (internal/serverkit's privilege.go): netproc must
// create its TUN device first, diskproc open its root. Loop only.
func (s *Supervisor) identifyServer(c *component) error {
	spec := s.cfg.Netproc.User
	if c.name == "diskproc" {
		spec = s.cfg.Diskproc.User
	}
	u, err := resolveUser(s.opts.Paths.Instance, c.name, spec, s.takenUIDs(c))
	if err != nil {
		return err
	}
	if u != nil && u.uid == 0 {
		u = nil // root, named: as "inherit"
	}
	c.user, c.uid = u, uint32(os.Geteuid())
	if u == nil {
		return nil
	}
	c.uid = u.uid
	if c.name == "netproc" && s.cfg.Netproc.Backend == "kernel" {
		// The kernel backend sets nothing up, but binds the ports below
		// 1024 that apps are granted: it starts as its user right away,
		// keeping CAP_NET_BIND_SERVICE alone (a process cannot keep one
		// capability on every thread when it switches users itself).
		c.spec.cred, c.spec.ambient = u.credential(), []uintptr{unix.CAP_NET_BIND_SERVICE}
		return nil
	}
	c.spec.env = append(c.spec.env, fmt.Sprintf("%s=%d:%d", proto.EnvServerUser, u.uid, u.gid))
	if c.name == "diskproc" {
		return s.checkDiskAccess(u)
	}
	return nil
}

// configFile is the effective configuration as a memfd, for a server
// started as its own user: the file the supervisor wrote is root's alone.
// Under /proc/self/fd/N the server opens it again as itself; a memfd's
// mode lets it.
func (s *Supervisor) configFile() (*os.File, error) {
	data, err := os.ReadFile(s.opts.Paths.Config)
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("config", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "config")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	// Sealed: the server reads it; neither it nor anyone else changes it.
	unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL)
	return f, nil
}

// checkDiskAccess refuses to start diskproc as a user that cannot read its
// root (it opens the root as root, so only the root itself must let it
// in), and warns of folders apps may write in that it cannot write.
func (s *Supervisor) checkDiskAccess(u *appUser) error {
	root := s.cfg.Diskproc.Root
	if _, err := os.Stat(root); err != nil {
		return nil // prepare reports a missing root
	}
	if !permits(u, root, 0o5) {
		return fmt.Errorf("diskproc runs as uid %d and cannot read its root %s: let others read it (chmod o+rx), give it to that user, or set [diskproc] user (\"inherit\" keeps the supervisor's)", u.uid, root)
	}
	for _, a := range s.cfg.Apps {
		for _, d := range a.DiskWrite {
			dir := filepath.Join(root, filepath.Clean("/"+d))
			if _, err := os.Stat(dir); err == nil && !permits(u, dir, 0o3) {
				s.log.Warn("diskproc's user cannot write a folder an app may write in; its writes there will fail with EACCES",
					"app", a.Name, "folder", dir, "uid", u.uid)
			}
		}
	}
	return nil
}

// takenUIDs lists the uids the components other than c run as.
func (s *Supervisor) takenUIDs(c *component) map[uint32]string {
	taken := map[uint32]string{}
	for _, o := range s.components {
		if o != c && o.user != nil {
			taken[o.user.uid] = o.name
		}
	}
	return taken
}

// userString is how status shows who component c runs as.
func (c *component) userString() string {
	if c.attached {
		return fmt.Sprintf("%d (self-attached)", c.uid)
	}
	return c.user.String()
}

// checkRunnable reports whether cred (nil: ours) can run the program at
// path in the folder dir ("" for ours), by the mode bits (the supervisor,
// as root, would pass any access check of its own): the program must be
// executable by that user (it is run from a descriptor the supervisor
// opens, so the folders above it need not be open to the user), and dir,
// which the child enters as the user, searchable along the way. An error
// names what is in the way.
func checkRunnable(cred *syscall.Credential, path, dir string) error {
	if cred == nil {
		return nil
	}
	u := &appUser{uid: cred.Uid, gid: cred.Gid}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if !permits(u, target, 0o1) {
		return fmt.Errorf("uid %d cannot run %s: it is not executable by others (chmod o+x, or set the app's user)", u.uid, target)
	}
	if dir == "" {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if !permits(u, d, 0o1) {
			return fmt.Errorf("uid %d cannot enter its working folder %s: %s does not let it in (start it from a folder others may enter, or set the app's user)", u.uid, abs, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// permits reports whether u has the permission bits want (0o1 execute or
// search, 0o4 read) on path, as the kernel's owner/group/other check
// would decide it.
func permits(u *appUser, path string, want os.FileMode) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	mode := fi.Mode().Perm()
	switch {
	case st.Uid == u.uid:
		return mode>>6&want == want
	case st.Gid == u.gid:
		return mode>>3&want == want
	}
	return mode&want == want
}
