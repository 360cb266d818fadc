package toolsearch

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Query is one row of testdata/queries.json: a natural-language query and
// the tool that must rank first for it among server-everything's,
// server-memory's and server-filesystem's tools.
type Query struct {
	Query  string `json:"query"`
	Server string `json:"server"`
	Tool   string `json:"tool"`
}

// loadQueries reads a query table (the e2e test in mcp/ reads the same file).
func loadQueries(t testing.TB, path string) []Query {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var q []Query
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	return q
}

// TestQueries: over the tool lists of the pinned reference servers
// (testdata/tools.json, captured with the inspector from the versions
// scripts/mcp-tools.sh pins; the e2e test in mcp/ runs the same queries
// against the live servers), each query's tool ranks first.
func TestQueries(t *testing.T) {
	b, err := os.ReadFile("testdata/tools.json")
	if err != nil {
		t.Fatal(err)
	}
	var lists map[string][]*mcp.Tool
	if err := json.Unmarshal(b, &lists); err != nil {
		t.Fatal(err)
	}
	var servers []string
	for s := range lists {
		servers = append(servers, s)
	}
	sort.Strings(servers)
	var tools []Tool
	for _, s := range servers {
		for _, tl := range lists[s] {
			tools = append(tools, Tool{Server: s, Tool: tl})
		}
	}
	ix := New(tools)
	for _, q := range loadQueries(t, "testdata/queries.json") {
		t.Run(q.Query, func(t *testing.T) {
			hits := ix.Search(q.Query, 3)
			if len(hits) == 0 {
				t.Fatalf("no hits, want %s/%s", q.Server, q.Tool)
			}
			var got []string
			for _, h := range hits {
				got = append(got, h.Server+"/"+h.Tool.Tool.Name)
			}
			if got[0] != q.Server+"/"+q.Tool {
				t.Errorf("top 3 = %v, want %s/%s first", got, q.Server, q.Tool)
			}
		})
	}
	if hits := ix.Search("zzzz qqqq", 5); len(hits) != 0 {
		t.Errorf("a query matching nothing found %d tools", len(hits))
	}
	if hits := ix.Search("file", 2); len(hits) != 2 {
		t.Errorf("limit 2 gave %d hits", len(hits))
	}
}

func TestTokenize(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"read_text_file", []string{"read", "text", "fil"}},
		{"readTextFile", []string{"read", "text", "fil"}},
		{"get-sum", []string{"get", "sum"}},
		{"Creating the files", []string{"creat", "fil"}},
		{"entities and relations", []string{"entity", "relation"}},
		{"writes, written; write", []string{"writ", "written", "writ"}},
		{"Größe ÄNDERN", []string{"größ", "ändern"}},
		{"", nil},
	}
	for _, c := range cases {
		if got := Tokenize(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzTokenize: any text tokenizes without panicking into non-empty terms.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"readTextFile", "get-sum", "ÄÖ\u0301x", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, term := range Tokenize(s) {
			if term == "" {
				t.Fatalf("empty term from %q", s)
			}
		}
		ix := New([]Tool{{Server: "s", Tool: &mcp.Tool{Name: s, Description: s}}})
		_ = ix.Search(s, 1)
	})
}
