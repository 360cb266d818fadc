package program

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/conductor-sandbox/conductor/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// denoPath finds deno: $CONDUCTOR_DENO or ../.build/deno. Without it the
// test is skipped, or fails under CI=true.
func denoPath(t *testing.T) string { return testenv.Deno(t) }

// harness imports each module in turn as the sandbox's bootstrap does, awaits
// its default export and prints one line per module. In error texts the
// module's URL, in full or in the abbreviated form deno prints for a data: URL
// over 150 characters, is replaced by "main.ts".
const harness = `
globalThis.addEventListener("unhandledrejection", (e) => e.preventDefault());
const abbrev = (u: string) => {
  if (u.length <= 150) return u;
  const i = u.indexOf(",") + 1;
  const tail = u.slice(i);
  return u.slice(0, i) + tail.slice(0, 20) + "......" + tail.slice(-20);
};
const replacer = (_k: string, v: unknown) => typeof v === "bigint" ? v.toString() + "n" : v;
for (let i = 0; i < modules.length; i++) {
  const url = "data:application/typescript," + encodeURIComponent(modules[i]);
  const clean = (s: string) => s.replaceAll(url, "main.ts").replaceAll(abbrev(url), "main.ts");
  let line: string;
  try {
    const m = await import(url);
    const v = await m.default;
    line = JSON.stringify({ i, ok: true, v: v === undefined ? "<undefined>" : v }, replacer);
  } catch (e) {
    const text = e instanceof Error ? (e.stack ?? String(e)) : String(e);
    line = JSON.stringify({ i, ok: false, err: clean(text) });
  }
  console.log("@@case " + line);
}
`

// denoResult is one module's outcome.
type denoResult struct {
	I   int             `json:"i"`
	OK  bool            `json:"ok"`
	V   json.RawMessage `json:"v"`
	Err string          `json:"err"`
}

// runModules evaluates the modules in one deno process.
func runModules(t *testing.T, modules []string) []denoResult {
	t.Helper()
	return runHarness(t, denoPath(t), t.TempDir(), modules)
}

// runEach evaluates each module in a deno process of its own, a few at a
// time. deno 2.9.6 hangs ("Top-level await promise never resolved") when a
// process imports a module with top-level await that throws synchronously
// after two such modules rejected asynchronously; the sandbox imports a
// single module per process, so error cases run that way too.
func runEach(t *testing.T, modules []string) []denoResult {
	t.Helper()
	deno := denoPath(t)
	denoDir := t.TempDir()
	results := make([]denoResult, len(modules))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	var mu sync.Mutex
	var failures []string
	for i, m := range modules {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := harnessRun(deno, denoDir, []string{m})
			if err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("module %d: %v", i, err))
				mu.Unlock()
				return
			}
			results[i] = r[0]
			results[i].I = i
		}()
	}
	wg.Wait()
	if failures != nil {
		t.Fatal(strings.Join(failures, "\n"))
	}
	return results
}

func runHarness(t *testing.T, deno, dir string, modules []string) []denoResult {
	t.Helper()
	r, err := harnessRun(deno, dir, modules)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// harnessRun writes the harness for modules to a fresh file under dir and
// runs it with DENO_DIR under dir.
func harnessRun(deno, dir string, modules []string) ([]denoResult, error) {
	list, err := json.Marshal(modules)
	if err != nil {
		return nil, err
	}
	src := "const modules: string[] = " + string(list) + ";\n" + harness
	f, err := os.CreateTemp(dir, "harness-*.ts")
	if err != nil {
		return nil, err
	}
	file := f.Name()
	_, err = f.WriteString(src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, deno, "run", "--no-prompt", "--quiet", file)
	cmd.Env = append(os.Environ(), "DENO_DIR="+filepath.Join(dir, "deno"), "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("deno: %w\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	results := make([]denoResult, len(modules))
	seen := 0
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "@@case ")
		if !ok {
			continue
		}
		var r denoResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("harness line %q: %w", line, err)
		}
		if r.I < 0 || r.I >= len(results) {
			return nil, fmt.Errorf("harness line %q: bad index", line)
		}
		results[r.I] = r
		seen++
	}
	if seen != len(modules) {
		return nil, fmt.Errorf("harness reported %d of %d modules\nstderr:\n%s", seen, len(modules), stderr.String())
	}
	return results, nil
}

// firstLocation returns the first "main.ts:L:C" in s.
func firstLocation(s string) string {
	m := locRE.FindString(s)
	return m
}
