package webserver

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCurl runs the real curl against the server: a file, HEAD, a range,
// a multipart range, a conditional, keep-alive over several URLs, HTTP/1.0,
// and a path curl sends without normalising it.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (apt-get install curl); skipping the curl matrix")
	}
	_, addr := startServer(t, Config{Root: testDirFS(t), IndexFile: "index.html"})
	base := "http://" + addr
	tests := []struct {
		name string
		args []string
		want []string // substrings of curl's output
	}{
		{"get", []string{base + "/hello.txt"}, []string{"hello, world"}},
		{"head", []string{"-sI", base + "/big.bin"}, []string{"HTTP/1.1 200 OK", "Content-Length: 102400", "Accept-Ranges: bytes"}},
		{"range", []string{"-r", "3-5", base + "/digits.txt"}, []string{"345"}},
		{"multirange", []string{"-si", "-r", "0-0,9-9", base + "/digits.txt"}, []string{"206 Partial Content", "multipart/byteranges", "Content-Range: bytes 0-0/10", "Content-Range: bytes 9-9/10"}},
		{"not modified", []string{"-si", "-H", "If-Modified-Since: Fri, 01 Mar 2024 12:00:00 GMT", base + "/hello.txt"}, []string{"304 Not Modified"}},
		{"keep-alive", []string{"-v", base + "/hello.txt", base + "/digits.txt"}, []string{"Re-using existing connection", "0123456789"}},
		{"http1.0", []string{"-si", "--http1.0", base + "/digits.txt"}, []string{"HTTP/1.1 200 OK", "Connection: close", "0123456789"}},
		{"traversal as is", []string{"-si", "--path-as-is", base + "/../../etc/passwd"}, []string{"400 Bad Request"}},
		{"encoded traversal", []string{"-si", base + "/%2e%2e/%2e%2e/etc/passwd"}, []string{"400 Bad Request"}},
		{"redirect followed", []string{"-sL", base + "/sub"}, []string{"<h1>sub</h1>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-s", "--max-time", "10"}, tt.args...)
			out, err := exec.Command(curl, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl %v: %v\n%s", args, err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("curl %v: output lacks %q:\n%s", args, w, out)
				}
			}
		})
	}
}
