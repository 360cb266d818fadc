package program

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestPatho(t *testing.T) {
	if os.Getenv("PATHO") == "" {
		t.Skip()
	}
	n := 100000
	for name, code := range map[string]string{
		"parens":     strings.Repeat("(", n) + "1" + strings.Repeat(")", n),
		"arrays":     "return " + strings.Repeat("[", n) + strings.Repeat("]", n),
		"blocks":     strings.Repeat("{", n) + "return 1" + strings.Repeat("}", n),
		"ifs":        strings.Repeat("if (a) ", n) + "return 1",
		"unclosed":   strings.Repeat("(", n) + strings.Repeat("{", n),
		"garbage":    strings.Repeat("@#) ]}=> <T>", n),
		"strings":    strings.Repeat("'import(\"x\")' + ", n) + "1",
		"dynimports": strings.Repeat("import('./x.ts');\n", n),
		"returns":    strings.Repeat("if (a) return 1;\n", n),
		"fns":        strings.Repeat("function f() { return 1 }\n", n),
	} {
		start := time.Now()
		p, err := Prepare(code)
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		t.Logf("%-10s %7d bytes: %v parseFailed=%v result=%v imports=%d", name, len(code), time.Since(start), p.ParseFailed, p.Result, len(p.Imports))
	}
}
