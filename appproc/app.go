// Package appproc is what an app programmer links to run on saturn. An app
// attaches to its instance (Attach) and gets one channel per server; every
// blocking call it makes (Do here, and the socket and file APIs built on
// it) becomes an entry on a shared-memory ring, and the calling goroutine
// parks until the server's completion arrives.
//
// An app is either started by the supervisor (listed in the config, or
// launched with `saturn attach -- CMD`), in which case Attach uses the
// control link the supervisor passed it, or started by anyone, in which
// case Attach dials the instance's control socket, found from
// SATURN_STATE_DIR and SATURN_INSTANCE or their defaults.
//
// # Graceful restarts
//
// The supervisor stops an app with SIGTERM (`saturn stop`, `saturn restart
// NAME`, `saturn upgrade NAME`, a reload), then SIGKILL after stop_grace.
// An app hears of it through Stopping (a channel) or StopContext (a
// context), and stops at a request boundary; with net/http:
//
//	ctx := appproc.StopContext(context.Background())
//	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
//	err := srv.Serve(ln) // http.ErrServerClosed once Shutdown is called
//
// A stop leaves the app's listeners to its next incarnation (Leave)
// rather than closing them: netproc keeps each socket, still queueing
// connections, and the next incarnation's Listen adopts it, so no client
// is refused. Stopping's channel closes once the connections the app had
// accepted have brought their first bytes (at most StopSettle), so that a
// Shutdown that drops requests which had not begun to arrive (net/http's)
// drops none. Requests in flight are finished by the app; idle keep-alive
// connections are closed by its Shutdown, cleanly (a FIN), and a client
// retries a request it had sent on one just then (Go's Transport and
// browsers do, for idempotent requests). examples/httpserver is such an
// app; docs/restart.md says what a restart and a kill keep.
package appproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"saturn/proto"
	"saturn/ring"
)

// Options say how to attach.
type Options struct {
	// Name is the app's name in status. Default: the name the supervisor
	// gave it, else the program's file name.
	Name string
	// Servers to open channels to; default: all of them.
	Servers []string
	// DeferReady: the supervisor takes the app as ready only when it calls
	// Ready (say, once it listens), not as soon as it attaches. Startup
	// waits for it, so what the app reports shows from the first status.
	DeferReady bool
	// StateDir and Instance find a running instance when the app was not
	// started by it. Default: $SATURN_STATE_DIR and $SATURN_INSTANCE, else
	// saturn's defaults.
	StateDir, Instance string
	// DiskWrite and Listen are the grants an app that attaches itself asks
	// for (docs/security.md): the folders beneath diskproc's root it may
	// write in, and where it may listen. Without them it only reads, and
	// listens on ports from 1024 up. An app the supervisor starts has its
	// config's grants, and these are ignored.
	DiskWrite, Listen []string
}

// App is an attached app.
type App struct {
	name     string
	instance string
	session  *proto.Session
	channels map[string]*Channel

	closeOnce sync.Once
}

// Attach connects the app to its instance and maps its channels.
func Attach(ctx context.Context, opts Options) (*App, error) {
	// The app's memory will map its channels: keep it out of core dumps
	// and out of reach of other processes of its user (docs/security.md;
	// SATURN_DUMPABLE=1 keeps it dumpable, for a debugger).
	proto.NotDumpable()
	sess, err := connect(opts)
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = os.Getenv(proto.EnvName)
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(os.Args[0])
	}
	var reply proto.AttachReply
	att := &proto.Attach{Name: opts.Name, PID: os.Getpid(), Servers: opts.Servers, DeferReady: opts.DeferReady}
	if len(opts.DiskWrite) > 0 || len(opts.Listen) > 0 {
		att.Grants = &proto.ChannelGrants{DiskWrite: opts.DiskWrite, Listen: opts.Listen}
	}
	files, err := sess.Call(ctx, proto.MsgAttach, att, &reply)
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("appproc: attach %q: %w", opts.Name, err)
	}
	a := &App{name: reply.Name, instance: reply.Instance, session: sess, channels: map[string]*Channel{}}
	for _, d := range reply.Channels {
		n := d.FDCount()
		if len(files) < n {
			err = fmt.Errorf("appproc: attach reply is missing descriptors for channel %d", d.ID)
			break
		}
		var ch *Channel
		ch, err = openChannel(d, files[:n])
		files = files[n:]
		if err != nil {
			break
		}
		a.channels[d.Server] = ch
	}
	if err != nil {
		for _, f := range files {
			f.Close()
		}
		a.Close()
		return nil, err
	}
	go func() {
		<-sess.Done()
		for _, ch := range a.channels {
			ch.mu.Lock()
			ch.kill(fmt.Errorf("%w: the instance's supervisor is gone", ErrChannelClosed))
			ch.mu.Unlock()
		}
	}()
	setDefault(a) // for the package-level Listen and Dial
	return a, nil
}

func connect(opts Options) (*proto.Session, error) {
	if link, err := proto.LinkFromEnv(nil); err == nil {
		return link.Session, nil
	} else if !errors.Is(err, proto.ErrNotSupervised) {
		return nil, err
	}
	path := os.Getenv(proto.EnvControlSocket)
	if opts.StateDir != "" || opts.Instance != "" || path == "" {
		dir := opts.StateDir
		if dir == "" {
			dir = os.Getenv(proto.EnvStateDir)
		}
		if dir == "" {
			dir = proto.DefaultStateDir()
		}
		inst := opts.Instance
		if inst == "" {
			inst = os.Getenv(proto.EnvInstance)
		}
		if inst == "" {
			inst = "default"
		}
		path = filepath.Join(dir, inst, "control.sock")
	}
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("appproc: no saturn instance at %s (is `saturn supervisor start` running?): %w", path, err)
	}
	s := proto.NewSession(proto.NewControlConn(uc), nil)
	go s.Run()
	return s, nil
}

// openChannel maps a channel: its region, then the server's doorbell, an
// eventfd the app rings. The app's own doorbell is the region's futex word
// (ring.Bells): servers and the supervisor ring it, and a futex wake cannot
// block them whatever the app does.
func openChannel(d proto.ChannelDesc, files []*os.File) (*Channel, error) {
	if !d.Bells || len(files) != 2 || d.FDCount() != 2 {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("appproc: channel %d: want a region and the server's doorbell, got %d descriptors", d.ID, len(files))
	}
	region, err := ring.Open(files[0])
	if err != nil {
		files[1].Close()
		return nil, err
	}
	sb, err := ring.EventDoorbellFromFile(files[1])
	if err != nil {
		region.Close()
		files[1].Close()
		return nil, err
	}
	end, err := region.App(ring.Bells{Server: sb})
	if err != nil {
		region.Close()
		sb.Close()
		return nil, err
	}
	region.SetAppPID(os.Getpid())
	ch := newChannel(d.Server, region, end)
	ch.bell = sb
	return ch, nil
}

// OpenChannel maps a channel handed over some other way than Attach (an
// embedding program that runs a server in-process, or a test): its region
// and the server's eventfd doorbell, as a server receives them. It takes
// ownership of files. Close the channel with Channel.Close.
func OpenChannel(d proto.ChannelDesc, files []*os.File) (*Channel, error) {
	return openChannel(d, files)
}

// NewApp makes an App of channels handed over some other way than Attach
// (OpenChannel): for a program, or a test, that runs saturn's servers in
// its own process. It has no session with a supervisor: Ready fails and
// Done never closes. Close closes the channels.
func NewApp(name string, channels ...*Channel) *App {
	a := &App{name: name, channels: map[string]*Channel{}}
	for _, ch := range channels {
		a.channels[ch.Server()] = ch
	}
	return a
}

// Close stops the channel's dispatcher, fails calls in flight and unmaps
// the region. A channel that belongs to an App is closed by App.Close.
func (c *Channel) Close() error { return c.close() }

// Name is the app's name in its instance.
func (a *App) Name() string { return a.name }

// Instance is the instance the app attached to.
func (a *App) Instance() string { return a.instance }

// Channel is the app's channel to the named server.
func (a *App) Channel(server string) (*Channel, error) {
	ch, ok := a.channels[server]
	if !ok {
		return nil, fmt.Errorf("appproc: no channel to %q", server)
	}
	return ch, nil
}

// Ready reports what the app wants status to show of it (its listening
// addresses, say). A supervised app is ready once it attached; Ready adds
// information.
func (a *App) Ready(ctx context.Context, info map[string]string) error {
	if a.session == nil {
		return errors.New("appproc: an app made by NewApp has no supervisor to report to")
	}
	_, err := a.session.Call(ctx, proto.MsgReady, &proto.Ready{Name: a.name, Info: info}, nil)
	return err
}

// Ping makes a nop round trip to the named server.
func (a *App) Ping(ctx context.Context, server string) error {
	ch, err := a.Channel(server)
	if err != nil {
		return err
	}
	_, err = ch.Do(ctx, &Request{Op: proto.OpNop, Replay: true})
	return err
}

// Done is closed when the connection to the instance ends.
func (a *App) Done() <-chan struct{} {
	if a.session == nil {
		return nil // NewApp: no connection to end
	}
	return a.session.Done()
}

// Close detaches: the supervisor releases the app's channels, and calls in
// flight fail.
func (a *App) Close() error {
	var errs []error
	a.closeOnce.Do(func() {
		if a.session != nil {
			errs = append(errs, a.session.Close())
		}
		for _, ch := range a.channels {
			errs = append(errs, ch.close())
		}
	})
	return errors.Join(errs...)
}
