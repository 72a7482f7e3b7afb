package webserver

import "testing"

func TestResolvePath(t *testing.T) {
	tests := []struct {
		raw    string
		name   string
		dir    bool
		status int
	}{
		{raw: "/", name: ".", dir: true},
		{raw: "/a.txt", name: "a.txt"},
		{raw: "/a/b/", name: "a/b", dir: true},
		{raw: "//a///b", name: "a/b"},
		{raw: "/./a/./b/.", name: "a/b", dir: true},
		{raw: "/a/../b", name: "b"},
		{raw: "/a/b/..", name: "a", dir: true},
		{raw: "/a/..", name: ".", dir: true},
		{raw: "/%61%62c", name: "abc"},
		{raw: "/sp%20ace", name: "sp ace"},
		{raw: "/sub%2fa.txt", name: "sub/a.txt"},
		{raw: "/sub%2Fa.txt", name: "sub/a.txt"},
		{raw: "/a/%2e%2e/b", name: "b"},
		{raw: "/a%2f..%2fb", name: "b"},
		{raw: "/caf%C3%A9", name: "caf\u00e9"},
		{raw: "/..a", name: "..a"},
		{raw: "/a..", name: "a.."},
		{raw: "/...", name: "..."},
		{raw: "/+", name: "+"}, // '+' is a plus in a path, not a space

		{raw: "/..", status: 400},
		{raw: "/../etc/passwd", status: 400},
		{raw: "/a/../../etc/passwd", status: 400},
		{raw: "/%2e%2e/etc/passwd", status: 400},
		{raw: "/%2E%2E%2Fetc%2Fpasswd", status: 400},
		{raw: "/..%2f..%2fetc%2fpasswd", status: 400},
		{raw: "/.%2e/x", status: 400},
		{raw: "/a%00b", status: 400},
		{raw: "/a%", status: 400},
		{raw: "/a%2", status: 400},
		{raw: "/a%zz", status: 400},
		{raw: "/a%%32%65", status: 400}, // no double decoding
	}
	for _, tt := range tests {
		name, _, dir, err := resolvePath(nil, []byte(tt.raw))
		if tt.status != 0 {
			if err == nil || err.status != tt.status {
				t.Errorf("resolvePath(%q) = %q, %v; want status %d", tt.raw, name, err, tt.status)
			}
			continue
		}
		if err != nil || string(name) != tt.name || dir != tt.dir {
			t.Errorf("resolvePath(%q) = %q dir=%v err=%v; want %q dir=%v", tt.raw, name, dir, err, tt.name, tt.dir)
		}
	}
}
