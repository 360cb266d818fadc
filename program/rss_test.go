package program

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func vm(key string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func TestRSS(t *testing.T) {
	if os.Getenv("RSS") == "" {
		t.Skip()
	}
	for _, size := range []int{1 << 20, 10 << 20} {
		code := sampleProgram(size)
		if size == 10<<20 && os.Getenv("RSS") == "minified" {
			code = strings.ReplaceAll(code, "\n", " ")
			code = strings.ReplaceAll(code, "//", "/**/") // keep it valid-ish
		}
		runtime.GC()
		t.Logf("before %d: %s %s", size, vm("VmRSS"), vm("VmHWM"))
		start := time.Now()
		p, err := Prepare(code)
		el := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("size %d lines %d: %v result %v parseFailed %v imports %d; %s %s; Go heap in use %d MB", len(code), strings.Count(code, "\n"), el, p.Result, p.ParseFailed, len(p.Imports), vm("VmRSS"), vm("VmHWM"), ms.HeapInuse>>20)
		start = time.Now()
		p.MapPosition(1000, 5)
		t.Logf("MapPosition: %v", time.Since(start))
	}
}
