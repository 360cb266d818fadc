package program

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	sitter "github.com/smacker/go-tree-sitter"
)

func TestPatho3(t *testing.T) {
	if os.Getenv("PATHO3") == "" {
		t.Skip()
	}
	g, _ := grammar()
	shapes := map[string]func(n int) string{
		"member":    func(n int) string { return "a" + strings.Repeat(".b", n) },
		"binary":    func(n int) string { return "a" + strings.Repeat(" + a", n) },
		"ternary":   func(n int) string { return strings.Repeat("x ? y : ", n) + "z" },
		"assign":    func(n int) string { return strings.Repeat("a = ", n) + "1" },
		"elseif":    func(n int) string { return strings.Repeat("if (a) b; else ", n) + "c;" },
		"sequence":  func(n int) string { return "x = (" + strings.Repeat("1, ", n) + "1)" },
		"array":     func(n int) string { return "x = [" + strings.Repeat("1, ", n) + "1]" },
		"object":    func(n int) string { return "x = {" + strings.Repeat("a: 1, ", n) + "}" },
		"template":  func(n int) string { return "x = `" + strings.Repeat("${a}-", n) + "`" },
		"then":      func(n int) string { return "p" + strings.Repeat(".then(f)", n) },
		"stmtparen": func(n int) string { return strings.Repeat("(", n) + "1" + strings.Repeat(")", n) },
		"ret-paren": func(n int) string { return "return " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n) },
		"args":      func(n int) string { return "f(" + strings.Repeat("a, ", n) + "a)" },
		"strings":   func(n int) string { return strings.Repeat("'x';", n) },
		"semis":     func(n int) string { return "a" + strings.Repeat(";", n) },
		"unary":     func(n int) string { return "x = " + strings.Repeat("!", n) + "a" },
		"neg":       func(n int) string { return "x = " + strings.Repeat("- ", n) + "a" },
		"arrowpar":  func(n int) string { return strings.Repeat("(a) => ", n) + "1" },
		"typeunion": func(n int) string { return "type T = " + strings.Repeat("'a' | ", n) + "'b'" },
		"generic":   func(n int) string { return "type T = " + strings.Repeat("A<", n) + "B" + strings.Repeat(">", n) },
		"garbage":   func(n int) string { return strings.Repeat(") ", n) },
		"garbage2":  func(n int) string { return strings.Repeat("} ", n) },
		"garbage3":  func(n int) string { return "x = " + strings.Repeat("+ ", n) },
	}
	q, _ := sitter.NewQuery([]byte("(import_statement) @i"), g.lang)
	for name, f := range shapes {
		line := name
		for _, n := range []int{5000, 20000} {
			code := f(n)
			p := sitter.NewParser()
			p.SetLanguage(g.lang)
			start := time.Now()
			tree, _ := p.ParseCtx(context.Background(), nil, []byte(code))
			pt := time.Since(start)
			start = time.Now()
			captures(q, tree.RootNode(), func(capture) {})
			line += fmt.Sprintf("  n=%d err=%v parse %v query %v", n, tree.RootNode().HasError(), pt.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		}
		t.Log(line)
	}
}
