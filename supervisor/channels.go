package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
	"saturn/ring"
)

// channel is one app's channel to one server: a region and the server's
// eventfd doorbell, both created and kept by the supervisor for as long as
// the app lives, so that a restarted server maps the same rings.
//
// The app's doorbell is the region's futex word (see ring.Bells), which the
// supervisor rings when the server dies (ring.Region.EndIncarnation): a
// futex wake cannot block, whatever the app has done. The supervisor never
// reads or writes the server's doorbell, which the app holds too and can
// make blocking; it only duplicates and closes it.
type channel struct {
	id     uint64
	app    *component
	server string
	region *ring.Region
	sbell  *ring.EventDoorbell  // wakes the server; rung by the app only
	limits *proto.ChannelLimits // the app's limits in the server, if it has any
	usage  *proto.ChannelUsage  // what the server last reported the app holds
}

func (ch *channel) desc() proto.ChannelDesc {
	return proto.ChannelDesc{ID: ch.id, Server: ch.server, App: ch.app.name, Bells: true, Limits: ch.limits,
		UID: ch.app.uid, Grants: ch.app.grants}
}

// dupFiles duplicates the channel's descriptors for sending (the region
// and the server's doorbell: proto.ChannelDesc.FDCount), so that the
// channel may be closed while a send is in flight. The caller closes them.
func (ch *channel) dupFiles() ([]*os.File, error) {
	send := []*os.File{ch.region.File(), ch.sbell.File()}
	var out []*os.File
	for _, f := range send {
		fd, err := ring.RawFD(f)
		if err == nil {
			fd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		}
		if err != nil {
			closeFiles(out)
			return nil, err
		}
		out = append(out, os.NewFile(uintptr(fd), f.Name()))
	}
	return out, nil
}

func (ch *channel) close() {
	ch.region.Close()
	ch.sbell.Close() // closing rings nothing
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// makeChannels creates app's channels to the named servers. Loop only.
func (s *Supervisor) makeChannels(app *component, servers []string) error {
	granted := app.servers
	if granted == nil {
		granted = serverNames
	}
	if len(servers) == 0 {
		servers = granted
	}
	for _, name := range servers {
		if !slices.Contains(serverNames, name) {
			return fmt.Errorf("no server called %q (servers: %v)", name, serverNames)
		}
		if !slices.Contains(granted, name) {
			return fmt.Errorf("app %s may not use %s: its config grants it %v ([[app]] servers)", app.name, name, granted)
		}
	}
	g := ring.Geometry{
		SQEntrySize: proto.SubmissionSize, SQEntries: s.cfg.Channel.SQEntries,
		CQEntrySize: proto.CompletionSize, CQEntries: s.cfg.Channel.CQEntries,
		BufferSize: s.cfg.Channel.BufferSize, BufferCount: s.cfg.Channel.Buffers,
	}
	var made []*channel
	for _, name := range servers {
		ch, err := s.newChannel(app, name, g)
		if err != nil {
			for _, c := range made {
				c.close()
			}
			return err
		}
		made = append(made, ch)
	}
	s.dropChannels(app) // a re-attach replaces the old channels
	app.channels = made
	return nil
}

func (s *Supervisor) newChannel(app *component, server string, g ring.Geometry) (*channel, error) {
	s.nextChanID++
	id := s.nextChanID
	r, err := ring.Create(fmt.Sprintf("saturn-%s-%s-%d", app.name, server, id), g)
	if err != nil {
		return nil, err
	}
	sb, err := ring.NewEventDoorbell()
	if err != nil {
		r.Close()
		return nil, err
	}
	ch := &channel{id: id, app: app, server: server, region: r, sbell: sb}
	if server == "netproc" {
		conf, _ := s.cfg.App(app.name) // nil for an app the config does not list
		sockets, memory := s.cfg.AppLimits(conf)
		ch.limits = &proto.ChannelLimits{Sockets: sockets, Memory: memory}
	}
	return ch, nil
}

// dropChannels releases app's channels and tells their servers. Loop only.
func (s *Supervisor) dropChannels(app *component) {
	for _, ch := range app.channels {
		if srv := s.find(ch.server); srv != nil && srv.link != nil {
			srv.link.Notify(proto.MsgDrop, &proto.Drop{ID: ch.id})
		}
		ch.close()
	}
	app.channels = nil
}

// channelsFor lists every channel to the named server. Loop only.
func (s *Supervisor) channelsFor(server string) []*channel {
	var out []*channel
	for _, c := range s.components {
		for _, ch := range c.channels {
			if ch.server == server {
				out = append(out, ch)
			}
		}
	}
	return out
}

// delivery is a channel on its way to a server, with duplicated
// descriptors that the sender closes.
type delivery struct {
	desc  proto.ChannelDesc
	files []*os.File
}

func (s *Supervisor) deliveries(chans []*channel) []delivery {
	var out []delivery
	for _, ch := range chans {
		files, err := ch.dupFiles()
		if err != nil {
			s.log.Error("cannot duplicate channel descriptors", "channel", ch.id, "err", err)
			continue
		}
		out = append(out, delivery{ch.desc(), files})
	}
	return out
}

// deliver sends channels to a server over its link, one at a time, each
// acknowledged once the server has mapped it. It runs outside the loop.
func deliver(link *proto.Session, ds []delivery) error {
	var errs []error
	for _, d := range ds {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := link.Call(ctx, proto.MsgChannel, &proto.Channel{Channel: d.desc}, nil, d.files...)
		cancel()
		closeFiles(d.files)
		if err != nil {
			errs = append(errs, fmt.Errorf("channel %d: %w", d.desc.ID, err))
		}
	}
	return errors.Join(errs...)
}

// sendAllChannels hands a newly started server every existing channel that
// is its. Loop only; the sending happens in a goroutine.
func (s *Supervisor) sendAllChannels(srv *component, inc int) {
	ds := s.deliveries(s.channelsFor(srv.name))
	if len(ds) == 0 {
		return
	}
	link := srv.link
	go func() {
		if err := deliver(link, ds); err != nil {
			s.log.Warn("handing channels to restarted server", "name", srv.name, "incarnation", inc, "err", err)
		}
	}()
}

// attachApp creates app's channels, hands them to the servers that are up,
// and then answers req with the app's ends. Loop only; the waiting happens
// in a goroutine.
func (s *Supervisor) attachApp(app *component, req *proto.Request, m *proto.Attach) {
	if err := s.makeChannels(app, m.Servers); err != nil {
		req.Error(proto.CodeFailed, err.Error())
		return
	}
	byServer := map[*proto.Session][]delivery{}
	for _, ch := range app.channels {
		if srv := s.find(ch.server); srv != nil && srv.link != nil {
			byServer[srv.link] = append(byServer[srv.link], s.deliveries([]*channel{ch})...)
		}
	}
	mine := s.deliveries(app.channels)
	reply := proto.AttachReply{Instance: s.opts.Paths.Instance, Name: app.name}
	var files []*os.File
	for _, d := range mine {
		reply.Channels = append(reply.Channels, d.desc)
		files = append(files, d.files...)
	}
	if !m.DeferReady {
		app.ready = true
		if app.state == proto.StateStarting {
			app.state = proto.StateRunning
		}
	}
	s.log.Info("app attached", "name", app.name, "pid", app.pid, "channels", len(app.channels))
	s.notify()
	go func() {
		defer closeFiles(files)
		var wg sync.WaitGroup
		for link, ds := range byServer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := deliver(link, ds); err != nil {
					s.log.Warn("handing channels to a server", "app", app.name, "err", err)
				}
			}()
		}
		wg.Wait()
		if err := req.Reply(proto.MsgAttachReply, &reply, files...); err != nil {
			s.log.Warn("attach reply", "app", app.name, "err", err)
		}
	}()
}
