package configs

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed site
var site embed.FS

// SampleSite writes saturn's sample site into dir when dir is empty (or
// missing): the pages the default configuration's web server serves, and a
// 1 KiB and a 100 KiB file for benchmarks. A folder that holds anything is
// left alone. It reports whether it wrote the site.
func SampleSite(dir string) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	if len(entries) > 0 {
		return false, nil
	}
	err = fs.WalkDir(site, "site", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("site", p)
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := site.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		return false, fmt.Errorf("sample site: %w", err)
	}
	for name, size := range map[string]int{"1k.bin": 1 << 10, "100k.bin": 100 << 10} {
		if err := os.WriteFile(filepath.Join(dir, "files", name), SamplePattern(size), 0o644); err != nil {
			return false, fmt.Errorf("sample site: %w", err)
		}
	}
	return true, nil
}

// SamplePattern is the content of the sample site's files/1k.bin and
// files/100k.bin: size deterministic bytes, so that a test or a benchmark
// can check what it fetched.
func SamplePattern(size int) []byte {
	b := make([]byte, size)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
