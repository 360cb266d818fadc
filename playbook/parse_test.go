package playbook

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const sumInputs = `{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number","default":10}},"required":["a"]}`

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name     string
		file     string
		text     string
		want     Meta   // when it parses
		code     string // its code
		codeLine int
		err      string // else a substring of the error
	}{
		{name: "minimal", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\"}\n--- */\n1\n",
			want: Meta{Name: "x", Description: "d"}, code: "1\n", codeLine: 4},
		{name: "inputs compacted", file: "sum.ts", text: "/* ---\n{\"name\": \"sum\", \"description\": \"Adds.\",\n \"inputs\": " + sumInputs + "}\n--- */\nargs.a\n",
			want: Meta{Name: "sum", Description: "Adds.", Inputs: json.RawMessage(sumInputs)}, code: "args.a\n", codeLine: 5},
		{name: "CRLF", file: "x.ts", text: "/* ---\r\n{\"name\":\"x\",\"description\":\"d\"}\r\n--- */\r\n1\r\n",
			want: Meta{Name: "x", Description: "d"}, code: "1\r\n", codeLine: 4},
		{name: "null inputs", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\",\"inputs\":null}\n--- */\n",
			want: Meta{Name: "x", Description: "d"}, code: "", codeLine: 4},
		{name: "escaped comment end", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"a *\\/ b\"}\n--- */\n",
			want: Meta{Name: "x", Description: "a */ b"}, codeLine: 4},
		{name: "no front-matter", file: "x.ts", text: "1\n", err: "x.ts: the first line must be"},
		{name: "empty file", file: "x.ts", text: "", err: "x.ts: the first line must be"},
		{name: "open not alone", file: "x.ts", text: "/* --- {}\n--- */\n", err: "the first line must be"},
		{name: "not closed", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\"}\n", err: "no closing line"},
		{name: "comment end inside", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"a */ b\"}\n--- */\n", err: `"*/" would end the comment`},
		{name: "not JSON", file: "x.ts", text: "/* ---\nname: x\n--- */\n", err: "front-matter: not a JSON object"},
		{name: "an array", file: "x.ts", text: "/* ---\n[]\n--- */\n", err: "not a JSON object"},
		{name: "null", file: "x.ts", text: "/* ---\nnull\n--- */\n", err: "not a JSON object"},
		{name: "trailing text", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\"} {}\n--- */\n", err: "text after the JSON object"},
		{name: "unknown key", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\",\"author\":\"me\"}\n--- */\n", err: `unknown key "author"`},
		{name: "duplicate key", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\",\"name\":\"y\"}\n--- */\n", err: `key "name" appears twice`},
		{name: "name missing", file: "x.ts", text: "/* ---\n{\"description\":\"d\"}\n--- */\n", err: "name is missing"},
		{name: "name not a string", file: "x.ts", text: "/* ---\n{\"name\":1,\"description\":\"d\"}\n--- */\n", err: "name must be a string"},
		{name: "bad name", file: "X.ts", text: "/* ---\n{\"name\":\"X\",\"description\":\"d\"}\n--- */\n", err: `name "X": allowed`},
		{name: "name differs from the file", file: "y.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\"}\n--- */\n", err: `name "x" differs from the file's name "y"`},
		{name: "description missing", file: "x.ts", text: "/* ---\n{\"name\":\"x\"}\n--- */\n", err: "description is missing"},
		{name: "description blank", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"  \"}\n--- */\n", err: "description is empty"},
		{name: "description too long", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"" + strings.Repeat("d", MaxDescription+1) + "\"}\n--- */\n", err: "description is 1025 bytes"},
		{name: "inputs not an object", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\",\"inputs\":[]}\n--- */\n", err: "inputs: must be a JSON Schema object"},
		{name: "inputs of another type", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\",\"inputs\":{\"type\":\"array\"}}\n--- */\n", err: `inputs: type must be "object"`},
		{name: "inputs not a schema", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\",\"inputs\":{\"properties\":3}}\n--- */\n", err: "inputs: not a JSON Schema"},
		{name: "inputs with a dangling ref", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"d\",\"inputs\":{\"$ref\":\"#/nope\"}}\n--- */\n", err: "inputs: not a usable JSON Schema"},
		{name: "not UTF-8", file: "x.ts", text: "/* ---\n{\"name\":\"x\",\"description\":\"\xff\"}\n--- */\n", err: "not valid UTF-8"},
		{name: "too large", file: "x.ts", text: "/* ---\n" + strings.Repeat(" ", MaxBytes), err: "the limit is"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.file, c.text)
			if c.err != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.file) {
					t.Fatalf("Parse = %v, want an ErrInvalid naming %s and containing %q", err, c.file, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Name != c.want.Name || p.Description != c.want.Description || string(p.Inputs) != string(c.want.Inputs) {
				t.Errorf("meta = %+v, want %+v", p.Meta, c.want)
			}
			if p.Code != c.code || p.CodeLine != c.codeLine || p.Source != c.text {
				t.Errorf("code %q at line %d, want %q at line %d", p.Code, p.CodeLine, c.code, c.codeLine)
			}
		})
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{Name: "a", Description: "plain"},
		{Name: "b-2_x", Description: "ends a comment */ and has \u2028 and <tags>", Inputs: json.RawMessage(sumInputs)},
	} {
		text, err := Format(m, "args\n")
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(m.Name+Ext, text)
		if err != nil {
			t.Fatalf("Parse(Format(%+v)): %v\n%s", m, err, text)
		}
		if p.Name != m.Name || p.Description != m.Description || string(p.Inputs) != string(m.Inputs) || p.Code != "args\n" {
			t.Errorf("round trip of %+v gave %+v code %q", m, p.Meta, p.Code)
		}
	}
}

func TestValidateArgs(t *testing.T) {
	p, err := Parse("sum.ts", "/* ---\n{\"name\":\"sum\",\"description\":\"d\",\"inputs\":"+sumInputs+"}\n--- */\n")
	if err != nil {
		t.Fatal(err)
	}
	free, err := Parse("free.ts", "/* ---\n{\"name\":\"free\",\"description\":\"d\"}\n--- */\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		p    *Playbook
		args string
		want string // the validated args as JSON
		err  string
	}{
		{"valid", p, `{"a":1,"b":2}`, `{"a":1,"b":2}`, ""},
		{"default", p, `{"a":1}`, `{"a":1,"b":10}`, ""},
		{"wrong type names the field", p, `{"a":"1"}`, "", "/properties/a"},
		{"missing required", p, `{}`, "", `"a"`},
		{"not an object", p, `[1]`, "", "args must be an object"},
		{"none without a schema", free, ``, `{}`, ""},
		{"anything without a schema", free, `{"x":[1]}`, `{"x":[1]}`, ""},
		{"null is none", free, `null`, `{}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := c.p.ValidateArgs(json.RawMessage(c.args))
			if c.err != "" {
				if err == nil || !errors.Is(err, ErrArgs) || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), `playbook "`+c.p.Name+`"`) {
					t.Fatalf("ValidateArgs = %v, want ErrArgs naming the playbook and %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := json.Marshal(v); string(got) != c.want {
				t.Errorf("args = %s, want %s", got, c.want)
			}
		})
	}
}
