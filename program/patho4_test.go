package program

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	sitter "github.com/smacker/go-tree-sitter"
)

func TestPatho4(t *testing.T) {
	if os.Getenv("PATHO4") == "" {
		t.Skip()
	}
	g, _ := grammar()
	code := strings.Repeat("@#) ]}=> <T>", 100000)
	p := sitter.NewParser()
	p.SetLanguage(g.lang)
	start := time.Now()
	tree, _ := p.ParseCtx(context.Background(), nil, []byte(code))
	t.Logf("parse %v", time.Since(start))
	start = time.Now()
	a := &analysis{}
	a.scanImports(g, tree.RootNode(), []byte(code))
	t.Logf("scan %v", time.Since(start))
	errNodes, okNodes, leafs := 0, 0, 0
	stack := []*sitter.Node{tree.RootNode()}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !n.HasError() {
			if n.ChildCount() > 0 { okNodes++ } else { leafs++ }
			continue
		}
		errNodes++
		for i := 0; i < int(n.ChildCount()); i++ {
			stack = append(stack, n.Child(i))
		}
	}
	t.Logf("error-path nodes %d, queried subtrees %d, leaves %d", errNodes, okNodes, leafs)
	start = time.Now()
	tree.Close()
	p.Close()
	t.Logf("close %v", time.Since(start))
}
