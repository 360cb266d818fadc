package egress

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNewSecretsRefuses(t *testing.T) {
	ok := Secret{Name: "GITHUB_TOKEN", Value: "ghp_0123456789", Hosts: []string{"api.github.com"}}
	with := func(f func(*Secret)) []Secret {
		s := ok
		s.Hosts = []string{"api.github.com"}
		f(&s)
		return []Secret{s}
	}
	cases := []struct {
		name string
		in   []Secret
		want string
	}{
		{"bad name", with(func(s *Secret) { s.Name = "1TOKEN" }), "an environment variable name"},
		{"name with dash", with(func(s *Secret) { s.Name = "GH-TOKEN" }), "an environment variable name"},
		{"reserved name", with(func(s *Secret) { s.Name = "PATH" }), "reserved"},
		{"reserved prefix", with(func(s *Secret) { s.Name = "DENO_AUTH_TOKENS" }), "reserved"},
		{"reserved prefix any case", with(func(s *Secret) { s.Name = "ld_preload" }), "reserved"},
		{"short value", with(func(s *Secret) { s.Value = "abc" }), "at least 8"},
		{"long value", with(func(s *Secret) { s.Value = strings.Repeat("a", MaxSecretLen+1) }), "at most"},
		{"newline in value", with(func(s *Secret) { s.Value = "abcdefgh\r\nX-Evil: 1" }), "CR, LF or NUL"},
		{"placeholder in value", with(func(s *Secret) { s.Value = "x" + placeholderPrefix + "y" }), "contains"},
		{"no host", with(func(s *Secret) { s.Hosts = nil }), "no host"},
		{"host with port", with(func(s *Secret) { s.Hosts = []string{"api.github.com:443"} }), "without port"},
		{"host upper case", with(func(s *Secret) { s.Hosts = []string{"API.github.com"} }), "lower-case DNS name"},
		{"host IP", with(func(s *Secret) { s.Hosts = []string{"127.0.0.1"} }), "DNS name"},
		{"twice", []Secret{ok, ok}, "given twice"},
		{"value inside another", []Secret{ok, {Name: "B", Value: "Xghp_0123456789X", Hosts: []string{"b.example"}}}, "contains the value of"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSecrets(tc.in)
			if !errors.Is(err, ErrSecret) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSecrets: %v, want ErrSecret with %q", err, tc.want)
			}
			if s != nil {
				t.Fatal("a refused configuration returned secrets")
			}
			if strings.Contains(err.Error(), tc.in[0].Value) && len(tc.in[0].Value) >= MinSecretLen {
				t.Errorf("the error shows the value: %v", err)
			}
		})
	}
}

// TestSecretsCA: the sandboxes' authority signs for the names it is asked,
// only as a CA limited to DNS names, and gives out no key.
func TestSecretsCA(t *testing.T) {
	s, err := NewSecrets([]Secret{{Name: "TOKEN", Value: "0123456789", Hosts: []string{"api.example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := s.CACertPEM()
	if bytes.Contains(pemBytes, []byte("PRIVATE")) {
		t.Fatal("the CA PEM holds a key")
	}
	blk, _ := pem.Decode(pemBytes)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || !ca.MaxPathLenZero || len(ca.ExcludedIPRanges) != 2 {
		t.Errorf("CA: IsCA %v, MaxPathLenZero %v, excluded IP ranges %v", ca.IsCA, ca.MaxPathLenZero, ca.ExcludedIPRanges)
	}
	leaf, err := s.ca.leaf("api.example.com")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "api.example.com"}); err != nil {
		t.Errorf("leaf does not verify: %v", err)
	}
	if again, _ := s.ca.leaf("api.example.com"); again != leaf {
		t.Error("the leaf was made again, not reused")
	}
	other, _ := NewSecrets([]Secret{{Name: "TOKEN", Value: "0123456789", Hosts: []string{"api.example.com"}}})
	if bytes.Equal(other.CACertPEM(), pemBytes) || other.Placeholder("TOKEN") == s.Placeholder("TOKEN") {
		t.Error("two servers share a CA or a placeholder")
	}
}

func TestSecretsCheckPolicy(t *testing.T) {
	s, err := NewSecrets([]Secret{{Name: "TOKEN", Value: "0123456789", Hosts: []string{"api.example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		allow []string
		any   bool
		ok    bool
	}{
		{[]string{"api.example.com"}, false, true},
		{[]string{"api.example.com:443"}, false, true},
		{nil, true, true},
		{[]string{"other.example.com"}, false, false},
		{[]string{"127.0.0.1:443"}, false, false},
	} {
		pol, err := NewPolicy(tc.allow, tc.any, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckPolicy(pol); (err == nil) != tc.ok {
			t.Errorf("allow %v any %v: %v, want ok=%v", tc.allow, tc.any, err, tc.ok)
		}
	}
}

// TestPutSecrets is the substitution alone: which headers get the value,
// and what is recorded.
func TestPutSecrets(t *testing.T) {
	s, err := NewSecrets([]Secret{
		{Name: "A", Value: "value-of-A-123", Hosts: []string{"a.example"}},
		{Name: "B", Value: "value-of-B-456", Hosts: []string{"b.example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := s.Placeholder("A"), s.Placeholder("B")
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	cases := []struct {
		name            string
		header, value   string
		url             string
		want            string
		secrets, places []string
	}{
		{"bearer", "Authorization", "Bearer " + pa, "/", "Bearer value-of-A-123", []string{"A"}, nil},
		{"custom header", "X-Api-Key", pa, "/", "value-of-A-123", []string{"A"}, nil},
		{"twice in one value", "X-Both", pa + "," + pa, "/", "value-of-A-123,value-of-A-123", []string{"A"}, nil},
		{"basic credentials", "Authorization", basic("user", pa), "/", basic("user", "value-of-A-123"), []string{"A"}, nil},
		{"other host's secret stays", "Authorization", "Bearer " + pb, "/", "Bearer " + pb, nil, []string{"B"}},
		{"other host's in basic", "Authorization", basic("u", pb), "/", basic("u", pb), nil, []string{"B"}},
		{"in the URL: not put", "X-None", "x", "/?key=" + pa, "x", nil, []string{"A"}},
		{"no placeholder", "Authorization", "Bearer abc", "/", "Bearer abc", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Door{o: DoorOptions{Secrets: s}}
			rec := &record{}
			r, err := http.NewRequest("GET", "https://a.example"+tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set(tc.header, tc.value)
			d.putSecrets(r, "a.example", rec)
			if got := r.Header.Get(tc.header); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.header, got, tc.want)
			}
			if !equalStrings(rec.r.Secrets, tc.secrets) || !equalStrings(rec.r.Placeholders, tc.places) {
				t.Errorf("recorded secrets %v placeholders %v, want %v %v", rec.r.Secrets, rec.r.Placeholders, tc.secrets, tc.places)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSameAuthority(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"api.example.com", true}, {"API.example.com", true}, {"api.example.com:443", true}, {"api.example.com.", true},
		{"api.example.com:8443", false}, {"other.example.com", false}, {"api.example.com.evil", false}, {"", false},
	} {
		if got := sameAuthority(tc.host, "api.example.com", 443); got != tc.ok {
			t.Errorf("sameAuthority(%q) = %v, want %v", tc.host, got, tc.ok)
		}
	}
}

// TestReplacer: the streaming replace equals bytes.ReplaceAll on the whole
// input however the input is cut, including matches across reads.
func TestReplacer(t *testing.T) {
	old, new := "SECRET-value-1234", "conductor-secret-X-000"
	cases := []string{
		"", "SECRET-value-1234", "aSECRET-value-1234b", "SECRET-value-1234SECRET-value-1234",
		"SECRET-value-123", "xxSECRET-value-12SECRET-value-1234", strings.Repeat("SECRET-", 10000) + "value-1234",
		strings.Repeat("a", 70000) + "SECRET-value-1234" + strings.Repeat("b", 70000),
	}
	for _, in := range cases {
		want := strings.ReplaceAll(in, old, new)
		for name, src := range map[string]io.Reader{
			"whole": strings.NewReader(in), "bytes": iotest.OneByteReader(strings.NewReader(in)), "half": iotest.HalfReader(strings.NewReader(in)),
		} {
			got, err := io.ReadAll(newReplacer(io.NopCloser(src), []byte(old), []byte(new)))
			if err != nil || string(got) != want {
				t.Errorf("%s read of %d bytes: %d bytes out (err %v), want %d", name, len(in), len(got), err, len(want))
			}
		}
	}
}

func FuzzReplacer(f *testing.F) {
	f.Add([]byte("abcSECRETdef"), []byte("SECRET"), uint8(3))
	f.Add([]byte("SESECRETCRET"), []byte("SECRET"), uint8(1))
	f.Fuzz(func(t *testing.T, in, old []byte, cut uint8) {
		if len(old) == 0 || len(old) > 64 {
			return
		}
		want := bytes.ReplaceAll(in, old, []byte("<p>"))
		var src io.Reader = bytes.NewReader(in)
		if cut%2 == 1 {
			src = iotest.OneByteReader(src)
		}
		got, err := io.ReadAll(newReplacer(io.NopCloser(src), old, []byte("<p>")))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("in %q old %q: got %q (%v), want %q", in, old, got, err, want)
		}
	})
}

// TestScrubResponse: a real value in the host's answer, headers and body,
// goes back as the placeholder; the length is no longer claimed.
func TestScrubResponse(t *testing.T) {
	s, err := NewSecrets([]Secret{{Name: "A", Value: "value-of-A-123", Hosts: []string{"a.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	d := &Door{o: DoorOptions{Secrets: s}}
	body := `{"echo":"Bearer value-of-A-123"}`
	r := &http.Response{
		StatusCode: 200, Header: http.Header{"X-Echo": {"value-of-A-123"}, "Content-Length": {"31"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
	}
	r.Trailer = http.Header{"X-Sig": {"sig value-of-A-123"}}
	if err := d.scrubResponse(r, "a.example"); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r.Body)
	if tr := r.Trailer.Get("X-Sig"); tr != "sig "+s.Placeholder("A") {
		t.Errorf("trailer after the body: %q, want the placeholder", tr)
	}
	ph := s.Placeholder("A")
	if string(got) != `{"echo":"Bearer `+ph+`"}` || r.Header.Get("X-Echo") != ph || r.ContentLength != -1 || r.Header.Get("Content-Length") != "" {
		t.Errorf("scrubbed: body %s, X-Echo %q, length %d %q", got, r.Header.Get("X-Echo"), r.ContentLength, r.Header.Get("Content-Length"))
	}
}

// TestScrubRefusesEncoded: an answer the door cannot read is refused, not
// passed through unchecked.
func TestScrubRefusesEncoded(t *testing.T) {
	s, err := NewSecrets([]Secret{{Name: "A", Value: "value-of-A-123", Hosts: []string{"a.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	d := &Door{o: DoorOptions{Secrets: s}}
	r := &http.Response{StatusCode: 200, Header: http.Header{"Content-Encoding": {"br"}}, Body: io.NopCloser(strings.NewReader("x"))}
	if err := d.scrubResponse(r, "a.example"); !errors.Is(err, errUncheckable) || !strings.Contains(err.Error(), `"br"`) {
		t.Errorf("a br answer: %v, want it refused naming the encoding", err)
	}
}
