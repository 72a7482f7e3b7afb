package netproc

import (
	"errors"
	"testing"

	"saturn/configs"
)

// TestChooseBackend: "kernel" is the kernel backend; "auto" takes the
// best one built and says why it passed over the others; a backend not
// built is refused with a reason.
func TestChooseBackend(t *testing.T) {
	be, chosen, err := chooseBackend(configs.Netproc{Backend: "kernel"})
	if err != nil || be.Name() != "kernel" || chosen != "" {
		t.Fatalf("kernel: %v %q %v", be, chosen, err)
	}
	be, chosen, err = chooseBackend(configs.Netproc{Backend: "auto"})
	if err != nil || be.Name() != "kernel" {
		t.Fatalf("auto: %v %v", be, err)
	}
	if _, ok := backends["usertcp"]; !ok && chosen != "auto (usertcp is not built yet)" {
		t.Errorf("auto says %q", chosen)
	}
	if m := info(be, chosen); m["backend"] != "kernel" || m["chosen"] != chosen || len(m) != 2 {
		t.Errorf("status info %v", m)
	}
	if _, ok := backends["usertcp"]; !ok {
		if _, _, err := chooseBackend(configs.Netproc{Backend: "usertcp"}); !errors.Is(err, ErrNoBackend) {
			t.Errorf("usertcp: %v", err)
		}
	}
}
