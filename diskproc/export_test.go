package diskproc

import (
	"os"
	"time"

	"saturn/proto"
)

// WriteIntent puts an open intent on record in the persistent memory f, as
// an incarnation that died during the open would have left it.
func WriteIntent(f *os.File, channel, userData uint64, path string, flags proto.OpenFlag, when time.Time) error {
	p, err := openPersist(f, 0)
	if err != nil {
		return err
	}
	defer p.close()
	p.load()
	slot, _ := p.alloc()
	p.write(&record{slot: slot, state: slotOpening, flags: flags, channel: channel, openUD: userData, when: when.UnixNano(), mode: 0o644, path: path})
	return nil
}
