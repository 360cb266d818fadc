package program

import (
	"fmt"
	"strings"
	"testing"
)

// sampleProgram is about 200 lines of the TypeScript agents write:
// imports, types, functions, classes, loops, a top-level return.
func sampleProgram(n int) string {
	var sb strings.Builder
	sb.WriteString("import { join } from \"node:path\";\nimport type { Stat } from \"./types.ts\";\n")
	for i := 0; sb.Len() < n; i++ {
		fmt.Fprintf(&sb, `
/** Item %[1]d, with a comment that mentions import("npm:nothing") and return. */
interface Item%[1]d<T = string> {
  id: number;
  name: T;
  tags?: string[];
}

function score%[1]d(items: Item%[1]d[], weight = 2): number {
  let total = 0;
  for (const it of items) {
    if (!it.tags) continue;
    total += it.tags.length * weight + it.name.length;
  }
  return total;
}

class Store%[1]d {
  #items = new Map<number, Item%[1]d>();
  add(item: Item%[1]d): this {
    this.#items.set(item.id, item);
    return this;
  }
  get size() {
    return this.#items.size;
  }
}

const store%[1]d = new Store%[1]d().add({ id: %[1]d, name: "n;}//%[1]d", tags: ["a", "b"] });
const label%[1]d = `+"`item ${store%[1]d.size} ${join(\"a\", \"b\")} /* not a comment */`"+`;
if (store%[1]d.size === 0) return label%[1]d;
const re%[1]d = /[a-z]+\/(\d+)/g;
switch (label%[1]d.length %% 3) {
  case 0: { break; }
  default: label%[1]d.replace(re%[1]d, "x");
}
`, i)
	}
	sb.WriteString("\nreturn score0([{ id: 1, name: \"x\", tags: [\"t\"] }]);\n")
	return sb.String()
}

func BenchmarkPrepare200Lines(b *testing.B) { benchPrepare(b, 5600) }

func BenchmarkPrepare1MB(b *testing.B) { benchPrepare(b, 1<<20) }

func BenchmarkPrepare10MB(b *testing.B) { benchPrepare(b, 10<<20) }

func benchPrepare(b *testing.B, size int) {
	code := sampleProgram(size)
	p, err := Prepare(code)
	if err != nil || p.Result != ResultReturn || p.ParseFailed {
		b.Fatalf("sample: err %v, result %v, parseFailed %v", err, p.Result, p.ParseFailed)
	}
	b.ReportMetric(float64(strings.Count(code, "\n")), "lines")
	b.SetBytes(int64(len(code)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Prepare(code); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSampleProgramRuns(t *testing.T) {
	code := sampleProgram(5600)
	if n := strings.Count(code, "\n"); n < 180 || n > 260 {
		t.Fatalf("sample has %d lines", n)
	}
	p, err := Prepare(code)
	if err != nil {
		t.Fatal(err)
	}
	checkMapping(t, code, p)
	if got := len(p.Imports); got < 2 {
		t.Fatalf("imports: %v", p.Imports)
	}
	r := runModules(t, []string{p.Module})[0]
	if !r.OK || string(r.V) != "3" {
		t.Fatalf("sample program: ok=%v v=%s err=%s", r.OK, r.V, r.Err)
	}
}
