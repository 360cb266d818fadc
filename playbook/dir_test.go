package playbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const sumFile = "/* ---\n{\"name\":\"sum\",\"description\":\"Adds.\",\"inputs\":" + sumInputs + "}\n--- */\nargs.a + args.b\n"

func names(d *Dir) []string {
	var out []string
	for _, p := range d.List() {
		out = append(out, p.Name)
	}
	return out
}

func TestDirReadAndProblems(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"sum.ts":      sumFile,
		"notes.txt":   "not a playbook",
		"Bad.ts":      "/* ---\n{\"name\":\"bad\",\"description\":\"d\"}\n--- */\n",
		"nofront.ts":  "1\n",
		".hidden.ts":  "ignored",
		"other.ts":    "/* ---\n{\"name\":\"sum\",\"description\":\"d\"}\n--- */\n",
		"huge.ts":     "/* ---\n" + strings.Repeat(" ", MaxBytes),
		"sub.ts/x.ts": "",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "sum.ts"), filepath.Join(dir, "link.ts")); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(d); !slices.Equal(got, []string{"sum"}) {
		t.Errorf("List = %v, want [sum]", got)
	}
	probs := strings.Join(d.Problems(), "\n")
	for _, want := range []string{
		"notes.txt: not a .ts file",
		"Bad.ts: the name before .ts is not a playbook name",
		"nofront.ts: the first line must be",
		`other.ts: front-matter: name "sum" differs from the file's name "other"`,
		"huge.ts: ",
		"sub.ts: not a regular file",
		"link.ts: not a regular file",
	} {
		if !strings.Contains(probs, want) {
			t.Errorf("Problems lack %q:\n%s", want, probs)
		}
	}
	if strings.Contains(probs, ".hidden") {
		t.Errorf("a hidden file is reported:\n%s", probs)
	}

	// Edited in place: the change is seen without a restart. Its modification time is set later
	// (a write within the file system's timestamp granularity keeps the old one; a 10 ms sleep
	// only made that rare).
	sum := filepath.Join(dir, "sum.ts")
	if err := os.WriteFile(sum, []byte(strings.Replace(sumFile, "Adds.", "Adds up.", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(sum); err != nil {
		t.Fatal(err)
	} else if err := os.Chtimes(sum, st.ModTime().Add(time.Second), st.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if p, err := d.Get("sum"); err != nil || p.Description != "Adds up." {
		t.Errorf("after an edit, Get = %+v, %v", p, err)
	}
	if _, err := d.Get("nofront"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "the server's playbooks: sum") {
		t.Errorf("Get(nofront) = %v, want ErrNotFound listing sum", err)
	}
	if _, err := d.Get("../sum"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Get(../sum) = %v, want ErrInvalid", err)
	}
}

func TestOpenFailsClosed(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dir, want string
	}{
		{"missing", filepath.Join(dir, "nope"), "no such file or directory"},
		{"a file", file, "not a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Open(c.dir, true, nil); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.dir) {
				t.Errorf("Open(%s) = %v, want an error naming it and %q", c.dir, err, c.want)
			}
		})
	}
}

func TestSave(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ro, err := Open(dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Save(ctx, Meta{Name: "x", Description: "d"}, "1", false); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Save on a read-only directory = %v, want ErrReadOnly", err)
	}
	d, err := Open(dir, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := Meta{Name: "double", Description: "Doubles n.", Inputs: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`)}
	for _, c := range []struct {
		name      string
		meta      Meta
		code      string
		overwrite bool
		err       error
		want      string // the code saved, when it succeeds
	}{
		{"new", m, "args.n * 2\n", false, nil, "args.n * 2\n"},
		{"exists", m, "args.n * 3\n", false, ErrExists, "args.n * 2\n"},
		{"overwrite", m, "args.n * 3\n", true, nil, "args.n * 3\n"},
		{"code that does not parse", m, "const = ;", true, ErrInvalid, "args.n * 3\n"},
		{"bad name", Meta{Name: "../x", Description: "d"}, "1", false, ErrInvalid, ""},
		{"bad inputs", Meta{Name: "y", Description: "d", Inputs: json.RawMessage(`{"type":"string"}`)}, "1", false, ErrInvalid, ""},
		{"too large", Meta{Name: "y", Description: "d"}, strings.Repeat("1;", MaxBytes/2), false, ErrInvalid, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.Save(ctx, c.meta, c.code, c.overwrite)
			if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("Save = %v, want %v", err, c.err)
			}
			if c.want != "" {
				p, err := d.Get(c.meta.Name)
				if err != nil || p.Code != c.want {
					t.Errorf("after the save, Get = %+v, %v; want code %q", p, err, c.want)
				}
			}
		})
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "double.ts" {
			t.Errorf("the directory holds %s; only double.ts was saved", e.Name())
		}
	}
	if got := names(d); !slices.Equal(got, []string{"double"}) {
		t.Errorf("List = %v", got)
	}
}

func TestCalls(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sum.ts"), []byte(sumFile), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCalls(d, nil)
	res, err := c.Call(ctx, "playbooks.run", json.RawMessage(`{"name":"sum","args":{"a":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(*RunReply)
	// The arguments, defaults applied, on the first line; the file's lines keep their numbers.
	if first, _, _ := strings.Cut(r.Module, "\n"); !strings.Contains(first, `JSON.parse("{\"a\":1,\"b\":10}")`) || !strings.HasSuffix(first, "/* ---") {
		t.Errorf("the module's first line is %q", first)
	}
	line4 := strings.Split(r.Module, "\n")[3]
	col := strings.Index(line4, "args.a + args.b")
	if col < 0 {
		t.Fatalf("line 4 of the module is %q, want the file's line 4", line4)
	}
	// The last expression's line is rewritten (export default …): map puts its columns back.
	text := fmt.Sprintf("boom at main.ts:4:%d", col+1)
	mapped, err := c.Call(ctx, "playbooks.map", json.RawMessage(`{"token":"`+r.Token+`","text":"`+text+`"}`))
	if err != nil || mapped != "boom at main.ts:4:1" {
		t.Errorf("map %q = %v, %v; want main.ts:4:1", text, mapped, err)
	}
	if unknown, _ := c.Call(ctx, "playbooks.map", json.RawMessage(`{"token":"nope","text":"`+text+`"}`)); unknown != text {
		t.Errorf("map with an unknown token = %v, want the text unchanged", unknown)
	}
	for _, bad := range []struct {
		method, params, want string
	}{
		{"playbooks.run", `{"name":"sum","args":{"a":"x"}}`, "/properties/a"},
		{"playbooks.run", `{"name":"sum","args":[1]}`, "args must be an object"},
		{"playbooks.run", `{"name":"nope"}`, `"nope"`},
		{"playbooks.run", `{}`, "name must be a playbook name"},
		{"playbooks.run", `{"name":"sum","extra":1}`, "malformed parameters"},
		{"playbooks.other", `{}`, "unknown playbooks method"},
	} {
		if _, err := c.Call(ctx, bad.method, json.RawMessage(bad.params)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s %s = %v, want an error containing %q", bad.method, bad.params, err, bad.want)
		}
	}
	list, err := c.Call(ctx, "playbooks.list", nil)
	if b, _ := json.Marshal(list); err != nil || !strings.Contains(string(b), `"name":"sum"`) {
		t.Errorf("list = %s, %v", b, err)
	}
}
