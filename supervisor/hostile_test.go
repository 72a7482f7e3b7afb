package supervisor_test

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// Hostile local clients, driven against a real supervisor through its
// control socket (issue 12). Each test tries one way to crash, wedge or
// starve the supervisor and checks that only the hostile connection pays.
// The helpers shared by the hostile_*_test.go files are here.

// dialControl opens a raw control connection to the instance, closed when
// the test ends.
func dialControl(t *testing.T, in *testkit.Instance) *proto.ControlConn {
	t.Helper()
	c, err := proto.Dial(in.ControlSocket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// logSays waits until the supervisor's log contains want.
func logSays(t *testing.T, in *testkit.Instance, want string, timeout time.Duration) {
	t.Helper()
	if !testkit.Until(timeout, func() bool { return strings.Contains(in.Log("supervisor"), want) }) {
		t.Errorf("the supervisor's log does not say %q:\n%s", want, tail(in.Log("supervisor"), 3000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// rawEnvelope is a frame around an envelope map written byte by byte:
// version, type, id, a raw msgpack descriptor count fds (nil: none, so
// that it may be negative or huge) and raw body bytes (nil: none).
func rawEnvelope(typ string, id byte, fds, body []byte) []byte {
	n := byte(3)
	if fds != nil {
		n++
	}
	if body != nil {
		n++
	}
	e := []byte{0x80 | n, 0xa1, 'v', 0x01, 0xa1, 't', 0xa0 | byte(len(typ))}
	e = append(e, typ...)
	e = append(e, 0xa2, 'i', 'd', id)
	if fds != nil {
		e = append(append(e, 0xa3, 'f', 'd', 's'), fds...)
	}
	if body != nil {
		e = append(append(e, 0xa1, 'b'), body...)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(e))), e...)
}

// nextError reads the next envelope on c, by a deadline, and fails the
// test, naming what was sent, unless it is an error reply.
func nextError(t *testing.T, c *proto.ControlConn, what string) *proto.Envelope {
	t.Helper()
	c.UnixConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	e, _, err := c.Receive()
	if err != nil || e.Type != proto.MsgError {
		t.Fatalf("%s: reply %+v, %v; want an error reply", what, e, err)
	}
	return e
}

// statusOver makes a status call on c, by a deadline, so that a wedged
// supervisor fails the test instead of hanging it.
func statusOver(t *testing.T, c *proto.ControlConn) (*proto.StatusReply, error) {
	t.Helper()
	c.UnixConn().SetDeadline(time.Now().Add(10 * time.Second))
	defer c.UnixConn().SetDeadline(time.Time{})
	var st proto.StatusReply
	_, err := c.Call(proto.MsgStatus, &proto.Status{}, &st)
	return &st, err
}
