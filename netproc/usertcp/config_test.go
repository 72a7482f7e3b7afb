package usertcp_test

import (
	"testing"
	"time"

	"saturn/configs"
	"saturn/netproc/tcp"
	"saturn/netproc/usertcp"
)

// TestFromConfig: netproc's [netproc] keys reach the stack and every
// connection's core configuration.
func TestFromConfig(t *testing.T) {
	c, err := usertcp.FromConfig(configs.Netproc{
		Netns: "ns1", Address: "10.9.0.2/24", MTU: 9000, Congestion: "reno",
		TimeWait: configs.Duration(5 * time.Second), ImpairDrop: 2, ImpairSeed: 7, ECN: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "ns1" || c.Address.String() != "10.9.0.2/24" || c.MTU != 9000 {
		t.Errorf("link: %+v", c)
	}
	if c.Conn.Congestion != tcp.CCReno || c.Conn.TimeWait != 5*time.Second || !c.Conn.ECN || !c.HostRoute {
		t.Errorf("conn: congestion %v time-wait %v ECN %v; host route %v", c.Conn.Congestion, c.Conn.TimeWait, c.Conn.ECN, c.HostRoute)
	}
	if c, _ := usertcp.FromConfig(configs.Netproc{Address: "10.9.0.2/24"}); c.Conn.ECN {
		t.Error("ECN on by default")
	}
	if c.Impair.DropPercent != 2 || c.Impair.Seed != 7 || !c.Impair.Active() {
		t.Errorf("impairment: %+v", c.Impair)
	}
	if c, err := usertcp.FromConfig(configs.Netproc{Address: "10.9.0.2/24", Congestion: "bbr"}); err != nil || c.Conn.Congestion != tcp.CCBBR {
		t.Errorf("congestion bbr: %v, %v", c.Conn.Congestion, err)
	}
	if _, err := usertcp.FromConfig(configs.Netproc{Address: "10.9.0.2/24", Congestion: "vegas"}); err == nil {
		t.Error("congestion vegas: no error")
	}
	if _, err := usertcp.FromConfig(configs.Netproc{Address: "nope"}); err == nil {
		t.Error("address nope: no error")
	}
}
