package usertcp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"saturn/configs"
	"saturn/netproc/link"
	"saturn/netproc/tcp"
)

// Config configures a Stack. Zero fields take the defaults below.
type Config struct {
	// Namespace is the network namespace that holds the TUN device: created
	// if missing and removed again at Close if this stack created it.
	Namespace string
	// Address is saturn's address and the link's prefix (10.77.0.2/24);
	// the kernel's side of the link gets another address of the prefix.
	Address netip.Prefix
	// MTU of the link; default 1500. The MSS follows from it.
	MTU int
	// HostRoute joins the namespace to the host with a veth pair and
	// routes Address's prefix from the host through it
	// (link.EnsureHostLink), so that the host reaches saturn's address.
	HostRoute bool
	// NoOffload asks for a plain TUN device, without the virtio-net header
	// and its checksum and segmentation offloads.
	NoOffload bool
	// Impair makes the link drop, duplicate, reorder and delay packets.
	Impair link.ImpairOptions
	// Device, when set, is used instead of a TUN device in a namespace (a
	// test's channel device); Namespace is then only what status shows.
	// The stack owns it and closes it.
	Device link.Device

	// Persist is the persistent memory holding the connection table (the
	// supervisor's memfd, proto.PersistFromEnv); nil: a private memfd. The
	// stack owns it and grows it to the size its layout needs.
	Persist *os.File
	// MaxConns is the connection table's capacity (connections in every
	// state, TIME-WAIT included); default 131072.
	MaxConns int
	// SendBuf and RecvBuf are each connection's buffer sizes; default 512
	// KiB each. They are also the most OptSendBuffer and OptRecvBuffer
	// may ask for: every connection has a slot of this size in the table,
	// which costs memory only for the pages in use.
	SendBuf, RecvBuf int

	// Conn is the default configuration of every connection (its MSS is
	// derived from the MTU when zero).
	Conn tcp.Config
	// SynBacklog is the number of half-open connections a listener keeps
	// before it answers with SYN cookies; default 1024, or the listen
	// backlog if that is larger.
	SynBacklog int

	// Resume keeps the connections apps hold across netproc's death (see
	// recover.go): the next incarnation resumes them for their apps
	// instead of resetting them. ResumeGrace is how long it keeps one for
	// its app's channel to come back and claim it; default 10 s.
	Resume      bool
	ResumeGrace time.Duration

	// Log receives the stack's messages; default: the loop's logger.
	Log *slog.Logger
}

// Defaults.
const (
	DefaultMaxConns   = 131072
	DefaultBufSize    = 512 << 10
	DefaultSynBacklog = 1024
	// DefaultResumeGrace is how long a resumed connection waits for its
	// app's channel.
	DefaultResumeGrace = 10 * time.Second
	minBufSize         = 4 << 10
)

func (c Config) withDefaults() (Config, error) {
	if c.MTU <= 0 {
		c.MTU = link.DefaultMTU
	}
	if c.MTU < 576 || c.MTU > 65535 {
		return c, fmt.Errorf("usertcp: MTU %d out of range", c.MTU)
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.SendBuf <= 0 {
		c.SendBuf = DefaultBufSize
	}
	if c.RecvBuf <= 0 {
		c.RecvBuf = DefaultBufSize
	}
	c.SendBuf = max(alignUp(c.SendBuf, pageSize), minBufSize)
	c.RecvBuf = max(alignUp(c.RecvBuf, pageSize), minBufSize)
	if c.Conn.MSS == 0 {
		c.Conn.MSS = uint16(c.MTU - 40)
	}
	// As Go's net and the kernel backend: Nagle off unless an app turns it
	// on. And the loss recovery Linux has (RACK-TLP with PRR, D-SACK, undo
	// of spurious reductions, F-RTO; see package tcp), which real paths
	// need, and window validation for apps that send less than cwnd
	// allows (RFC 7661) in place of the restart after idle.
	// Conn.ECN stays as the caller set it: off unless asked for.
	c.Conn.NoDelay = true
	c.Conn.FastLossRecovery = true
	c.Conn.CwndValidation = true
	if c.SynBacklog <= 0 {
		c.SynBacklog = DefaultSynBacklog
	}
	if c.ResumeGrace <= 0 {
		c.ResumeGrace = DefaultResumeGrace
	}
	if !c.Address.IsValid() || !c.Address.Addr().Is4() {
		return c, fmt.Errorf("usertcp: address %v is not an IPv4 prefix", c.Address)
	}
	if c.Device == nil && c.Namespace == "" {
		return c, errors.New("usertcp: no namespace for the TUN device")
	}
	return c, nil
}

// FromConfig turns netproc's configuration into a stack configuration:
// the namespace, the address, and the link impairment.
func FromConfig(np configs.Netproc) (Config, error) {
	pfx, err := netip.ParsePrefix(np.Address)
	if err != nil {
		return Config{}, fmt.Errorf("usertcp: address %q: %w", np.Address, err)
	}
	var cc tcp.CCAlgorithm
	switch np.Congestion {
	case "", "cubic":
		cc = tcp.CCCubic
	case "reno":
		cc = tcp.CCReno
	case "bbr":
		cc = tcp.CCBBR
	default:
		return Config{}, fmt.Errorf("usertcp: congestion control %q: want \"cubic\", \"reno\" or \"bbr\"", np.Congestion)
	}
	return Config{
		Namespace: np.Netns,
		Address:   pfx,
		HostRoute: np.RoutesFromHost(),
		MTU:       np.MTU,
		MaxConns:  np.MaxConnections,
		Resume:    np.Resumes(),
		Conn:      tcp.Config{Congestion: cc, TimeWait: time.Duration(np.TimeWait), ECN: np.ECN},
		Impair: link.ImpairOptions{
			Seed:             np.ImpairSeed,
			DropPercent:      np.ImpairDrop,
			DuplicatePercent: np.ImpairDuplicate,
			ReorderPercent:   np.ImpairReorder,
			Delay:            time.Duration(np.ImpairDelay),
		},
	}, nil
}
