package webserver

import (
	"net/http"
	"testing"
	"time"
)

func TestHTTPDate(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)),
	} {
		got := string(appendHTTPDate(nil, tm))
		if want := tm.UTC().Format(http.TimeFormat); got != want {
			t.Errorf("appendHTTPDate = %q, want %q", got, want)
		}
		back, ok := parseHTTPDate([]byte(got))
		if !ok || !back.Equal(tm) {
			t.Errorf("parseHTTPDate(%q) = %v, %v", got, back, ok)
		}
	}
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	for _, s := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT", // RFC 850
		"Sun Nov  6 08:49:37 1994",       // asctime
	} {
		if got, ok := parseHTTPDate([]byte(s)); !ok || !got.Equal(want) {
			t.Errorf("parseHTTPDate(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Xyz 1994 08:49:37 GMT"} {
		if _, ok := parseHTTPDate([]byte(s)); ok {
			t.Errorf("parseHTTPDate(%q) accepted", s)
		}
	}
}

func TestEvalPreconditions(t *testing.T) {
	mod := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	etag := []byte(`"abc-1"`)
	before, at, after := "Fri, 01 Mar 2024 11:59:59 GMT", "Fri, 01 Mar 2024 12:00:00 GMT", "Fri, 01 Mar 2024 12:00:01 GMT"
	tests := []struct {
		name string
		set  func(r *request)
		want outcome
	}{
		{"none", func(r *request) {}, proceed},
		{"INM match", func(r *request) { r.ifNoneMatch = [][]byte{[]byte(`"x", "abc-1"`)} }, notModified},
		{"INM weak match", func(r *request) { r.ifNoneMatch = [][]byte{[]byte(`W/"abc-1"`)} }, notModified},
		{"INM star", func(r *request) { r.ifNoneMatch = [][]byte{[]byte(`*`)} }, notModified},
		{"INM second field", func(r *request) { r.ifNoneMatch = [][]byte{[]byte(`"x"`), []byte(`"abc-1"`)} }, notModified},
		{"INM no match", func(r *request) { r.ifNoneMatch = [][]byte{[]byte(`"x", "y"`)} }, proceed},
		{"INM malformed", func(r *request) { r.ifNoneMatch = [][]byte{[]byte(`abc-1, "abc-1`)} }, proceed},
		{"IMS not modified", func(r *request) { r.ifModifiedSince = []byte(at) }, notModified},
		{"IMS later", func(r *request) { r.ifModifiedSince = []byte(after) }, notModified},
		{"IMS modified", func(r *request) { r.ifModifiedSince = []byte(before) }, proceed},
		{"IMS invalid ignored", func(r *request) { r.ifModifiedSince = []byte("soon") }, proceed},
		{"INM overrides IMS", func(r *request) {
			r.ifNoneMatch = [][]byte{[]byte(`"x"`)}
			r.ifModifiedSince = []byte(after)
		}, proceed},
		{"IM match", func(r *request) { r.ifMatch = [][]byte{[]byte(`"abc-1"`)} }, proceed},
		{"IM weak never matches", func(r *request) { r.ifMatch = [][]byte{[]byte(`W/"abc-1"`)} }, preconditionFailed},
		{"IM no match", func(r *request) { r.ifMatch = [][]byte{[]byte(`"x"`)} }, preconditionFailed},
		{"IUS modified since", func(r *request) { r.ifUnmodifiedSince = []byte(before) }, preconditionFailed},
		{"IUS unmodified", func(r *request) { r.ifUnmodifiedSince = []byte(at) }, proceed},
		{"IM beats IUS", func(r *request) {
			r.ifMatch = [][]byte{[]byte(`*`)}
			r.ifUnmodifiedSince = []byte(before)
		}, proceed},
	}
	for _, tt := range tests {
		var r request
		r.reset()
		tt.set(&r)
		if got := evalPreconditions(&r, etag, mod); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRangeApplies(t *testing.T) {
	mod := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	etag := []byte(`"abc-1"`)
	for v, want := range map[string]bool{
		``:                              true,
		`"abc-1"`:                       true,
		`"abc-2"`:                       false,
		`W/"abc-1"`:                     false,
		`Fri, 01 Mar 2024 12:00:00 GMT`: true,
		`Fri, 01 Mar 2024 12:00:01 GMT`: false,
		`garbage`:                       false,
	} {
		r := request{ifRange: []byte(v)}
		if got := rangeApplies(&r, etag, mod); got != want {
			t.Errorf("If-Range %q: %v, want %v", v, got, want)
		}
	}
}
