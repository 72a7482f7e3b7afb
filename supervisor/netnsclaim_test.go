package supervisor

import (
	"os"
	"strings"
	"testing"

	"saturn/configs"
)

// TestNetnsClaim: two instances that name the same namespace for usertcp
// (both on the built-in config, say) cannot both run; the second is told
// which instance has it and what to change. The kernel backend claims
// nothing, and a released claim can be taken again.
func TestNetnsClaim(t *testing.T) {
	old := NetnsClaimDir
	NetnsClaimDir = t.TempDir()
	defer func() { NetnsClaimDir = old }()

	sup := func(instance, backend, netns, source string) *Supervisor {
		p, err := NewPaths(t.TempDir(), instance)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &configs.Config{Source: source}
		cfg.Netproc.Backend = backend
		cfg.Netproc.Netns = netns
		return New(Options{Paths: p, Config: cfg})
	}
	first := sup("first", "auto", "satclaim", "")
	if err := first.claimNetns(); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	defer first.releaseNetns()

	err := sup("second", "usertcp", "satclaim", "").claimNetns()
	if err == nil {
		t.Fatal("a second instance claimed a namespace the first holds")
	}
	for _, want := range []string{`"satclaim"`, `instance "first"`, "saturn config print", `backend = "kernel"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %s", err, want)
		}
	}
	err = sup("third", "auto", "satclaim", "/etc/saturn/third.toml").claimNetns()
	if err == nil || !strings.Contains(err.Error(), "in /etc/saturn/third.toml") {
		t.Errorf("refusal for a config file does not name it: %v", err)
	}
	if err := sup("kernel", "kernel", "satclaim", "").claimNetns(); err != nil {
		t.Errorf("the kernel backend uses no namespace, yet: %v", err)
	}
	if err := sup("other", "usertcp", "satother", "").claimNetns(); err != nil {
		t.Errorf("another namespace: %v", err)
	}

	first.releaseNetns()
	again := sup("again", "usertcp", "satclaim", "")
	if err := again.claimNetns(); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	again.releaseNetns()
}

// TestLastWords: a failed start quotes the last line the component wrote,
// past the supervisor's own "=== saturn:" markers, and nothing when the
// log is missing or empty.
func TestLastWords(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := dir + "/" + name
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tt := range []struct{ name, log, want string }{
		{"said", "=== saturn: starting web\nsaturn: listen tcp [::]:8080: address already in use\n=== saturn: exit 1\n\n", "; it said: saturn: listen tcp [::]:8080: address already in use"},
		{"silent", "=== saturn: starting web\n", ""},
		{"empty", "", ""},
		{"long", strings.Repeat("x", 5000) + "\n", "; it said: " + strings.Repeat("x", 300) + "..."},
	} {
		if got := lastWords(write(tt.name, tt.log)); got != tt.want {
			t.Errorf("%s: lastWords = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := lastWords(dir + "/missing"); got != "" {
		t.Errorf("missing log: %q", got)
	}
}
