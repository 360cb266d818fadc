package cgroups

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSweepFakeTree(t *testing.T) {
	f := hybridFake(t, 0)
	h := detectFake(t, f, "")
	mem := filepath.Join(f.root, "memory/process_api/x")
	pids := filepath.Join(f.root, "pids")
	uni := filepath.Join(f.root, "unified")

	mk := func(p string, procs string) string {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if procs != "" {
			if err := os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(procs), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	removed := []string{
		mk(filepath.Join(mem, "conductor-i1-s1"), ""),
		mk(filepath.Join(mem, "conductor-i1-s2/nested"), ""),
		filepath.Join(mem, "conductor-i1-s2"),
		mk(filepath.Join(pids, "conductor-i1-s1"), ""),
		mk(filepath.Join(uni, "conductor-i1-s1"), ""),
		mk(filepath.Join(mem, "conductor-probe-999999999-abcd"), ""), // probe of a dead pid
	}
	kept := []string{
		mk(filepath.Join(mem, "conductor-i2-live"), ""),                                // not stale
		mk(filepath.Join(mem, "other-i1-s1"), ""),                                      // stale by name but not ours
		mk(filepath.Join(pids, "system.slice"), ""),                                    // not ours
		mk(filepath.Join(mem, "conductor-i1-busy"), "1234\n"),                          // has processes
		mk(filepath.Join(mem, "conductor-server"), ""),                                 // the server leaf
		mk(filepath.Join(f.root, "memory", "conductor-i1-s9"), ""),                     // stale+ours but outside our parent
		mk(filepath.Join(mem, "conductor-probe-"+strconv.Itoa(os.Getpid())+"-ab"), ""), // probe of a live pid
	}
	stale := func(name string) bool {
		return strings.Contains(name, "-i1-") || strings.HasPrefix(name, "other-") || name == "conductor-server"
	}

	got, err := h.Sweep(context.Background(), stale)
	if err == nil || !strings.Contains(err.Error(), "conductor-i1-busy still has processes [1234]") {
		t.Fatalf("err %v", err)
	}
	slices.Sort(got)
	want := sortCopy(removed)
	if !slices.Equal(got, want) {
		t.Fatalf("removed\n %q\nwant\n %q", got, want)
	}
	for _, p := range removed {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was touched: %v", p, err)
		}
	}

	// Nothing stale: nothing removed, no error.
	got, err = h.Sweep(context.Background(), func(string) bool { return false })
	if err != nil || len(got) != 0 {
		t.Fatalf("second sweep: %q %v", got, err)
	}
}

func sortCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
