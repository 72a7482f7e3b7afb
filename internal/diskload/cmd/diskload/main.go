// Command diskload attaches to a saturn instance and runs the self-checking
// disk load of package diskload, then writes its report as JSON. Exit
// status 1 if anything it read was wrong or any call failed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"saturn/appproc"
	"saturn/internal/diskload"
)

func main() {
	var cfg diskload.Config
	flag.IntVar(&cfg.Files, "files", 3, "files")
	flag.IntVar(&cfg.Blocks, "blocks", 256, "4 KiB blocks per file")
	flag.IntVar(&cfg.Writers, "writers", 4, "writing goroutines")
	flag.IntVar(&cfg.Readers, "readers", 4, "reading goroutines")
	flag.IntVar(&cfg.MaxRun, "max-run", 40, "most blocks in one read or write")
	flag.StringVar(&cfg.Dir, "dir", "load", "an existing folder beneath diskproc's root")
	flag.DurationVar(&cfg.Duration, "duration", time.Minute, "longest run")
	flag.StringVar(&cfg.StopFile, "stop-file", "", "stop when this local file exists")
	flag.DurationVar(&cfg.MetadataEvery, "metadata-every", 5*time.Millisecond, "pause between metadata rounds (0: none)")
	ready := flag.String("ready-file", "", "create this local file once the files are written")
	report := flag.String("report", "", "write the report here (default: standard output)")
	flag.Parse()

	app, err := appproc.Attach(context.Background(), appproc.Options{Name: "diskload", Servers: []string{appproc.DiskServer}, DiskWrite: []string{"."}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "diskload:", err)
		os.Exit(2)
	}
	defer app.Close()
	fsys, err := app.FS()
	if err != nil {
		fmt.Fprintln(os.Stderr, "diskload:", err)
		os.Exit(2)
	}
	if *ready != "" {
		cfg.OnReady = func() { os.WriteFile(*ready, nil, 0o644) }
	}
	rep, err := diskload.Run(context.Background(), fsys, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "diskload:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(rep)
	if *report != "" {
		os.WriteFile(*report, out, 0o644)
	} else {
		os.Stdout.Write(out)
	}
	fmt.Fprintf(os.Stderr, "diskload: %d writes, %d reads, %d metadata rounds, %d restarts, %d errors\n",
		rep.Writes, rep.Reads, rep.Metadata, rep.Restarts, len(rep.Errors))
	if len(rep.Errors) > 0 {
		for _, e := range rep.Errors {
			fmt.Fprintln(os.Stderr, "diskload:", e)
		}
		os.Exit(1)
	}
}
