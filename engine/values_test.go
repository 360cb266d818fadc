package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/conductor-sandbox/conductor/sandbox"
)

// TestReturnValueTable runs the shared return-value table
// (program/testdata/values.json: TypeScript types, imports, top-level await,
// return statements, comments, strings with ; and }, objects vs blocks, …)
// end to end: program preparation, a real sandbox, the result encoding.
func TestReturnValueTable(t *testing.T) {
	b, err := os.ReadFile("../program/testdata/values.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name, Code, Want, Kind, Err string
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Fatalf("the table has %d cases; it must keep at least 40", len(cases))
	}
	e := newEngine(t, func(o *Options) { o.MaxConcurrency = 2 })
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			wg.Add(1)
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := e.Execute(context.Background(), Request{Code: c.Code})
			if c.Code == "" { // the engine refuses empty code: a caller's mistake, said clearly
				if !errors.Is(err, ErrInvalidRequest) {
					t.Fatalf("empty code: %v, want ErrInvalidRequest", err)
				}
				return
			}
			if err != nil {
				if c.Err != "" && strings.Contains(err.Error(), c.Err) {
					return
				}
				t.Fatalf("refused: %v", err)
			}
			if c.Err != "" {
				if res.Status == sandbox.StatusSuccess || res.Error == nil || !strings.Contains(res.Error.Message+res.Error.Stack, c.Err) {
					t.Fatalf("status %s error %+v, want an error containing %q", res.Status, res.Error, c.Err)
				}
				return
			}
			if res.Status != sandbox.StatusSuccess {
				t.Fatalf("status %s: %+v", res.Status, res.Error)
			}
			want := c.Want
			if want == `"<undefined>"` {
				want = `{"$type":"undefined"}`
			}
			var got, exp bytes.Buffer
			_ = json.Compact(&got, res.ReturnValue)
			if err := json.Compact(&exp, []byte(want)); err != nil {
				t.Fatalf("bad want %q: %v", want, err)
			}
			if got.String() != exp.String() {
				t.Errorf("returnValue %s, want %s", got.String(), exp.String())
			}
		})
	}
	wg.Wait()
}
