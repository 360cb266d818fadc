package deps

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// testList is the allowlist most tests check against.
const testList = "npm:zod@^3,npm:axios@^1,npm:@scope/pkg@1.2.3,jsr:@std/path@^1,npm:is-number@7"

func mustParse(t testing.TB, s string) *Allowlist {
	t.Helper()
	a, err := ParseAllowlist(s)
	if err != nil {
		t.Fatalf("ParseAllowlist(%q): %v", s, err)
	}
	return a
}

func TestCheck(t *testing.T) {
	a := mustParse(t, testList)
	zod := Package{NPM, "zod", "^3"}
	scoped := Package{NPM, "@scope/pkg", "1.2.3"}
	stdPath := Package{JSR, "@std/path", "^1"}
	tests := []struct {
		spec string
		err  error  // nil: accepted
		want string // accepted: Resolved.Specifier; rejected: a substring of the message
		pkg  Package
	}{
		// Accepted: the admin's version wins, subpaths are kept.
		{"npm:zod", nil, "npm:zod@^3", zod},
		{"npm:zod@^3", nil, "npm:zod@^3", zod},
		{"npm:zod@^3/v4", nil, "npm:zod@^3/v4", zod},
		{"npm:zod/v4", nil, "npm:zod@^3/v4", zod},
		{"npm:zod/locale/en-US", nil, "npm:zod@^3/locale/en-US", zod},
		{"zod", nil, "npm:zod@^3", zod},
		{"zod/v4/core", nil, "npm:zod@^3/v4/core", zod},
		{"npm:@scope/pkg", nil, "npm:@scope/pkg@1.2.3", scoped},
		{"npm:@scope/pkg/sub", nil, "npm:@scope/pkg@1.2.3/sub", scoped},
		{"npm:@scope/pkg@1.2.3/sub/deep.js", nil, "npm:@scope/pkg@1.2.3/sub/deep.js", scoped},
		{"@scope/pkg", nil, "npm:@scope/pkg@1.2.3", scoped},
		{"@scope/pkg/sub", nil, "npm:@scope/pkg@1.2.3/sub", scoped},
		{"jsr:@std/path", nil, "jsr:@std/path@^1", stdPath},
		{"jsr:@std/path@^1/posix", nil, "jsr:@std/path@^1/posix", stdPath},
		{"jsr:@std/path/posix", nil, "jsr:@std/path@^1/posix", stdPath},
		{"@std/path/posix", nil, "jsr:@std/path@^1/posix", stdPath},
		{"npm:axios/dist/node/axios.cjs", nil, "npm:axios@^1/dist/node/axios.cjs", Package{NPM, "axios", "^1"}},
		{"npm:is-number@7", nil, "npm:is-number@7", Package{NPM, "is-number", "7"}},
		{"node:fs", nil, "node:fs", Package{}},
		{"node:fs/promises", nil, "node:fs/promises", Package{}},
		{"node:test", nil, "node:test", Package{}},

		// Not on the list.
		{"npm:lodash", ErrNotAllowed, `npm:lodash is not on this server's package allowlist`, Package{}},
		{"lodash/fp", ErrNotAllowed, "lodash is not on", Package{}},
		{"npm:zodd", ErrNotAllowed, "npm:zodd is not", Package{}},
		{"npm:zod-extra@^3", ErrNotAllowed, "npm:zod-extra is not", Package{}},
		{"jsr:@std/fs", ErrNotAllowed, "jsr:@std/fs is not", Package{}},
		{"npm:@std/path", ErrNotAllowed, "jsr:@std/path@^1 is, from jsr", Package{}},
		{"jsr:@scope/pkg", ErrNotAllowed, "npm:@scope/pkg@1.2.3 is, from npm", Package{}},
		{"node:nosuch", ErrNotAllowed, "node:nosuch is not a Node built-in", Package{}},
		{"node:fs@1", ErrNotAllowed, "not a Node built-in", Package{}},
		{"fs", ErrNotAllowed, "write node:fs", Package{}},
		{"path/posix", ErrNotAllowed, "write node:path/posix", Package{}},

		// Another version than the admin's: strict textual equality.
		{"npm:zod@^2", ErrVersionMismatch, "asks for version ^2; this server pins npm:zod@^3; omit the version or use ^3", Package{}},
		{"npm:zod@3", ErrVersionMismatch, "pins npm:zod@^3", Package{}},
		{"npm:zod@^3.0.0", ErrVersionMismatch, "use ^3", Package{}},
		{"npm:zod@^3.x/v4", ErrVersionMismatch, "asks for version ^3.x", Package{}},
		{"npm:is-number@6", ErrVersionMismatch, "pins npm:is-number@7", Package{}},
		{"npm:@scope/pkg@1.2.4/sub", ErrVersionMismatch, "pins npm:@scope/pkg@1.2.3", Package{}},
		{"jsr:@std/path@^2/posix", ErrVersionMismatch, "pins jsr:@std/path@^1", Package{}},

		// Malformed: grammar.
		{"", ErrMalformed, "is empty", Package{}},
		{"npm:", ErrMalformed, "names no package", Package{}},
		{"npm:/zod", ErrMalformed, "has a / after npm:", Package{}},
		{"npm://zod", ErrMalformed, "has a / after npm:", Package{}},
		{"NPM:zod", ErrMalformed, "upper-case scheme; write npm:", Package{}},
		{"Node:fs", ErrMalformed, "upper-case scheme; write node:", Package{}},
		{"npm:Zod", ErrMalformed, "upper-case letters (npm names are lower-case); the allowlisted package is npm:zod@^3", Package{}},
		{"ZOD", ErrMalformed, "the allowlisted package is npm:zod@^3", Package{}},
		{"jsr:@Std/path", ErrMalformed, "upper-case", Package{}},
		{"jsr:path", ErrMalformed, "jsr names are always @scope/name", Package{}},
		{"npm:@scope", ErrMalformed, "scope without a package", Package{}},
		{"npm:@/pkg", ErrMalformed, "scope that is empty", Package{}},
		{"npm:.hidden", ErrMalformed, `starts with '.'`, Package{}},
		{"npm:_private", ErrMalformed, `starts with '_'`, Package{}},
		{"npm:zod@", ErrMalformed, `the version "" is empty; omit the version: this server pins npm:zod@^3`, Package{}},
		{"npm:zod@latest", ErrMalformed, "does not start with a major version number", Package{}},
		{"npm:lodash@latest", ErrMalformed, "does not start with a major version", Package{}},
		{"npm:zod@*", ErrMalformed, "does not pin a major version", Package{}},
		{"npm:zod@^^3", ErrMalformed, "more than one ^ or ~", Package{}},
		{"npm:zod@03", ErrMalformed, "does not start with a major version number", Package{}},
		{"npm:zod@>=3", ErrMalformed, `'>'`, Package{}},
		{"npm:zod@^3||^4", ErrMalformed, `'|'`, Package{}},
		{"npm:zod@3.0.0+build", ErrMalformed, `'+'`, Package{}},
		{"zod@^3", ErrMalformed, "bare specifiers carry no version; write zod (this server pins npm:zod@^3)", Package{}},
		{"zod@^3/v4", ErrMalformed, "write zod/v4", Package{}},

		// Malformed: path tricks in the subpath.
		{"npm:zod@^3/", ErrMalformed, "empty path segment", Package{}},
		{"npm:zod//v4", ErrMalformed, "empty path segment", Package{}},
		{"npm:zod@3/../../x", ErrMalformed, `a ".." path segment`, Package{}},
		{"npm:zod/../x", ErrMalformed, `a ".." path segment`, Package{}},
		{"zod/../lodash", ErrMalformed, `a ".." path segment`, Package{}},
		{"npm:zod/./v4", ErrMalformed, `a "." path segment`, Package{}},
		{"npm:zod/.hidden", ErrMalformed, "starting with '.'", Package{}},
		{"npm:zod@^3/v4:x", ErrMalformed, `':' in a path segment`, Package{}},
		{"npm:zod/@x", ErrMalformed, `'@' in a path segment`, Package{}},

		// Malformed: injection bytes, encodings, look-alikes.
		{"%2e%2e/x", ErrMalformed, "percent-encoding at byte 0", Package{}},
		{"npm:zod/%2e%2e/x", ErrMalformed, "percent-encoding at byte 8", Package{}},
		{"npm:%7aod", ErrMalformed, "percent-encoding", Package{}},
		{`npm:zod\..\x`, ErrMalformed, "a backslash at byte 7", Package{}},
		{"npm:zod\x00", ErrMalformed, "a NUL byte at byte 7", Package{}},
		{"npm:zod\x00https://example.com/x", ErrMalformed, "NUL", Package{}},
		{"npm:zod x", ErrMalformed, "whitespace at byte 7", Package{}},
		{" npm:zod", ErrMalformed, "whitespace at byte 0", Package{}},
		{"npm:zod\n", ErrMalformed, "whitespace", Package{}},
		{"npm:zod\x1b[2J", ErrMalformed, "a control byte", Package{}},
		{"npm:zod?raw", ErrMalformed, "no query or fragment", Package{}},
		{"npm:zod#x", ErrMalformed, "no query or fragment", Package{}},
		{"npm:z\u043ed", ErrMalformed, "non-ASCII character U+043E at byte 5", Package{}}, // Cyrillic o
		{"npm:\uff5aod", ErrMalformed, "non-ASCII character U+FF5A", Package{}},           // fullwidth z
		{"npm:zod\u200b", ErrMalformed, "non-ASCII character U+200B", Package{}},          // zero-width space
		{"\u2024/x.ts", ErrMalformed, "non-ASCII", Package{}},                             // one dot leader
		{"npm:zod\xff", ErrMalformed, "invalid UTF-8 at byte 7", Package{}},               // not UTF-8
		{"npm:zod;rm", ErrMalformed, `';' at byte 7`, Package{}},
		{"npm:zod'x", ErrMalformed, `'\''`, Package{}},
		{"npm:zod`x`", ErrMalformed, "'`'", Package{}},
		{"npm:zod$x", ErrMalformed, `'$'`, Package{}},
		{"npm:zod\"x", ErrMalformed, `'"'`, Package{}},
		{"npm:" + strings.Repeat("a", 600), ErrMalformed, "604 bytes long; a specifier has at most 512", Package{}},
		{"npm:" + strings.Repeat("a", 300), ErrMalformed, "longer than 214 bytes", Package{}},

		// Remote: URLs and node_modules paths.
		{"https://example.com/zod.ts", ErrRemote, "is a remote URL", Package{}},
		{"http://127.0.0.1/x.ts", ErrRemote, "is a remote URL", Package{}},
		{"HTTPS://example.com/x", ErrRemote, "is a remote URL", Package{}},
		{"https://example.com/x?y#z", ErrRemote, "remote URL", Package{}},
		{"file:///etc/passwd", ErrRemote, "is a file URL", Package{}},
		{"data:text/javascript,export default 1", ErrRemote, "is a data: URL", Package{}},
		{"blob:abc", ErrRemote, "is a blob: URL", Package{}},
		{"data:text/javascript,export%20default%201", ErrRemote, "is a data: URL", Package{}},
		{`C:\x.ts`, ErrRemote, "is a c: URL", Package{}},
		{strings.Repeat("a", 100) + ":x", ErrRemote, "is a " + strings.Repeat("a", 32) + "...: URL", Package{}},
		{"ftp://example.com/x", ErrRemote, "is a ftp: URL", Package{}},
		{"github:user/repo", ErrRemote, "github: URL", Package{}},
		{"//example.com/x.js", ErrRemote, "protocol-relative", Package{}},
		{"node_modules/zod/index.js", ErrRemote, "node_modules path", Package{}},
		{"./node_modules/zod", ErrRemote, "node_modules path", Package{}},
		{"npm:zod@^3/node_modules/x", ErrRemote, "node_modules path", Package{}},
		{"npm:node_modules", ErrRemote, "node_modules path", Package{}},

		// Relative and absolute paths.
		{"./x.ts", ErrRelative, "the sandbox has no module files", Package{}},
		{"../x.ts", ErrRelative, "file path", Package{}},
		{"/etc/passwd", ErrRelative, "file path", Package{}},
		{".", ErrRelative, "file path", Package{}},
		{"..", ErrRelative, "file path", Package{}},
		{"./", ErrRelative, "file path", Package{}},
	}
	sentinels := []error{ErrNotAllowed, ErrVersionMismatch, ErrMalformed, ErrRemote, ErrRelative}
	for _, tc := range tests {
		name := tc.spec
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			r, err := a.Check(tc.spec)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Check(%q): %v", tc.spec, err)
				}
				if r.Specifier != tc.want || r.Package != tc.pkg {
					t.Fatalf("Check(%q) = %+v, want specifier %q, package %+v", tc.spec, r, tc.want, tc.pkg)
				}
				wantKind := KindPackage
				if strings.HasPrefix(tc.spec, "node:") {
					wantKind = KindBuiltin
				}
				if r.Kind != wantKind || !strings.HasSuffix(r.Specifier, r.Subpath) {
					t.Fatalf("Check(%q) = %+v, want kind %v", tc.spec, r, wantKind)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%q) = %+v, want %v", tc.spec, r, tc.err)
			}
			if r != (Resolved{}) {
				t.Errorf("Check(%q) rejected but returned %+v", tc.spec, r)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) != (s == tc.err) {
					t.Errorf("Check(%q): errors.Is(%v) = %v; error: %v", tc.spec, s, !(s == tc.err), err)
				}
			}
			var ce *CheckError
			if !errors.As(err, &ce) || ce.Spec != tc.spec {
				t.Errorf("Check(%q): not a *CheckError for the spec: %#v", tc.spec, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("Check(%q) error\n  %s\nwant it to contain\n  %s", tc.spec, msg, tc.want)
			}
			if !strings.Contains(msg, "Allowed packages: npm:zod@^3, npm:axios@^1, npm:@scope/pkg@1.2.3, jsr:@std/path@^1, npm:is-number@7; node: built-ins are always available.") {
				t.Errorf("Check(%q) error does not list the allowed packages: %s", tc.spec, msg)
			}
			for i := 0; i < len(msg); i++ {
				if msg[i] < 0x20 || msg[i] >= 0x7f {
					t.Fatalf("Check(%q) error has byte %#x at %d: %q", tc.spec, msg[i], i, msg)
				}
			}
			if len(msg) > 1000 {
				t.Errorf("Check(%q) error is %d bytes long", tc.spec, len(msg))
			}
		})
	}
	if len(tests) < 40 {
		t.Fatalf("only %d cases", len(tests))
	}
}

func TestCheckEmptyAllowlist(t *testing.T) {
	for _, a := range []*Allowlist{nil, mustParse(t, "")} {
		if r, err := a.Check("node:path"); err != nil || r.Kind != KindBuiltin {
			t.Errorf("Check(node:path) = %+v, %v", r, err)
		}
		_, err := a.Check("npm:zod")
		if !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("Check(npm:zod) = %v, want ErrNotAllowed", err)
		}
		want := `"npm:zod": npm:zod is not on this server's package allowlist. No packages are allowed on this server; only node: built-ins can be imported.`
		if err.Error() != want {
			t.Errorf("error\n  %s\nwant\n  %s", err, want)
		}
		if _, err := a.Check("zod"); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Check(zod) = %v, want ErrNotAllowed", err)
		}
	}
}

func TestCheckErrorText(t *testing.T) {
	a := mustParse(t, "npm:zod@^3,npm:axios@^1")
	_, err := a.Check("npm:zod@^2")
	want := `"npm:zod@^2": asks for version ^2; this server pins npm:zod@^3; omit the version or use ^3. Allowed packages: npm:zod@^3, npm:axios@^1; node: built-ins are always available.`
	if err == nil || err.Error() != want {
		t.Errorf("error\n  %v\nwant\n  %s", err, want)
	}
	// Very long hostile input is cut in the message, and quoted.
	long := "npm:zod\n" + strings.Repeat("\x1b[31m", 200)
	_, err = a.Check(long)
	if err == nil || len(err.Error()) > 400 || !strings.Contains(err.Error(), `"npm:zod\n`) {
		t.Errorf("error for long input: %v", err)
	}
}

// A bare name that is a Node built-in maps to the admin's package when the
// admin allowlisted a package of that name.
func TestCheckBareBuiltinNameAllowlisted(t *testing.T) {
	a := mustParse(t, "npm:events@3")
	r, err := a.Check("events")
	if err != nil || r.Specifier != "npm:events@3" {
		t.Errorf("Check(events) = %+v, %v", r, err)
	}
	if r, err := a.Check("node:events"); err != nil || r.Kind != KindBuiltin {
		t.Errorf("Check(node:events) = %+v, %v", r, err)
	}
}

func TestCheckConcurrent(t *testing.T) {
	a := mustParse(t, testList)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if _, err := a.Check("npm:zod/v4"); err != nil {
					t.Error(err)
					return
				}
				if _, err := a.Check("npm:zod@^2"); err == nil {
					t.Error("accepted npm:zod@^2")
					return
				}
				_, _ = a.ImportMap()
				_ = a.Description()
			}
		}()
	}
	wg.Wait()
}
