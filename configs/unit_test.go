package configs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks saturn@.service: the keys the supervisor relies
// on (Type=notify for its READY=1, the stop through the CLI, reload by
// SIGHUP), and, where systemd-analyze is installed, that systemd accepts
// the file (with the commands pointed at a program that exists here).
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("saturn@.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("line %q is not KEY=VALUE", line)
			}
			keys[section+"."+k] = append(keys[section+"."+k], v)
		}
	}
	want := map[string]string{
		"Service.Type":         "notify",
		"Service.ExecStart":    "saturn supervisor start --instance %i",
		"Service.ExecStop":     "saturn supervisor stop --instance %i",
		"Service.ExecReload":   "kill -HUP $MAINPID",
		"Service.Restart":      "on-failure",
		"Service.LimitNOFILE":  "1048576",
		"Service.NotifyAccess": "main",
		"Install.WantedBy":     "multi-user.target",
	}
	for k, v := range want {
		if got := keys[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("no systemd-analyze here: the file's syntax is not checked by systemd")
		return
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true program")
	}
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		for _, k := range []string{"ExecStart=", "ExecStop=", "ExecReload="} {
			if strings.HasPrefix(line, k) {
				_, args, _ := strings.Cut(strings.TrimPrefix(line, k), " ")
				line = k + truePath + " " + args
			}
		}
		b.WriteString(line + "\n")
	}
	unit := filepath.Join(t.TempDir(), "saturn@test.service")
	if err := os.WriteFile(unit, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
