// Package toolsearch ranks upstream MCP tools for a natural-language query,
// offline: BM25 (k1 1.2, b 0.75) over one document per tool made of its
// name (split at _, -, . and camelCase, weighted 3), its server's name
// (weighted 1), its parameter names (weighted 2) and its description
// (weighted 1). Words are lower-cased, split at anything that is not a
// letter or digit, stripped of a short stop list and lightly stemmed
// (plurals, -ing, -ed, -ly), so "files" finds "file" and "reading" finds
// "read". A query matching nothing returns no results.
package toolsearch

import (
	"encoding/json"
	"math"
	"sort"
	"strings"
	"unicode"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Field weights: how many times a field's words count in a tool's document.
const (
	nameWeight   = 3
	paramWeight  = 2
	serverWeight = 1
	descWeight   = 1
	k1, b        = 1.2, 0.75
)

// Tool is one tool of one server, as indexed.
type Tool struct {
	Server string
	Tool   *mcp.Tool
}

// Hit is a ranked tool.
type Hit struct {
	Tool
	Score float64
}

// Index is a BM25 index over a set of tools; it is immutable and safe for
// concurrent use.
type Index struct {
	tools []Tool
	tf    []map[string]float64 // per tool: term -> weighted count
	lens  []float64
	avg   float64
	df    map[string]int
}

// New indexes tools.
func New(tools []Tool) *Index {
	ix := &Index{tools: tools, df: map[string]int{}}
	var total float64
	for _, t := range tools {
		tf := map[string]float64{}
		add := func(text string, w float64) {
			for _, term := range Tokenize(text) {
				tf[term] += w
			}
		}
		add(t.Tool.Name, nameWeight)
		add(t.Tool.Title, descWeight)
		add(t.Server, serverWeight)
		add(t.Tool.Description, descWeight)
		for _, p := range paramNames(t.Tool.InputSchema) {
			add(p, paramWeight)
		}
		var n float64
		for term, c := range tf {
			n += c
			ix.df[term]++
		}
		ix.tf = append(ix.tf, tf)
		ix.lens = append(ix.lens, n)
		total += n
	}
	if len(tools) > 0 {
		ix.avg = total / float64(len(tools))
	}
	return ix
}

// Search returns at most limit tools (all when limit <= 0) with a positive
// score for query, best first; ties go by server, then tool name.
func (ix *Index) Search(query string, limit int) []Hit {
	terms := Tokenize(query)
	seen := map[string]bool{}
	var hits []Hit
	n := float64(len(ix.tools))
	for i, t := range ix.tools {
		var score float64
		clear(seen)
		for _, term := range terms {
			if seen[term] {
				continue
			}
			seen[term] = true
			f := ix.tf[i][term]
			if f == 0 {
				continue
			}
			df := float64(ix.df[term])
			idf := math.Log(1 + (n-df+0.5)/(df+0.5))
			score += idf * f * (k1 + 1) / (f + k1*(1-b+b*ix.lens[i]/ix.avg))
		}
		if score > 0 {
			hits = append(hits, Hit{Tool: t, Score: score})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		if hits[i].Server != hits[j].Server {
			return hits[i].Server < hits[j].Server
		}
		return hits[i].Tool.Tool.Name < hits[j].Tool.Tool.Name
	})
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	return hits
}

// paramNames are the top-level property names of an input schema.
func paramNames(schema any) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		// Another Go shape (json.RawMessage, *jsonschema.Schema): its JSON.
		b, err := json.Marshal(schema)
		if err != nil || json.Unmarshal(b, &s) != nil {
			return nil
		}
	}
	props, _ := s["properties"].(map[string]any)
	out := make([]string, 0, len(props))
	for p := range props {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

var stop = map[string]bool{
	"a": true, "an": true, "the": true, "and": true, "or": true, "of": true, "to": true, "in": true,
	"on": true, "for": true, "with": true, "by": true, "at": true, "from": true, "as": true, "is": true,
	"are": true, "be": true, "it": true, "its": true, "this": true, "that": true, "these": true,
	"i": true, "me": true, "my": true, "we": true, "you": true, "your": true, "can": true,
	"how": true, "do": true, "what": true, "which": true, "some": true, "into": true, "all": true,
	"use": true, "tool": true, "want": true, "need": true, "please": true, "will": true,
}

// Tokenize splits text into stemmed terms: at non-alphanumerics and at
// lower-to-upper case changes ("readTextFile" → read, text, file), lower
// case, stop words dropped.
func Tokenize(text string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) == 0 {
			return
		}
		w := strings.ToLower(string(cur))
		cur = cur[:0]
		if stop[w] {
			return
		}
		out = append(out, Stem(w))
	}
	var prev rune
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if unicode.IsUpper(r) && unicode.IsLower(prev) {
				flush()
			}
			cur = append(cur, r)
		default:
			flush()
		}
		prev = r
	}
	flush()
	return out
}

// Stem strips the commonest English suffixes; it needs to map a word's
// forms to one term, not to produce a word.
func Stem(w string) string {
	n := len(w)
	switch {
	case n > 4 && strings.HasSuffix(w, "ies"):
		return w[:n-3] + "y"
	case n > 5 && strings.HasSuffix(w, "ing"):
		w = w[:n-3]
	case n > 4 && strings.HasSuffix(w, "ed"):
		w = w[:n-2]
	case n > 4 && strings.HasSuffix(w, "ly"):
		w = w[:n-2]
	case n > 4 && (strings.HasSuffix(w, "sses") || strings.HasSuffix(w, "shes") || strings.HasSuffix(w, "ches") || strings.HasSuffix(w, "xes")):
		w = w[:n-2]
	case n > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us"):
		w = w[:n-1]
	}
	// "writing" → "writ", "write" → "writ"; "created" → "creat", "create" → "creat".
	if len(w) > 3 && strings.HasSuffix(w, "e") {
		w = w[:len(w)-1]
	}
	return w
}
