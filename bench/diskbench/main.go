// Command diskbench measures reads for bench/diskproc.sh: through diskproc
// (an app attached to a running instance, using appproc's File.ReadAt), or
// with os.File.ReadAt from as many goroutines, and it turns fio's JSON
// output into the same line format. Each run prints one line in `go test
// -bench` form, which bench/benchsum reads:
//
//	BenchmarkDisk/rand4k/cached/qd32/diskproc 1 12345 ns/op 81000 IOPS 316.4 MB/s
//
// ns/op is wall time per operation across all goroutines (1e9/IOPS), so
// ratios of ns/op are ratios of throughput. cpu-ns/op is the processor time
// each read cost, the reader's own and, with -server-pid, diskproc's
// (server-ns/op) too: on a shared machine throughput moves with the
// neighbours' load, and what each read costs moves much less.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
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
	serverPID := flag.Int("server-pid", 0, "diskproc's process, whose processor time per read is reported too")
	idle := flag.Bool("idle", false, "read nothing: hold the file open for -duration after one read, and report the processor time the reader and diskproc spent meanwhile (idle-cpu-%, of one core)")
	flag.Parse()
	if *mode == "fio" {
		fioLine(*name)
		return
	}
	flags := os.O_RDONLY
	if *direct {
		flags |= syscall.O_DIRECT
	}
	// The file as both modes open it: appproc's File or an os.File.
	var f interface {
		io.ReaderAt
		Stat() (fs.FileInfo, error)
	}
	var err error
	switch *mode {
	case "diskproc":
		app, err := appproc.Attach(context.Background(), appproc.Options{Name: "diskbench", Servers: []string{appproc.DiskServer}, DiskWrite: []string{"."}})
		check(err)
		defer app.Close()
		fsys, err := app.FS()
		check(err)
		f, err = fsys.OpenFile(*file, flags, 0)
		check(err)
	case "osfile":
		f, err = os.OpenFile(*file, flags, 0)
		check(err)
	default:
		check(fmt.Errorf("unknown mode %q", *mode))
	}
	fi, err := f.Stat()
	check(err)
	readAt, size := f.ReadAt, fi.Size()
	if *idle {
		idleCost(*name, readAt, *bs, *dur, *serverPID)
		return
	}
	blocks := size / int64(*bs)
	var ops atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(*dur)
	start := time.Now()
	cpu0, server0 := selfCPU(), procCPU(*serverPID)
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
	n := float64(ops.Load())
	cpu := fmt.Sprintf(" %.0f cpu-ns/op", float64(selfCPU()-cpu0)/n)
	if *serverPID > 0 {
		server := float64(procCPU(*serverPID) - server0)
		cpu += fmt.Sprintf(" %.0f server-ns/op %.0f total-cpu-ns/op", server/n, (float64(selfCPU()-cpu0)+server)/n)
	}
	emit(*name, n/elapsed.Seconds(), *bs, cpu)
}

func emit(name string, iops float64, bs int, extra string) {
	fmt.Printf("Benchmark%s 1 %.0f ns/op %.0f IOPS %.1f MB/s%s\n", name, 1e9/iops, iops, iops*float64(bs)/1e6, extra)
}

// idleCost reads once (so that everything is set up and warm), waits a
// moment for spinning to end, then measures what holding the file open and
// doing nothing costs, in this process and in diskproc.
func idleCost(name string, readAt func([]byte, int64) (int, error), bs int, dur time.Duration, serverPID int) {
	if _, err := readAt(make([]byte, bs), 0); err != nil && err != io.EOF {
		check(err)
	}
	time.Sleep(100 * time.Millisecond)
	cpu0, server0 := selfCPU(), procCPU(serverPID)
	start := time.Now()
	time.Sleep(dur)
	elapsed := time.Since(start)
	self := float64(selfCPU()-cpu0) / float64(elapsed) * 100
	server := float64(procCPU(serverPID)-server0) / float64(elapsed) * 100
	fmt.Printf("Benchmark%s 1 %.0f ns/op %.3f idle-cpu-%% %.3f server-idle-cpu-%%\n", name, float64(elapsed), self, server)
}

// selfCPU is the processor time this process has used, in nanoseconds.
func selfCPU() time.Duration {
	var ru unix.Rusage
	check(unix.Getrusage(unix.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the processor time process pid has used (user and system,
// every thread), from /proc/pid/stat, in nanoseconds; 0 for pid 0.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is the first, utime and stime the 12th and 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		check(fmt.Errorf("/proc/%d/stat: too few fields", pid))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	check(errors.Join(err1, err2))
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc's times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// fioLine reads fio's --output-format=json and prints the job's read IOPS.
func fioLine(name string) {
	var out struct {
		Jobs []struct {
			Read struct {
				IOPS float64 `json:"iops"`
				BW   float64 `json:"bw_bytes"`
			} `json:"read"`
			UsrCPU float64 `json:"usr_cpu"` // percent of the job's run time
			SysCPU float64 `json:"sys_cpu"`
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
	j := out.Jobs[0]
	fmt.Printf("Benchmark%s 1 %.0f ns/op %.0f IOPS %.1f MB/s %.0f cpu-ns/op\n", name, 1e9/j.Read.IOPS, j.Read.IOPS, j.Read.BW/1e6,
		(j.UsrCPU+j.SysCPU)/100*1e9/j.Read.IOPS)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "diskbench:", err)
		os.Exit(1)
	}
}
