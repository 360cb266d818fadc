package program

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	sitter "github.com/smacker/go-tree-sitter"
	"github.com/smacker/go-tree-sitter/typescript/typescript"
)

func dump(n *sitter.Node, src []byte, depth int, sb *strings.Builder) {
	field := ""
	_ = field
	txt := n.Content(src)
	if len(txt) > 40 {
		txt = txt[:40] + "…"
	}
	flags := ""
	if n.IsMissing() {
		flags += " MISSING"
	}
	if n.IsExtra() {
		flags += " EXTRA"
	}
	if !n.IsNamed() {
		flags += " anon"
	}
	fmt.Fprintf(sb, "%s%s [%d-%d]%s %q\n", strings.Repeat("  ", depth), n.Type(), n.StartByte(), n.EndByte(), flags, txt)
	for i := 0; i < int(n.ChildCount()); i++ {
		c := n.Child(i)
		if fn := n.FieldNameForChild(i); fn != "" {
			fmt.Fprintf(sb, "%s  .%s:\n", strings.Repeat("  ", depth), fn)
		}
		dump(c, src, depth+1, sb)
	}
}

func TestDump(t *testing.T) {
	code := os.Getenv("DUMP")
	if code == "" {
		t.Skip()
	}
	p := sitter.NewParser()
	p.SetLanguage(typescript.GetLanguage())
	tree, err := p.ParseCtx(context.Background(), nil, []byte(code))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	r := tree.RootNode()
	fmt.Fprintf(&sb, "hasError=%v\n", r.HasError())
	dump(r, []byte(code), 0, &sb)
	fmt.Print(sb.String())
}
