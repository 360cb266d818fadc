package playbook

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// sameJSON: a and b are the same JSON value (or both empty).
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// FuzzParse: Parse never panics, every failure is an ErrInvalid, and what it accepts formats back
// to a file that parses to the same front-matter and code.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"/* ---\n{\"name\":\"x\",\"description\":\"d\"}\n--- */\n1\n",
		"/* ---\n{\"name\":\"x\",\"description\":\"d\",\"inputs\":" + sumInputs + "}\n--- */\nargs.a\n",
		"/* ---\r\n{\"name\":\"x\",\"description\":\"a *\\/ b\"}\r\n--- */\r\n",
		"/* ---\n{\"name\":\"x\",\"description\":\"d\",\"inputs\":{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"type\":\"object\"}}}}\n--- */\n",
		"/* ---\n{\"name\":\"x\",\"name\":\"x\"}\n--- */\n",
		"/* ---\n--- */\n",
		"",
	} {
		f.Add("x.ts", s)
	}
	f.Fuzz(func(t *testing.T, file, text string) {
		p, err := Parse(file, text)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if err := CheckName(p.Name); err != nil {
			t.Fatalf("accepted name %q: %v", p.Name, err)
		}
		again, err := Format(p.Meta, p.Code)
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(p.Name+Ext, again)
		if err != nil {
			if errors.Is(err, ErrInvalid) && len(again) > MaxBytes {
				return // escaping "*/" can grow a file over the limit
			}
			t.Fatalf("Format's output does not parse: %v\n%q", err, again)
		}
		if q.Name != p.Name || q.Description != p.Description || !sameJSON(q.Inputs, p.Inputs) || q.Code != p.Code {
			t.Fatalf("round trip changed %+v %q into %+v %q", p.Meta, p.Code, q.Meta, q.Code)
		}
	})
}
