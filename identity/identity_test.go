package identity

import (
	"errors"
	"strings"
	"testing"
)

var (
	hashA = Hash("token-a")
	hashB = Hash("token-b")
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		errs []string // each must be in the error; none = valid
		n    int
	}{
		{name: "two and stdio", data: `[{"name":"alice","token_sha256":"` + hashA + `","quotas":{"concurrent":2,"executions_per_minute":10}},
			{"name":"bob","token_sha256":"` + strings.ToUpper(hashB) + `","workspace":false},{"name":"stdio","quotas":{"cpu_seconds_per_hour":60}}]`, n: 3},
		{name: "empty", data: `[]`, n: 0},
		{name: "bad name", data: `[{"name":"Alice","token_sha256":"` + hashA + `"}]`, errs: []string{`identity 1 ("Alice"): name must be`}},
		{name: "long name", data: `[{"name":"` + strings.Repeat("a", 33) + `","token_sha256":"` + hashA + `"}]`, errs: []string{"name must be 1 to 32"}},
		{name: "dup name", data: `[{"name":"a","token_sha256":"` + hashA + `"},{"name":"a","token_sha256":"` + hashB + `"}]`, errs: []string{"name given twice (also identity 1)"}},
		{name: "dup token", data: `[{"name":"a","token_sha256":"` + hashA + `"},{"name":"b","token_sha256":"` + hashA + `"}]`, errs: []string{`also "a"'s`}},
		{name: "token not a hash", data: `[{"name":"a","token_sha256":"secret"}]`, errs: []string{"64 hex digits"}},
		{name: "no token", data: `[{"name":"a"}]`, errs: []string{"token_sha256 is missing"}},
		{name: "stdio token", data: `[{"name":"stdio","token_sha256":"` + hashA + `"}]`, errs: []string{"stdio has no token"}},
		{name: "negative quota", data: `[{"name":"a","token_sha256":"` + hashA + `","quotas":{"concurrent":-1}}]`, errs: []string{"quotas.concurrent is -1"}},
		{name: "unknown key", data: `[{"name":"a","token":"x"}]`, errs: []string{`unknown field "token"`}},
		{name: "unknown quota", data: `[{"name":"a","token_sha256":"` + hashA + `","quotas":{"memory":1}}]`, errs: []string{`unknown field "memory"`}},
		{name: "object", data: `{"alice":{}}`, errs: []string{"want an array"}},
		{name: "trailing", data: `[] []`, errs: []string{"more after the array"}},
		{name: "two errors", data: `[{"name":"A"},{"name":"b","token_sha256":"x"}]`, errs: []string{"identity 1", "identity 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.data))
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if s.Len() != tc.n {
					t.Fatalf("%d identities, want %d", s.Len(), tc.n)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want %q in it", err, want)
				}
			}
		})
	}
}

func TestVerify(t *testing.T) {
	s, err := Parse([]byte(`[{"name":"alice","token_sha256":"` + hashA + `"},{"name":"bob","token_sha256":"` + strings.ToUpper(hashB) + `"},{"name":"stdio"}]`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ token, want string }{{"token-a", "alice"}, {"token-b", "bob"}, {"token-c", ""}, {"", ""}, {hashA, ""}} {
		got, ok := s.Verify(tc.token)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Verify(%q) = %q, %v; want %q", tc.token, got, ok, tc.want)
		}
	}
	// The canonical JSON parses back to the same identities.
	again, err := Parse(s.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := again.Verify("token-b"); got != "bob" || string(again.JSON()) != string(s.JSON()) {
		t.Fatalf("round trip: %s != %s", again.JSON(), s.JSON())
	}
	if id, _ := s.Lookup("alice"); !id.HasWorkspace() {
		t.Fatal("workspace absent must default to true")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`[{"name":"alice","token_sha256":"` + hashA + `","quotas":{"concurrent":2}},{"name":"stdio"}]`))
	f.Add([]byte(`[{"name":"a","token_sha256":"x"}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		again, err := Parse(s.JSON())
		if err != nil {
			t.Fatalf("canonical JSON %s does not parse: %v", s.JSON(), err)
		}
		for _, id := range s.All() {
			if !nameRE.MatchString(id.Name) {
				t.Fatalf("accepted name %q", id.Name)
			}
			if got, ok := again.Lookup(id.Name); !ok || got.Quotas != id.Quotas {
				t.Fatalf("round trip lost %q", id.Name)
			}
		}
	})
}
