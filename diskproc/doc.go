// Package diskproc is saturn's disk server: it serves file operations
// (open, read, write, fsync, stat, readdir, close) from every attached app
// over their rings, beneath one root directory, with io_uring or a
// pread/pwrite worker pool underneath.
//
// # How a request travels
//
// serverkit's loop decodes each entry once, releases its slot, and hands it
// to Server.Submit on the loop goroutine, which owns every table here.
// Submit checks everything the app could have got wrong or lied about (the
// handle against the app's own table, the buffer with ring.Loans, lengths,
// offsets, flags, O_DIRECT alignment, the app's limits) and answers a bad
// entry at once with an error completion that carries an errno and a
// proto.Reason. A good entry becomes an op: data operations (read, write,
// fsync) go to the backend, which batches them (one io_uring_enter, or one
// wake-up of the workers, per loop round: EndRound); metadata operations
// (open, stat, readdir) go to a small worker pool in both backends, since
// io_uring has no getdents and they are rare; close runs on the loop. The
// backend reports each finished op back on the loop goroutine (finish),
// which updates the tables and completes the entry, returning its buffer
// before the completion that names it is published.
//
// # Buffers
//
// Reads and writes go straight into and out of the channel's shared
// buffers: the kernel copies between the page cache (or the device, with
// O_DIRECT) and the app's buffer, with no copy in diskproc. With io_uring
// each channel's whole buffer pool is one registered (fixed) buffer, so the
// kernel does not pin and unpin pages per request, and each open file a
// registered file. A channel is only unmapped after every op that points
// into it has finished (Dropped waits), since the kernel would otherwise
// write into memory that may be mapped again for something else.
//
// # Handles
//
// Handles are per app: random 62-bit numbers in a table of the app's own,
// so one app can neither use nor guess another's files. Each app may hold
// at most Options.MaxOpen files (EMFILE past it) and have at most
// Options.MaxInflight requests in flight (EAGAIN past it): a greedy app is
// refused, never queued ahead of the others.
//
// # Restart with nothing lost
//
// The open-file table lives in the server's persistent memory (a memfd the
// supervisor keeps for the instance's life, see persist.go): for each open
// file its app's channel, handle, path, flags, device and inode, and the
// user_data of the open that made it. A new incarnation rebuilds each app's
// table when its channel arrives (Added), before serving it: it reopens
// every path without create, truncate or exclusive (those already
// happened), checks that device and inode still match, and gives the file
// its old handle; a file removed or replaced meanwhile answers ESTALE.
// Then, as ring/doc.go describes, the app replays what the dead incarnation
// had taken and not answered: reads and positioned writes are idempotent
// and run again; a replayed open whose record exists answers the handle
// already made (so an exclusive create is not refused by its own first
// attempt); a replayed close of a file the dead incarnation had closed
// finds its tombstone and succeeds. Appending writes are not idempotent and
// are not replayed (the app gets ECONNRESET if diskproc dies during one).
package diskproc
