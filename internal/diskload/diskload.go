// Package diskload is a load that checks itself: goroutines write
// self-describing 4 KiB blocks at random places in a few files and read
// them back, through appproc's file API, and every byte read is compared
// with what the model says it must be. The kill-diskproc-under-load test
// runs it (cmd/diskload) while it kills diskproc, then checks the files on
// disk against the final model.
package diskload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"saturn/appproc"
)

// BlockSize is the unit the model tracks.
const BlockSize = 4096

// Block is the content of block idx of file f at version v: a header
// naming all three, then bytes drawn from a generator seeded by them, so
// that any block read can be recognised and checked byte for byte.
func Block(f, idx int, v uint64) []byte {
	b := make([]byte, BlockSize)
	binary.LittleEndian.PutUint64(b[0:], 0x5a7c_d15c_b10c_0001)
	binary.LittleEndian.PutUint32(b[8:], uint32(f))
	binary.LittleEndian.PutUint32(b[12:], uint32(idx))
	binary.LittleEndian.PutUint64(b[16:], v)
	r := rand.New(rand.NewPCG(uint64(f)<<32|uint64(idx), v))
	for i := 24; i < BlockSize; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// Check reports the version a block read for (f, idx) holds, or an error
// naming what is wrong with it.
func Check(b []byte, f, idx int) (uint64, error) {
	if len(b) != BlockSize || binary.LittleEndian.Uint64(b) != 0x5a7c_d15c_b10c_0001 {
		return 0, fmt.Errorf("file %d block %d: not a block (header % x)", f, idx, b[:min(len(b), 24)])
	}
	if gf, gi := binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint32(b[12:]); gf != uint32(f) || gi != uint32(idx) {
		return 0, fmt.Errorf("file %d block %d: holds block %d of file %d", f, idx, gi, gf)
	}
	v := binary.LittleEndian.Uint64(b[16:])
	want := Block(f, idx, v)
	for i := range b {
		if b[i] != want[i] {
			return v, fmt.Errorf("file %d block %d version %d: byte %d is %#x, want %#x", f, idx, v, i, b[i], want[i])
		}
	}
	return v, nil
}

// Config sizes the load.
type Config struct {
	Files, Blocks    int           // files, and blocks per file
	Writers, Readers int           // goroutines
	Dir              string        // folder beneath diskproc's root
	Duration         time.Duration // how long to run, unless StopFile appears first
	StopFile         string        // a path on the local file system
	MaxRun           int           // most blocks one read or write covers (several buffers)
	MetadataEvery    time.Duration // how often to create, list, stat and remove a small file
	OnReady          func()        // called once the files are written, as the load starts
}

// Report is what a run did.
type Report struct {
	Writes, Reads, BytesWritten, BytesRead, Metadata int64
	Restarts                                         int
	Errors                                           []string
	Versions                                         [][]uint64 // final version of every block
}

// model is the state of every block: its committed version, and a
// sequence number that is odd while a write of it is in flight (a seqlock:
// a read that saw the same even number before and after must find exactly
// the committed version).
type model struct {
	version [][]atomic.Uint64
	seq     [][]atomic.Uint64
}

// Run runs the load on fsys until ctx ends, the duration passes or the
// stop file appears, and then reads every block once more.
func Run(ctx context.Context, fsys *appproc.FS, cfg Config) (*Report, error) {
	files := make([]*appproc.File, cfg.Files)
	m := &model{version: make([][]atomic.Uint64, cfg.Files), seq: make([][]atomic.Uint64, cfg.Files)}
	for f := range files {
		var err error
		name := path.Join(cfg.Dir, fmt.Sprintf("f%d", f))
		if files[f], err = fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			return nil, err
		}
		m.version[f] = make([]atomic.Uint64, cfg.Blocks)
		m.seq[f] = make([]atomic.Uint64, cfg.Blocks)
		all := make([]byte, 0, cfg.Blocks*BlockSize)
		for i := range cfg.Blocks {
			all = append(all, Block(f, i, 0)...)
		}
		if _, err := files[f].WriteAt(all, 0); err != nil {
			return nil, err
		}
	}
	if cfg.OnReady != nil {
		cfg.OnReady()
	}
	rep := &Report{}
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(rep.Errors) < 20 {
			rep.Errors = append(rep.Errors, err.Error())
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	for w := range cfg.Writers {
		wg.Go(func() { writer(ctx, w, cfg, files, m, rep, fail) })
	}
	for r := range cfg.Readers {
		wg.Go(func() { reader(ctx, r, cfg, files, m, rep, fail) })
	}
	if cfg.MetadataEvery > 0 {
		wg.Go(func() { metadata(ctx, fsys, cfg, rep, fail) })
	}
	for ctx.Err() == nil {
		if cfg.StopFile != "" {
			if _, err := os.Stat(cfg.StopFile); err == nil {
				cancel()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	// The final state, read through diskproc once more.
	rep.Versions = make([][]uint64, cfg.Files)
	for f, file := range files {
		all := make([]byte, cfg.Blocks*BlockSize)
		if _, err := file.ReadAt(all, 0); err != nil {
			fail(fmt.Errorf("final read of file %d: %w", f, err))
		}
		rep.Versions[f] = make([]uint64, cfg.Blocks)
		for i := range cfg.Blocks {
			rep.Versions[f][i] = m.version[f][i].Load()
			if v, err := Check(all[i*BlockSize:(i+1)*BlockSize], f, i); err != nil || v != rep.Versions[f][i] {
				fail(fmt.Errorf("final read of file %d block %d: version %d, want %d (%v)", f, i, v, rep.Versions[f][i], err))
			}
		}
		if err := file.Close(); err != nil {
			fail(fmt.Errorf("close of file %d: %w", f, err))
		}
	}
	rep.Restarts = fsys.Channel().Restarts()
	return rep, nil
}

// writer w owns the blocks [w*B/W, (w+1)*B/W) of every file, so no two
// writers touch one block, and writes runs of them.
func writer(ctx context.Context, w int, cfg Config, files []*appproc.File, m *model, rep *Report, fail func(error)) {
	lo, hi := w*cfg.Blocks/cfg.Writers, (w+1)*cfg.Blocks/cfg.Writers
	rng := rand.New(rand.NewPCG(uint64(w), 99))
	for ctx.Err() == nil {
		f := rng.IntN(len(files))
		n := 1
		if rng.IntN(4) == 0 {
			n = 1 + rng.IntN(min(cfg.MaxRun, hi-lo))
		}
		first := lo + rng.IntN(hi-lo-n+1)
		buf := make([]byte, 0, n*BlockSize)
		for i := first; i < first+n; i++ {
			m.seq[f][i].Add(1) // odd: writing
			buf = append(buf, Block(f, i, m.version[f][i].Load()+1)...)
		}
		_, err := files[f].WriteAt(buf, int64(first*BlockSize))
		for i := first; i < first+n; i++ {
			if err == nil {
				m.version[f][i].Add(1)
			}
			m.seq[f][i].Add(1)
		}
		if err != nil {
			fail(fmt.Errorf("write of file %d blocks %d-%d: %w", f, first, first+n-1, err))
			return
		}
		atomic.AddInt64(&rep.Writes, 1)
		atomic.AddInt64(&rep.BytesWritten, int64(len(buf)))
	}
}

func reader(ctx context.Context, r int, cfg Config, files []*appproc.File, m *model, rep *Report, fail func(error)) {
	rng := rand.New(rand.NewPCG(uint64(r), 7))
	for ctx.Err() == nil {
		f := rng.IntN(len(files))
		n := 1 + rng.IntN(cfg.MaxRun)
		first := rng.IntN(cfg.Blocks - n + 1)
		before := make([]uint64, n)
		for i := range n {
			before[i] = m.seq[f][first+i].Load()
		}
		buf := make([]byte, n*BlockSize)
		if _, err := files[f].ReadAt(buf, int64(first*BlockSize)); err != nil && err != io.EOF {
			fail(fmt.Errorf("read of file %d blocks %d-%d: %w", f, first, first+n-1, err))
			return
		}
		for i := range n {
			idx := first + i
			// The committed version, loaded before the sequence number is
			// checked again: if that did not move, no write of the block
			// began or ended since before the read, and this is the
			// version the read must have found.
			committed := m.version[f][idx].Load()
			settled := before[i]%2 == 0 && m.seq[f][idx].Load() == before[i]
			v, err := Check(buf[i*BlockSize:(i+1)*BlockSize], f, idx)
			switch {
			case settled && err != nil:
				fail(err)
			case settled && v != committed:
				fail(fmt.Errorf("file %d block %d: read version %d, committed %d", f, idx, v, committed))
			}
			// A block written during the read may be torn by the page
			// cache; the final read checks it.
		}
		atomic.AddInt64(&rep.Reads, 1)
		atomic.AddInt64(&rep.BytesRead, int64(len(buf)))
	}
}

// metadata creates, lists, stats, reads back and removes small files.
func metadata(ctx context.Context, fsys *appproc.FS, cfg Config, rep *Report, fail func(error)) {
	for i := 0; ctx.Err() == nil; i++ {
		name := path.Join(cfg.Dir, fmt.Sprintf("meta-%d", i))
		want := Block(1000, i, 1)[:100+i%3000]
		f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.Write(want)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil {
			var got []byte
			if got, err = fsys.ReadFile(name); err == nil && string(got) != string(want) {
				err = fmt.Errorf("read back %d bytes, wrote %d", len(got), len(want))
			}
		}
		if err == nil {
			var fi interface{ Size() int64 }
			if fi, err = fsys.Stat(name); err == nil && fi.Size() != int64(len(want)) {
				err = fmt.Errorf("stat says %d bytes, wrote %d", fi.Size(), len(want))
			}
		}
		if err == nil {
			var list []interface{ Name() string }
			entries, lerr := fsys.ReadDir(cfg.Dir)
			for _, e := range entries {
				list = append(list, e)
			}
			if err = lerr; err == nil && len(list) < cfg.Files+1 {
				err = errors.New("listing lacks files")
			}
		}
		if err != nil {
			fail(fmt.Errorf("metadata round %d (%s): %w", i, name, err))
			return
		}
		atomic.AddInt64(&rep.Metadata, 1)
		time.Sleep(cfg.MetadataEvery)
	}
}
