// Command bellabuser is a hostile app for internal/hostile's tests: it
// attaches to a saturn instance through the control socket, as anyone can,
// and then abuses the doorbells it was given, as issue 12 describes. Every
// descriptor that came with a channel after the region is an eventfd
// doorbell (whatever the ABI of the day calls it); bellabuser clears
// O_NONBLOCK on each (for every holder: the flag belongs to the open file
// description) and then:
//
//   - saturate: sets each counter to its maximum, so that a write to it
//     blocks, after asking, through the rings, to be woken by a completion
//     (a nop submitted with the completion ring's wake flag set);
//   - steal: reads each in a loop, from two threads, and rings it once,
//     so that a read by anyone else after epoll said it was readable
//     blocks for good.
//
// It prints "attacked" once the attack is in place, and then holds its
// descriptors until it is killed.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
	"saturn/ring"
)

// maxCount is the largest value an eventfd's counter holds.
const maxCount = 0xfffffffffffffffe

// held keeps every received descriptor reachable: an *os.File that is
// collected closes its descriptor.
var held []*os.File

func main() {
	name := flag.String("name", "bellabuser", "the app's name")
	attack := flag.String("attack", "saturate", "saturate or steal")
	flag.Parse()
	log.SetPrefix(*name + ": ")
	log.SetFlags(0)

	path := filepath.Join(os.Getenv("SATURN_STATE_DIR"), os.Getenv("SATURN_INSTANCE"), "control.sock")
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		log.Fatal(err)
	}
	sess := proto.NewSession(proto.NewControlConn(uc), nil)
	go sess.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var reply proto.AttachReply
	files, err := sess.Call(ctx, proto.MsgAttach, &proto.Attach{Name: *name, PID: os.Getpid()}, &reply)
	if err != nil {
		log.Fatalf("attach: %v", err)
	}
	held = files
	for _, d := range reply.Channels {
		n := d.FDCount()
		if len(files) < n || n < 2 {
			log.Fatalf("channel %d: %d descriptors for %d", d.ID, len(files), n)
		}
		if err := abuse(*attack, d, files[:n]); err != nil {
			log.Fatalf("channel %d to %s: %v", d.ID, d.Server, err)
		}
		files = files[n:]
	}
	fmt.Println("attacked")
	select {}
}

func abuse(attack string, d proto.ChannelDesc, files []*os.File) error {
	var bells []int
	for _, f := range files[1:] {
		fd, err := ring.RawFD(f)
		if err != nil {
			return err
		}
		bells = append(bells, fd)
	}
	switch attack {
	case "saturate":
		if err := askForWakeup(files[0]); err != nil {
			return err
		}
		// The doorbell the server rings (the app's, at index 2, when it
		// was an eventfd) first; the server's own (index 1) last, since
		// writing it wakes the server, which then answers the nop.
		for i := len(bells) - 1; i >= 0; i-- {
			if err := saturate(bells[i]); err != nil {
				return err
			}
			if err := setBlocking(bells[i], true); err != nil {
				return err
			}
		}
	case "steal":
		for _, fd := range bells {
			if err := setBlocking(fd, true); err != nil {
				return err
			}
			// Two threads wait in read for a ring; then one ring. The
			// thread already waiting takes it back before a server that
			// epoll told of it gets to read it: that server's read then
			// waits for a ring that never comes.
			for range 2 {
				go func() {
					var b [8]byte
					for {
						unix.Read(fd, b[:])
					}
				}()
			}
			time.Sleep(100 * time.Millisecond) // let them block in read
			one := binary.LittleEndian.AppendUint64(nil, 1)
			if _, err := unix.Write(fd, one); err != nil {
				return fmt.Errorf("ringing eventfd %d: %w", fd, err)
			}
		}
	default:
		return fmt.Errorf("no attack called %q", attack)
	}
	return nil
}

// askForWakeup submits a nop and sets the completion ring's wake flag, so
// that the server rings the app's doorbell when it answers. Nothing rings
// the server here: writing its doorbell does, later.
func askForWakeup(region *os.File) error {
	r, err := ring.Open(region)
	if err != nil {
		return err
	}
	end, err := r.App(ring.Bells{Server: silent{}})
	if err != nil {
		return err
	}
	if !end.Complete.ArmWakeup() {
		return errors.New("completion ring not empty")
	}
	if n, err := end.Submit.Reserve(1); n != 1 || err != nil {
		return fmt.Errorf("reserve: %d, %v", n, err)
	}
	(&proto.Submission{Op: proto.OpNop, UserData: 1, Buf: proto.NoBuffer}).Encode(end.Submit.Slot(0))
	return end.Submit.Publish(1)
}

// saturate sets fd's counter to its maximum, whatever it held.
func saturate(fd int) error {
	if err := setBlocking(fd, false); err != nil {
		return err
	}
	var max [8]byte
	binary.LittleEndian.PutUint64(max[:], maxCount)
	for {
		var b [8]byte
		unix.Read(fd, b[:]) // empty it (EAGAIN if it is)
		_, err := unix.Write(fd, max[:])
		if err == nil {
			return nil
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return fmt.Errorf("saturating eventfd %d: %w", fd, err)
		}
	}
}

func setBlocking(fd int, blocking bool) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if blocking {
		fl &^= unix.O_NONBLOCK
	} else {
		fl |= unix.O_NONBLOCK
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return err
}

// silent is a doorbell that rings nothing: the attack rings by hand.
type silent struct{}

func (silent) Prepare() uint32               { return 0 }
func (silent) Sleep(uint32, time.Time) error { return nil }
func (silent) Ring() error                   { return nil }
