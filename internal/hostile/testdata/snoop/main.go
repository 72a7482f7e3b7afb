// Command snoop is a hostile app for internal/hostile's tests: started by
// the supervisor under a user of its own, it tries to reach into another
// app and into the files that app serves, and prints what each attempt got,
// one line each ("ATTEMPT RESULT"), then waits to be stopped.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"saturn/appproc"
)

func main() {
	var targets []target
	flag.Func("pid", "NAME=PID: another component to reach into (repeat)", func(v string) error {
		name, pid, ok := strings.Cut(v, "=")
		n, err := strconv.Atoi(pid)
		if !ok || err != nil || n <= 0 {
			return fmt.Errorf("want NAME=PID, got %q", v)
		}
		targets = append(targets, target{name, n})
		return nil
	})
	site := flag.String("site", "", "the folder diskproc serves, on disk")
	file := flag.String("file", "index.html", "a file of the site, relative to it")
	flag.Parse()

	fmt.Printf("uid %d gid %d\n", os.Getuid(), os.Getgid())
	for _, t := range targets {
		// Its descriptors: the shared-memory regions of its channels
		// among them. Opening one through /proc is how a process of the
		// same user could map another's buffers; its memory, how it
		// could read them directly.
		opened := 0
		for i := 3; i < 64; i++ {
			f, err := os.Open(fmt.Sprintf("/proc/%d/fd/%d", t.pid, i))
			if err == nil {
				f.Close()
				opened++
			}
		}
		fmt.Printf("open-fds %s %d opened\n", t.name, opened)
		mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", t.pid))
		if err == nil {
			mem.Close()
		}
		report("open-mem "+t.name, err)
		report("signal "+t.name, syscall.Kill(t.pid, syscall.SIGSTOP))
	}
	f, err := os.OpenFile(filepath.Join(*site, *file), os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		f.Close()
	}
	report("write-on-disk", err)

	app, err := appproc.Attach(context.Background(), appproc.Options{})
	if err != nil {
		report("attach", err)
		select {}
	}
	fsys, err := app.FS()
	if err != nil {
		report("fs", err)
		select {}
	}
	_, err = fsys.ReadFile(*file)
	report("read-through-diskproc", err)
	err = fsys.WriteFile(*file, []byte("defaced"), 0o644)
	report("write-through-diskproc", err)
	fmt.Println("done")
	select {}
}

type target struct {
	name string
	pid  int
}

// report prints an attempt's outcome: "ok", or the errno's name.
func report(what string, err error) {
	switch {
	case err == nil:
		fmt.Printf("%s ok\n", what)
	case errors.Is(err, fs.ErrPermission):
		fmt.Printf("%s denied\n", what)
	default:
		var errno syscall.Errno
		if errors.As(err, &errno) {
			fmt.Printf("%s errno %s\n", what, strconv.Itoa(int(errno)))
			return
		}
		fmt.Printf("%s error %v\n", what, err)
	}
}
