package deps

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// PipInstallArgs are pip's arguments (after the command that runs pip) to install pkgs, with
// their dependencies, from the index into target, in one resolver run, so the set is
// consistent: wheels only (--only-binary=:all:, so no package's setup.py or build backend ever
// runs), no cache, no version check, no prompts, no configuration files or PIP_* variables
// (--isolated); cert, when not "", is a CA bundle file pip verifies the index with.
func PipInstallArgs(target, index, cert string, pkgs []Package) []string {
	args := []string{"install", "--isolated", "--target", target, "--only-binary=:all:", "--no-cache-dir",
		"--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--no-warn-script-location",
		"--index-url", index}
	if cert != "" {
		args = append(args, "--cert", cert)
	}
	for _, p := range pkgs {
		args = append(args, p.PipRequirement())
	}
	return args
}

// Dist is an installed distribution, as its *.dist-info/METADATA names it.
type Dist struct{ Name, Version string }

// InstalledDists lists the distributions installed in a pip --target directory (dir/*.dist-info),
// sorted by normalised name; a missing directory has none.
func InstalledDists(dir string) []Dist {
	infos, _ := filepath.Glob(filepath.Join(dir, "*.dist-info"))
	var out []Dist
	for _, info := range infos {
		if d, ok := readMetadata(filepath.Join(info, "METADATA")); ok {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Dist) int { return strings.Compare(NormalizePyName(a.Name), NormalizePyName(b.Name)) })
	return out
}

// readMetadata reads Name and Version from a core-metadata file's header (RFC 822 style: the
// header ends at the first empty line).
func readMetadata(file string) (Dist, bool) {
	f, err := os.Open(file)
	if err != nil {
		return Dist{}, false
	}
	defer f.Close()
	var d Dist
	sc := bufio.NewScanner(f)
	for sc.Scan() && sc.Text() != "" {
		k, v, ok := strings.Cut(sc.Text(), ":")
		switch {
		case !ok:
		case strings.EqualFold(k, "Name"):
			d.Name = strings.TrimSpace(v)
		case strings.EqualFold(k, "Version"):
			d.Version = strings.TrimSpace(v)
		}
	}
	return d, d.Name != "" && d.Version != ""
}

// FindDist returns the distribution of p's name among ds.
func FindDist(ds []Dist, p Package) (Dist, bool) {
	for _, d := range ds {
		if NormalizePyName(d.Name) == p.Name {
			return d, true
		}
	}
	return Dist{}, false
}
