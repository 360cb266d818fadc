package rootfs

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixtures builds small ELF objects with gcc so search-order rules can be exercised:
//
//	lib/libcdta.so.1     needs libcdtb.so.1, DT_RUNPATH <dir>/lib2
//	lib2/libcdtb.so.1
//	lib3/libcdtb.so.1    a second copy, reachable only through a DT_RPATH
//	plain/libcdtn.so.1   needs libcdtb.so.1, no search path of its own
//	bad/libcdta.so.1     a copy of lib/libcdta.so.1 marked as AArch64: the loader skips it
//	junk/libcdta.so.1    not ELF: the loader gives up
//	conf/libcdtc.so.1    reachable only through an ld.so.conf file
//	bin/runpath          DT_RUNPATH $ORIGIN/../bad:$ORIGIN/../lib, needs libcdta.so.1
//	bin/broken           DT_RUNPATH $ORIGIN/../junk:$ORIGIN/../lib, needs libcdta.so.1
//	bin/rpath            DT_RPATH <dir>/lib3, needs libcdtn.so.1 (whose libcdtb comes from the RPATH chain)
//	bin/conf             needs libcdtc.so.1
type fixtures struct{ dir string }

func gccFixtures(t *testing.T) fixtures {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcc is needed to build ELF fixtures")
		}
		t.Skip("gcc not installed; search-order fixtures cannot be built")
	}
	dir := t.TempDir()
	for _, d := range []string{"lib", "lib2", "lib3", "plain", "bad", "junk", "conf", "bin", "src"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := func(name, body string) string {
		p := filepath.Join(dir, "src", name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gcc := func(args ...string) {
		if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %q: %v\n%s", args, err, out)
		}
	}
	p := func(rel string) string { return filepath.Join(dir, rel) }
	b := src("b.c", "int cdtb(void){return 2;}\n")
	gcc("-shared", "-fPIC", "-Wl,-soname,libcdtb.so.1", "-o", p("lib2/libcdtb.so.1"), b)
	gcc("-shared", "-fPIC", "-Wl,-soname,libcdtb.so.1", "-o", p("lib3/libcdtb.so.1"), b)
	a := src("a.c", "int cdtb(void); int cdta(void){return cdtb()+1;}\n")
	gcc("-shared", "-fPIC", "-Wl,-soname,libcdta.so.1", "-o", p("lib/libcdta.so.1"), a,
		"-L"+p("lib2"), "-l:libcdtb.so.1", "-Wl,--enable-new-dtags,-rpath,"+p("lib2"))
	n := src("n.c", "int cdtb(void); int cdtn(void){return cdtb()+3;}\n")
	gcc("-shared", "-fPIC", "-Wl,-soname,libcdtn.so.1", "-o", p("plain/libcdtn.so.1"), n, "-L"+p("lib3"), "-l:libcdtb.so.1")
	c := src("c.c", "int cdtc(void){return 4;}\n")
	gcc("-shared", "-fPIC", "-Wl,-soname,libcdtc.so.1", "-o", p("conf/libcdtc.so.1"), c)
	other, err := os.ReadFile(p("lib/libcdta.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(other[18:], uint16(elf.EM_AARCH64)) // e_machine
	if err := os.WriteFile(p("bad/libcdta.so.1"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("junk/libcdta.so.1"), []byte("INPUT(nothing)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gcc("-o", p("bin/runpath"), src("m1.c", "int cdta(void); int main(void){return cdta();}\n"),
		"-L"+p("lib"), "-l:libcdta.so.1", "-Wl,-rpath-link,"+p("lib2"),
		"-Wl,--enable-new-dtags,-rpath,$ORIGIN/../bad:$ORIGIN/../lib")
	gcc("-o", p("bin/broken"), p("src/m1.c"),
		"-L"+p("lib"), "-l:libcdta.so.1", "-Wl,-rpath-link,"+p("lib2"),
		"-Wl,--enable-new-dtags,-rpath,$ORIGIN/../junk:$ORIGIN/../lib")
	gcc("-o", p("bin/rpath"), src("m2.c", "int cdtn(void); int main(void){return cdtn();}\n"),
		"-L"+p("plain"), "-l:libcdtn.so.1", "-Wl,-rpath-link,"+p("lib3"),
		"-Wl,--disable-new-dtags,-rpath,"+p("lib3")+":"+p("plain"))
	gcc("-o", p("bin/conf"), src("m3.c", "int cdtc(void); int main(void){return cdtc();}\n"),
		"-L"+p("conf"), "-l:libcdtc.so.1")
	return fixtures{dir}
}

func (f fixtures) path(rel string) string { return filepath.Join(f.dir, rel) }

// TestResolverFixtures builds the gcc fixtures once and runs the resolver checks on them.
func TestResolverFixtures(t *testing.T) {
	t.Parallel()
	fx := gccFixtures(t)
	t.Run("search order", func(t *testing.T) { testSearchOrder(t, fx) })
	t.Run("plan rejects libraries unreachable in the root", func(t *testing.T) { testPlanRejectsUnreachable(t, fx) })
}

func testSearchOrder(t *testing.T, fx fixtures) {
	conf := fx.path("ld.so.conf")
	if err := os.MkdirAll(fx.path("ld.so.conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("include ld.so.conf.d/*.conf\n/lib/x86_64-linux-gnu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fx.path("ld.so.conf.d/x.conf"), []byte("# test\n"+fx.path("conf")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &resolver{confPath: conf, defaultDirs: defaultLibDirs()}

	cases := []struct {
		binary string
		want   map[string]library // by DT_NEEDED name: Path, Via, ExeOrigin
	}{
		{"bin/runpath", map[string]library{
			// bad/ comes first in DT_RUNPATH but holds another machine's ELF: skipped.
			"libcdta.so.1": {Path: fx.path("lib/libcdta.so.1"), Via: viaRunpath, ExeOrigin: true},
			// libcdta's own DT_RUNPATH; the executable's DT_RUNPATH does not apply to it.
			"libcdtb.so.1": {Path: fx.path("lib2/libcdtb.so.1"), Via: viaRunpath},
			"libc.so.6":    {Via: viaConf},
		}},
		{"bin/rpath", map[string]library{
			"libcdtn.so.1": {Path: fx.path("plain/libcdtn.so.1"), Via: viaRpath},
			// libcdtn has no search path: the executable's DT_RPATH (loader chain) applies.
			"libcdtb.so.1": {Path: fx.path("lib3/libcdtb.so.1"), Via: viaRpath},
		}},
		{"bin/conf", map[string]library{
			"libcdtc.so.1": {Path: fx.path("conf/libcdtc.so.1"), Via: viaConf},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.binary, func(t *testing.T) {
			libs, err := r.closure(fx.path(tc.binary))
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]library{}
			for _, l := range libs {
				byName[l.Name] = l
			}
			for name, want := range tc.want {
				got, ok := byName[name]
				if !ok {
					t.Errorf("%s missing from closure %+v", name, libs)
					continue
				}
				if want.Path != "" && got.Path != want.Path {
					t.Errorf("%s: path %s, want %s", name, got.Path, want.Path)
				}
				if got.Via != want.Via || got.ExeOrigin != want.ExeOrigin {
					t.Errorf("%s: via %d exeOrigin %v, want %d %v", name, got.Via, got.ExeOrigin, want.Via, want.ExeOrigin)
				}
			}
			if tc.binary != "bin/conf" { // the real ld.so.cache does not know conf/
				var got []string
				for _, l := range libs {
					got = append(got, realPath(t, l.Path))
				}
				slices.Sort(got)
				if want := lddPaths(t, fx.path(tc.binary)); !slices.Equal(got, want) {
					t.Errorf("closure %q, ldd %q", got, want)
				}
			}
		})
	}

	// A non-ELF file on the search path stops the loader; ldd fails the same way.
	_, err := r.closure(fx.path("bin/broken"))
	if !errors.Is(err, ErrNotELF) || !strings.Contains(err.Error(), fx.path("junk/libcdta.so.1")) {
		t.Errorf("bin/broken: want ErrNotELF naming junk/libcdta.so.1, got %v", err)
	}
	if out, err := exec.Command("ldd", fx.path("bin/broken")).CombinedOutput(); err == nil {
		t.Errorf("ldd accepted bin/broken, so the loader does not stop at a non-ELF file:\n%s", out)
	}

	// Without the ld.so.conf entry libcdtc cannot be found, and the error says where it looked.
	_, err = (&resolver{defaultDirs: defaultLibDirs()}).closure(fx.path("bin/conf"))
	var mle *MissingLibraryError
	if !errors.As(err, &mle) || mle.Name != "libcdtc.so.1" || !slices.Contains(mle.Dirs, "/usr/lib") {
		t.Errorf("want MissingLibraryError for libcdtc.so.1 listing /usr/lib, got %v", err)
	}
}

func testPlanRejectsUnreachable(t *testing.T, fx fixtures) {
	conf := fx.path("ld.so.conf.2")
	if err := os.WriteFile(conf, []byte(fx.path("conf")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &resolver{confPath: conf, defaultDirs: defaultLibDirs()}
	cases := []struct {
		binary, mention string
	}{
		{"bin/conf", "no ld.so.cache"},
		{"bin/runpath", "$ORIGIN"},
	}
	for _, tc := range cases {
		t.Run(tc.binary, func(t *testing.T) {
			dc := loadDigests(filepath.Join(t.TempDir(), "d.json"))
			_, err := newPlan(context.Background(), Options{Deno: fx.path(tc.binary)}, r, dc)
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("newPlan(%s) error %v, want one mentioning %q", tc.binary, err, tc.mention)
			}
		})
	}
	// bin/rpath uses absolute DT_RPATH entries: paths are preserved in the root, so it plans.
	dc := loadDigests(filepath.Join(t.TempDir(), "d.json"))
	p, err := newPlan(context.Background(), Options{Deno: fx.path("bin/rpath")}, r, dc)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.entries[fx.path("lib3/libcdtb.so.1")]; !ok {
		t.Errorf("plan lacks %s", fx.path("lib3/libcdtb.so.1"))
	}
}

func TestLdConfDirs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(rel, content string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("d/b.conf", "/b1 /b2=libc6\n# /commented\n/a\n")
	write("d/a.conf", "/a   # trailing comment\nhwcap 0 nosegneg\n")
	write("d/ignored.txt", "/ignored\n")
	write("loop.conf", "include loop.conf\n")
	cases := []struct {
		name, conf string
		want       []string
		wantErr    bool
	}{
		{"includes in sorted order, deduplicated", write("main.conf", "/first\ninclude d/*.conf\nrelative/dir\n/last\n"),
			[]string{"/first", "/a", "/b1", "/b2", "/last"}, false},
		{"missing file", filepath.Join(dir, "none.conf"), nil, false},
		{"include cycle", filepath.Join(dir, "loop.conf"), nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ldConfDirs(tc.conf)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
