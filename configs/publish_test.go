package configs

import (
	"strings"
	"testing"
)

// TestParsePublish: Docker's -p forms, and a clear error for each bad one.
func TestParsePublish(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080:8080": "127.0.0.1:8080->8080",
		"0.0.0.0:80:8080":     "0.0.0.0:80->8080",
		"9000:80":             "127.0.0.1:9000->80",
		"[::1]:8443:443":      "[::1]:8443->443",
	} {
		p, err := ParsePublish(in)
		if err != nil || p.String() != want {
			t.Errorf("%q: %v %v, want %s", in, p, err, want)
		}
	}
	for in, why := range map[string]string{
		"8080":                "no port",
		"127.0.0.1:8080:0":    "not 1 to 65535",
		"127.0.0.1:8080:http": "not 1 to 65535",
		"127.0.0.1:0:8080":    "the host's port is 0",
		"nohost:8080:8080":    "want HOSTADDR:HOSTPORT:PORT",
		"1.2.3:8080:8080":     "want HOSTADDR:HOSTPORT:PORT",
	} {
		if _, err := ParsePublish(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want an error saying %q", in, err, why)
		}
	}
	// In a config, a bad entry names its key.
	if _, err := Parse([]byte("[netproc]\npublish = [\"8080\"]\n"), "x.toml"); err == nil || !strings.Contains(err.Error(), "netproc.publish") {
		t.Errorf("a bad publish in a config: %v", err)
	}
}

// FuzzParsePublish: whatever the string, an error or an entry that reads
// back the same.
func FuzzParsePublish(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8080:8080", "9000:80", "[::1]:1:2", ":::", "8080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePublish(s)
		if err != nil {
			return
		}
		if p.Port == 0 || p.Host.Port() == 0 {
			t.Fatalf("%q gave port 0: %v", s, p)
		}
		host, port, _ := strings.Cut(p.String(), "->")
		again, err := ParsePublish(host + ":" + port)
		if err != nil || again != p {
			t.Fatalf("%q: %v reads back as %v %v", s, p, again, err)
		}
	})
}
