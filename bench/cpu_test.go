package bench

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	const tick = time.Second / userHZ
	for _, tc := range []struct {
		name, line  string
		own, reaped time.Duration
		err         bool
	}{
		{"plain", "42 (deno) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 11 4 20 0 1 0 5 1000 10 18446744073709551615",
			10 * tick, 15 * tick, false},
		{"name with spaces and parentheses", "7 (a) b ) (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 5 1000 10",
			3 * tick, 7 * tick, false},
		{"name with a newline", "7 (x\ny) S 1 7 7 0 -1 0 0 0 0 0 100 0 0 200 20 0 1 0 5",
			100 * tick, 200 * tick, false},
		{"no closing parenthesis", "7 (deno S 1 7 7 0 -1 0 0 0 0 0 1 2 3 4", 0, 0, true},
		{"too few fields", "7 (deno) S 1 7 7 0 -1 0 0 0 0 0 1 2 3", 0, 0, true},
		{"negative time", "7 (deno) S 1 7 7 0 -1 0 0 0 0 0 -1 2 3 4 20", 0, 0, true},
		{"not a number", "7 (deno) S 1 7 7 0 -1 0 0 0 0 0 1 x 3 4 20", 0, 0, true},
		{"empty", "", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.line))
			if tc.err {
				if !errors.Is(err, errStat) {
					t.Fatalf("parseStat = %+v, %v; want errStat", got, err)
				}
				return
			}
			if err != nil || got.own != tc.own || got.reaped != tc.reaped {
				t.Fatalf("parseStat = %+v, %v; want own %v reaped %v", got, err, tc.own, tc.reaped)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (deno) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 11 4 20 0 1 0 5 1000 10"))
	f.Add([]byte("7 (a) b ) (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 3 4 20"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseStat(data)
		if err != nil {
			if !errors.Is(err, errStat) {
				t.Fatalf("error %v is not errStat", err)
			}
			return
		}
		if got.own < 0 || got.reaped < 0 {
			t.Fatalf("negative times %+v from %q", got, data)
		}
	})
}

// TestTreeCPU: a child's CPU shows up in this process's tree while it lives
// (a descendant) and after it is reaped (cutime/cstime).
func TestTreeCPU(t *testing.T) {
	// A shell loop that burns about 0.1-0.3 s of CPU, then says so and
	// waits for its stdin to close.
	const burn = `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo burnt; read x || true`
	for _, tc := range []struct {
		name string
		reap bool
	}{
		{"living child", false},
		{"reaped child", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := treeCPU(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("/bin/sh", "-c", burn)
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			if line, err := bufio.NewReader(stdout).ReadString('\n'); strings.TrimSpace(line) != "burnt" {
				t.Fatalf("child said %q, %v", line, err)
			}
			var childCPU time.Duration
			if tc.reap {
				stdin.Close()
				if err := cmd.Wait(); err != nil {
					t.Fatal(err)
				}
				childCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			} else {
				data, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
				if err != nil {
					t.Fatal(err)
				}
				pt, err := parseStat(data)
				if err != nil {
					t.Fatal(err)
				}
				childCPU = pt.own
			}
			after, err := treeCPU(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if childCPU < 50*time.Millisecond {
				t.Fatalf("the child burnt only %v of CPU; the check needs more", childCPU)
			}
			// /proc's clock ticks truncate, rusage does not, and the child's user and system
			// times are truncated apart (cutime, cstime): up to a tick each, and a tick for the
			// before/after reads of this process's own times — three ticks of slack (seen: 180 ms
			// in the tree for a child's 190.6 ms). Leaving the child out loses all of it.
			if got := after - before; got < childCPU-3*time.Second/userHZ {
				t.Fatalf("the tree grew by %v, less than the child's %v", got, childCPU)
			}
			if !tc.reap {
				stdin.Close()
			}
		})
	}
}
