package sandbox

import (
	"os"
	"testing"
	"time"
)

func TestEscapeExplore(t *testing.T) {
	f := os.Getenv("EXPLORE")
	if f == "" {
		t.Skip()
	}
	code, _ := os.ReadFile(f)
	r := newTestRunner(t, func(o *Options) {
		o.DenoFlags = []string{"--allow-all"}
		o.Network = os.Getenv("EXPLORE_NET") != ""
	})
	res := runCode(t, r, string(code), 20*time.Second)
	t.Logf("status=%s signal=%s exit=%v err=%+v\nSTDOUT:\n%s\nSTDERR:\n%s", res.Status, res.Signal, res.ExitCode, res.Error, res.Stdout, res.Stderr)
}
