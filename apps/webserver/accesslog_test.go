package webserver

import (
	"regexp"
	"strings"
	"testing"

	"saturn/internal/testkit"
)

// TestAccessLogCommon: the Common Log Format is the combined one without
// its Referer and User-Agent, with the same escaping.
func TestAccessLogCommon(t *testing.T) {
	var log testkit.SyncBuffer
	_, addr := startServer(t, Config{AccessLog: &log, AccessLogFormat: LogCommon})
	exchange(t, addr, "GET /digits.txt?\"x HTTP/1.1\r\nHost: x\r\nUser-Agent: ua\r\nReferer: http://r/\r\n\r\n"+
		"HEAD /nope HTTP/1.0\r\n\r\n")
	logLines(t, log.String(),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /digits.txt\?\\x22x HTTP/1.1" 200 10$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[.*\] "HEAD /nope HTTP/1.0" 404 0$`),
	)
}

// logLines fails the test unless log has one line for each of want, each
// matching its expression.
func logLines(t *testing.T, log string, want ...*regexp.Regexp) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), log)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %s", i, lines[i], re)
		}
	}
}

func TestParseLogFormat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want LogFormat
		ok   bool
	}{{"combined", LogCombined, true}, {"common", LogCommon, true}, {"", 0, false}, {"Common", 0, false}, {"json", 0, false}} {
		got, err := ParseLogFormat(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseLogFormat(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}
