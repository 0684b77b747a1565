package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// swtpmTPM is a real swtpm process serving one TPM state over a unixio socket in a temp dir.
type swtpmTPM struct {
	dir, state, sock string
	tpm2             bool
	cmd              *exec.Cmd
}

// newSwtpm prepares a TPM state the way a platform would before the agent runs (TPM 1.2:
// enabled, activated, with an EK, as Xen's vtpm-stubdom gives it; TPM 2.0: as manufactured)
// and serves it. The process is killed in the test's cleanup.
func newSwtpm(t *testing.T, tpm2 bool) *swtpmTPM {
	t.Helper()
	for _, bin := range []string{"swtpm", "swtpm_setup"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found in PATH: these tests run a real software TPM (apt-get install swtpm swtpm-tools)", bin)
		}
	}
	// Unix socket paths are limited to 108 bytes; t.TempDir() under a long test name can pass that.
	dir, err := os.MkdirTemp("", "tvd-agent-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &swtpmTPM{dir: dir, sock: filepath.Join(dir, "tpm.sock"), tpm2: tpm2}
	s.wipe(t)
	return s
}

// wipe stops the TPM if it runs and starts it again on a fresh state: a new TPM at the same
// socket, as a vTPM whose state was deleted.
func (s *swtpmTPM) wipe(t *testing.T) {
	t.Helper()
	s.stop()
	s.state = filepath.Join(s.dir, fmt.Sprintf("state-%d", time.Now().UnixNano()))
	if err := os.MkdirAll(s.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if !s.tpm2 {
		out, err := exec.Command("swtpm_setup", "--tpm-state", s.state, "--createek").CombinedOutput()
		if err != nil {
			t.Fatalf("swtpm_setup --createek: %v\n%s", err, out)
		}
	}
	args := []string{"socket", "--tpmstate", "dir=" + s.state,
		"--server", "type=unixio,path=" + s.sock,
		"--ctrl", "type=unixio,path=" + filepath.Join(s.dir, "ctrl.sock"),
		"--log", "file=" + filepath.Join(s.dir, "swtpm.log"),
		// No CMD_INIT comes over the control channel here; without this swtpm answers every
		// command with TPM_FAIL. The agent sends TPM_Startup itself when the TPM asks for it.
		"--flags", "not-need-init"}
	if s.tpm2 {
		args = append(args, "--tpm2")
	}
	os.Remove(s.sock)
	s.cmd = exec.Command("swtpm", args...)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	t.Cleanup(s.stop)
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(s.sock); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("swtpm did not create %s", s.sock)
}

func (s *swtpmTPM) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// writeConfig writes a fresh agent.json with random auth values and returns its path.
func writeConfig(t *testing.T, dir, name string) string {
	t.Helper()
	owner, srk := make([]byte, 32), make([]byte, 32)
	rand.Read(owner)
	rand.Read(srk)
	p := filepath.Join(dir, name)
	b := fmt.Sprintf(`{"version":1,"ownerAuth":"%s","srkAuth":"%s"}`, hex.EncodeToString(owner), hex.EncodeToString(srk))
	if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCLI runs the agent's command line in-process, as the binary would.
func runCLI(t *testing.T, stdin []byte, args ...string) (int, []byte) {
	t.Helper()
	var out bytes.Buffer
	code := cli(args, bytes.NewReader(stdin), &out)
	return code, out.Bytes()
}

func reportCLI(t *testing.T, s *swtpmTPM, cfg, state string) (int, Report) {
	t.Helper()
	code, out := runCLI(t, nil, "report", "--tpm", s.sock, "--config", cfg, "--state", state)
	var r Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("report output is not JSON: %v\n%s", err, out)
	}
	return code, r
}

func activateCLI(t *testing.T, s *swtpmTPM, cfg, state string, ch Challenge) (int, Response) {
	t.Helper()
	return jsonCLI[Response](t, "activate", s, cfg, state, ch)
}

// jsonCLI runs a command that reads one JSON document on stdin and prints its JSON answer.
func jsonCLI[Answer any](t *testing.T, cmd string, s *swtpmTPM, cfg, state string, in interface{}) (int, Answer) {
	t.Helper()
	raw, _ := json.Marshal(in)
	code, out := runCLI(t, raw, cmd, "--tpm", s.sock, "--config", cfg, "--state", state)
	var answer Answer
	if err := json.Unmarshal(out, &answer); err != nil {
		t.Fatalf("%s output is not JSON: %v\n%s", cmd, err, out)
	}
	return code, answer
}

// assertNoSecret fails if a config's auth values appear in text (hex or raw).
func assertNoSecret(t *testing.T, cfgPath string, texts ...[]byte) {
	t.Helper()
	c, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range texts {
		for _, secret := range [][]byte{c.ownerAuth, c.srkAuth} {
			for _, form := range [][]byte{secret, secret[:20], []byte(hex.EncodeToString(secret)), []byte(hex.EncodeToString(secret[:20]))} {
				if bytes.Contains(text, form) {
					t.Fatalf("an auth value from %s appears in the agent's output", cfgPath)
				}
			}
		}
	}
}
