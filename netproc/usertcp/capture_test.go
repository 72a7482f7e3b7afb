package usertcp

import (
	"errors"
	"os"
	"testing"
)

// TestCaptureWriterReaderGone: a capture written to a pipe whose reader
// went away ends with ErrCaptureReaderGone, not a bare EPIPE on a
// descriptor named after how it was received.
func TestCaptureWriterReaderGone(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	aw := newAsyncWriter(w, 1<<20)
	aw.Write([]byte("pcap"))
	if err := aw.close(); !errors.Is(err, ErrCaptureReaderGone) {
		t.Fatalf("close: %v, want %v", err, ErrCaptureReaderGone)
	}
}
