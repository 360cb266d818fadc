package typecheck

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRequestGlobals(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{"none", ``, "", ""},
		{"null", `null`, "", ""},
		{"empty", `{}`, "", ""},
		{"primitives, sorted", `{"s": "x", "n": 1.5, "b": true, "z": null}`,
			"declare const b: boolean;\ndeclare const n: number;\ndeclare const s: string;\ndeclare const z: null;\n", ""},
		{"object and arrays", `{"city": {"name": "Oslo", "pop": 700000, "tags": ["a", "b"], "odd key": []}, "mix": [1, "a", 2]}`,
			"declare const city: { \"name\": string; \"odd key\": unknown[]; \"pop\": number; \"tags\": (string)[]; };\ndeclare const mix: (number | string)[];\n", ""},
		{"deep values are any", `{"d": [[[[[[[1]]]]]]]}`, "declare const d: ((((((any)[])[])[])[])[])[];\n", ""},
		{"not an identifier", `{"a-b": 1}`, "", "not an identifier"},
		{"not an object", `[1]`, "", "globals"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RequestGlobals(json.RawMessage(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("RequestGlobals(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}
