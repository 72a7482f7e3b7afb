// Command diskbench measures reads for bench/diskproc.sh: through diskproc
// (an app attached to a running instance, using appproc's File.ReadAt), or
// with os.File.ReadAt from as many goroutines, and it turns fio's JSON
// output into the same line format. Each run prints one line in `go test
// -bench` form, which bench/benchsum reads:
//
//	BenchmarkDisk/rand4k/cached/qd32/diskproc 1 12345 ns/op 81000 IOPS 316.4 MB/s
//
// ns/op is wall time per operation across all goroutines (1e9/IOPS), so
// ratios of ns/op are ratios of throughput.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/appproc"
)

func main() {
	mode := flag.String("mode", "diskproc", `"diskproc", "osfile" or "fio" (parse fio's JSON on standard input)`)
	name := flag.String("name", "", "the benchmark's name, without the Benchmark prefix")
	file := flag.String("file", "", "the file: a path beneath diskproc's root (diskproc) or a local path (osfile)")
	bs := flag.Int("bs", 4096, "bytes per read")
	depth := flag.Int("depth", 1, "goroutines reading at once")
	direct := flag.Bool("direct", false, "open with O_DIRECT")
	seq := flag.Bool("seq", false, "sequential reads (each goroutine its own stretch) instead of random")
	dur := flag.Duration("duration", 3*time.Second, "how long to read")
	flag.Parse()
	if *mode == "fio" {
		fioLine(*name)
		return
	}
	var readAt func(p []byte, off int64) (int, error)
	var size int64
	switch *mode {
	case "diskproc":
		app, err := appproc.Attach(context.Background(), appproc.Options{Name: "diskbench", Servers: []string{appproc.DiskServer}, DiskWrite: []string{"."}})
		check(err)
		defer app.Close()
		fsys, err := app.FS()
		check(err)
		flags := os.O_RDONLY
		if *direct {
			flags |= syscall.O_DIRECT
		}
		f, err := fsys.OpenFile(*file, flags, 0)
		check(err)
		fi, err := f.Stat()
		check(err)
		readAt, size = f.ReadAt, fi.Size()
	case "osfile":
		flags := os.O_RDONLY
		if *direct {
			flags |= syscall.O_DIRECT
		}
		f, err := os.OpenFile(*file, flags, 0)
		check(err)
		fi, err := f.Stat()
		check(err)
		readAt, size = f.ReadAt, fi.Size()
	default:
		check(fmt.Errorf("unknown mode %q", *mode))
	}
	blocks := size / int64(*bs)
	var ops atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(*dur)
	start := time.Now()
	for g := range *depth {
		wg.Go(func() {
			// Page-aligned memory outside the Go heap: what O_DIRECT
			// wants of os.File's buffer (appproc's are aligned already).
			buf, err := unix.Mmap(-1, 0, *bs, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			check(err)
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			next := int64(g) * blocks / int64(*depth)
			n := int64(0)
			for ; n%64 != 0 || time.Now().Before(deadline); n++ {
				blk := rng.Int64N(blocks)
				if *seq {
					blk, next = next, (next+1)%blocks
				}
				if _, err := readAt(buf, blk*int64(*bs)); err != nil && err != io.EOF {
					check(err)
				}
			}
			ops.Add(n)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	emit(*name, float64(ops.Load())/elapsed.Seconds(), *bs)
}

func emit(name string, iops float64, bs int) {
	fmt.Printf("Benchmark%s 1 %.0f ns/op %.0f IOPS %.1f MB/s\n", name, 1e9/iops, iops, iops*float64(bs)/1e6)
}

// fioLine reads fio's --output-format=json and prints the job's read IOPS.
func fioLine(name string) {
	var out struct {
		Jobs []struct {
			Read struct {
				IOPS float64 `json:"iops"`
				BW   float64 `json:"bw_bytes"`
			} `json:"read"`
		} `json:"jobs"`
	}
	b, err := io.ReadAll(os.Stdin)
	check(err)
	// fio may print notices before the JSON.
	for i := range b {
		if b[i] == '{' {
			b = b[i:]
			break
		}
	}
	check(json.Unmarshal(b, &out))
	if len(out.Jobs) == 0 || out.Jobs[0].Read.IOPS == 0 {
		check(fmt.Errorf("fio reported no reads"))
	}
	r := out.Jobs[0].Read
	fmt.Printf("Benchmark%s 1 %.0f ns/op %.0f IOPS %.1f MB/s\n", name, 1e9/r.IOPS, r.IOPS, r.BW/1e6)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "diskbench:", err)
		os.Exit(1)
	}
}
