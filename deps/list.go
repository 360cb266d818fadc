package deps

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// PackageState is one allowlist entry as a view holds it.
type PackageState struct {
	Package   Package
	Installed bool
	// Versions are the versions of the package the view's cache holds: the one the admin's
	// range resolved to (npm: every version of that name in the deno cache, which may include
	// one a dependency pulled in; pypi: the installed distribution's). Empty when not installed.
	Versions []string
}

// States lists every entry of k's allowlist, in the admin's order, with what the view holds
// of it, without creating or holding the view.
func (vs *Views) States(k ViewKey) []PackageState {
	dir, installed, _ := vs.Inspect(k)
	var dists []Dist
	if len(k.Allowlist.PythonPackages()) > 0 {
		dists = InstalledDists(PyPackagesIn(dir))
	}
	var out []PackageState
	for _, p := range k.Allowlist.Packages() {
		st := PackageState{Package: p, Installed: slices.Contains(installed, p)}
		if st.Installed {
			if p.Registry == PyPI {
				if d, ok := FindDist(dists, p); ok {
					st.Versions = []string{d.Version}
				}
			} else if p.Registry == NPM {
				st.Versions = npmVersions(filepath.Join(dir, viewCacheDir), p.Name)
			}
		}
		out = append(out, st)
	}
	return out
}

// npmVersions lists the versions of the npm package name in a DENO_DIR (npm/<registry>/<name>/<version>).
func npmVersions(denoDir, name string) []string {
	regs, _ := os.ReadDir(filepath.Join(denoDir, "npm"))
	var out []string
	for _, r := range regs {
		if !r.IsDir() {
			continue
		}
		vers, _ := os.ReadDir(filepath.Join(denoDir, "npm", r.Name(), filepath.FromSlash(name)))
		for _, v := range vers {
			if v.IsDir() && !strings.HasPrefix(v.Name(), ".") && !slices.Contains(out, v.Name()) {
				out = append(out, v.Name())
			}
		}
	}
	slices.SortFunc(out, compareVersions)
	return out
}

// compareVersions orders dotted versions by their numeric parts (9.0.0 before 10.0.0), then as text.
func compareVersions(a, b string) int {
	as, bs := strings.FieldsFunc(a, notDigit), strings.FieldsFunc(b, notDigit)
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := cmp.Compare(len(as[i]), len(bs[i])); c != 0 {
			return c
		}
		if c := strings.Compare(as[i], bs[i]); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(len(as), len(bs)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func notDigit(r rune) bool { return r < '0' || r > '9' }

// String is the entry's state in a line: "installed: zod 3.23.8", "NOT installed".
func (s PackageState) String() string {
	if !s.Installed {
		return "NOT installed"
	}
	if len(s.Versions) == 0 {
		return "installed"
	}
	return "installed: " + s.Package.Name + " " + strings.Join(s.Versions, ", ")
}
