// Package deps is the admin's package allowlist
// (MCP_CONDUCTOR_ALLOWED_PACKAGES): it parses it, checks every package the
// model asks for, and produces the import map and the install programs that
// make the admin's versions the only ones code can load, and it keeps the
// per-allowlist views of the dependency cache that make the allowlist hold
// at run time too.
//
// The admin is trusted; the model is not. The model names packages two ways:
// the tool's dependencies array and the npm:/jsr:/bare import specifiers in
// its code (extracted by the caller with a parser). Each goes through
// Allowlist.Check, which either resolves it to one of the admin's packages
// (or to a node: built-in) or rejects it with a *CheckError that wraps one
// of the sentinel errors and says what was wrong and what is allowed.
//
// # The allowlist
//
// Comma-separated entries, no spaces:
//
//	npm:axios@^1,npm:zod@^3,npm:@scope/pkg@1.2.3,jsr:@std/path@^1
//
// Each entry is npm:NAME@VERSION or jsr:@SCOPE/NAME@VERSION. The version is
// required (admins pin), a subpath is not allowed (an entry names a whole
// package), each package appears once, and an npm and a jsr package may not
// share a name (a bare import would be ambiguous). The empty string is the
// empty allowlist; anything else is parsed strictly, with no trimming.
//
// # Grammar (admin entries and model specifiers alike)
//
//   - npm names: lower-case ASCII letters, digits and - . _ ~, not starting
//     with . or _, optionally scoped (@scope/name, same rules for both
//     parts), at most 214 bytes; node_modules and favicon.ico are reserved.
//     Legacy npm packages with upper-case names are not supported.
//   - jsr names: always @scope/name, each part lower-case ASCII letters,
//     digits and -, not starting with -.
//   - VERSION: an optional ^ or ~, then MAJOR[.MINOR[.PATCH[-PRERELEASE]]],
//     where MINOR and PATCH may be a wildcard x, X or * (and after a
//     wildcard only wildcards follow); numbers have no leading zeros;
//     PRERELEASE is dot-separated [0-9A-Za-z-] identifiers and needs a full
//     MAJOR.MINOR.PATCH. So 1.2.3, ^1, ~1.2, 1.x, ^1.2.0-beta.1 are versions;
//     *, x, latest and other dist-tags are not (they pin nothing).
//     Comparators (>=1, <2, =1.2.3) and unions (^1||^2) are refused: deno 2.9
//     itself refuses them inside an npm: specifier ("Invalid package
//     specifier"). Build metadata (+build) is refused: + is not in the
//     specifier alphabet.
//   - subpath: /SEGMENT[/SEGMENT...], each segment ASCII letters, digits and
//     . _ ~ -, not empty and not starting with "." (so no "." or ".."). In a
//     specifier it follows the version: npm:zod@^3/v4, jsr:@std/path@^1/posix,
//     npm:@scope/pkg/sub.
//   - A specifier is at most MaxSpecifierLen bytes and uses only ASCII
//     letters, digits and - . _ ~ ^ * / @ :. Everything else is refused:
//     whitespace, control bytes, NUL, backslashes, percent-encoding, ? and #,
//     quotes, non-ASCII (Unicode lookalikes) and the rest.
//
// # Check
//
// Check classifies, in this order: empty or too long (ErrMalformed); a URL
// scheme other than npm:, jsr: and node: — http:, https:, file:, data:,
// blob: and any other — or a protocol-relative //host (ErrRemote); control
// bytes, NUL, whitespace, backslash, % or non-ASCII (ErrMalformed); any
// other character outside the specifier alphabet, such as ? # ; ' " $ `
// (ErrMalformed); a node_modules
// path segment anywhere (ErrRemote: that is a file path, not a package);
// ./, ../, /, . and .. (ErrRelative: the sandbox has no module files);
// then by scheme:
//
//   - node:NAME: a Node built-in deno 2.9 provides (the list of node:module's
//     builtinModules): KindBuiltin, no package. Other names: ErrNotAllowed.
//   - npm:/jsr: PACKAGE[@VERSION][SUBPATH]: malformed parts are ErrMalformed
//     (including an upper-case scheme or name, npm:/zod and npm://zod); a
//     package not on the list is ErrNotAllowed; a version that is not
//     textually equal to the admin's is ErrVersionMismatch (no range
//     arithmetic: ^3.0.0 is not ^3). The admin's version always wins: the
//     result names the admin's package, and Resolved.Specifier is the
//     canonical specifier with the admin's version and the subpath.
//   - bare PACKAGE[SUBPATH] (zod, zod/v4, @std/path/posix): looked up by name
//     in both registries; bare specifiers carry no version (zod@3 is
//     ErrMalformed). Bare Node built-in names (fs, path) are ErrNotAllowed
//     with a pointer to node:fs, unless the admin allowlisted a package of
//     that name.
//
// # Pinning at run time: the import map
//
// At run time deno runs with --cached-only --no-remote --no-config and a
// read-only DENO_DIR holding only the admin's packages and their
// dependencies (the cache view, below). A specifier without
// a version (npm:zod) would make deno pick the newest version in the cached
// registry metadata, which need not be the cached tarball. ImportMap maps,
// for each package (npm: shown; jsr: alike):
//
//	"npm:zod"   -> "npm:zod@^3"    the versionless specifier
//	"npm:/zod"  -> "npm:zod@^3"    the slash form deno also accepts
//	"zod"       -> "npm:zod@^3"    the bare name
//	"zod/"      -> "npm:/zod@^3/"  bare subpaths (zod/v4 -> npm:/zod@^3/v4)
//
// Checked with deno 2.9.6: exact keys with the npm: scheme work (the key is
// URL-normalised, so NPM:zod also matches). Prefix keys (ending in /) never
// match an npm:/jsr: specifier, because import maps apply prefix keys only
// to bare specifiers and URLs of special schemes (http, https, file, ...);
// and a prefix target must be a hierarchical URL, hence npm:/zod@^3/ rather
// than npm:zod@^3/ for bare subpaths (the latter fails with "could not be
// URL-parsed relative to the URL prefix"). So a versionless npm: or jsr:
// subpath such as npm:zod/v4 is not covered by a static map: ImportMapFor
// adds an exact key for each one found in the code, or the caller may
// rewrite the specifier in the module to Resolved.Specifier.
//
// # What Check cannot see
//
// Check sees the specifiers the parser finds. Code that imports at run time
// — eval('import("npm:x@1")'), new Function, a computed specifier, a path
// that climbs out of an allowed package (deno resolves
// npm:zod@^3/../other/1.0.0/x to a file of another cached package, checked
// with deno 2.9.6) — is seen only by deno. The boundary there is the cache
// view: the sandbox's DENO_DIR holds only this allowlist's packages, and
// deno runs --cached-only --no-remote, so nothing else can load, whatever
// was ever installed for another allowlist. What stays reachable is
// everything in the view: the allowed packages and their transitive
// dependencies (at the versions installed), by any specifier, including a
// dependency's exact version (npm:is-number@6.0.0 under npm:is-odd@^3). The
// static map still pins the exact forms npm:zod, npm:/zod, zod and zod/...;
// deno refuses bare-prefix paths that climb out ("backtracks above its
// prefix").
//
// # The cache view
//
// The dependency cache is a set of views, one per canonical allowlist
// (Views, under <data>/deps). A view is named by ViewKey.Name: the sha256
// (first 128 bits, hex) over the sorted admin entries, the npm registry URL
// and the deno version, and, when there are pypi: entries, the Python
// interpreter (version and path) and the pip index, so the same packages in
// another order share a view and any other change gets a new, empty one
// (its packages are downloaded again). Layout:
//
//	<data>/deps/.lock                  flock: shared to open a view, exclusive to remove one
//	<data>/deps/<name>/deno-dir/       the view's DENO_DIR, mounted at the root's /deno-dir
//	<data>/deps/<name>/pypi/           the pypi: packages (pip --target), mounted at config.PyPackagesDir
//	<data>/deps/<name>/view.json       what it is for: entries, registry, deno, python, index
//	<data>/deps/<name>/installed/      one marker per package whose install succeeded
//	<data>/deps/<name>/hold            a process using the view holds a shared flock on it
//	<data>/deps/.trash-*               a view being removed
//
// Installs (package install) write only into the current view (an install
// sandbox mounts its deno-dir, or for pip its pypi directory, writable, and
// nothing else of the cache); runs mount both read-only (pypi/ without noexec, so compiled
// extension modules load). Commands that install (serve,
// deps install) create the view (Open); the others (exec, doctor) only open
// one that exists (OpenExisting). The empty allowlist has no view, and
// neither has an allowlist nothing was installed for: then nothing is
// mounted and the sandbox's DENO_DIR is the root's empty, read-only
// directory.
//
// Removal: Prune never removes a view some process holds open (serve, exec,
// deps install and doctor hold theirs for their lifetime), so two servers
// sharing a data dir with different allowlists never remove each other's
// view; views are opened under the shared lock and removed under the
// exclusive one, so none is opened while it is being removed, and a removal
// renames the view aside first, so a half-removed view is never found under
// its name. `conductor serve` and `conductor deps install` prune after
// installing, keeping the current view and the most recently used other
// one; `conductor deps prune` removes every unused view but the current one.
//
// Migration: before views, DENO_DIR was <data>/deps itself. That content
// (npm/, .installed/, deno's sqlite caches, ...) is never mounted any more;
// List reports it and `conductor deps prune` (Prune with Legacy) removes it.
// Stop conductor binaries of the old layout before pruning: they mount it.
//
// # Installing
//
// InstallProgram(p) is a one-line module importing p's specifier; `deno
// cache` over it (see CacheArgs) fetches p and its dependencies into
// DENO_DIR without running any of their code.
//
// The pypi: packages are installed together, by one pip run
// (PipInstallArgs: one resolver run, so their dependencies agree) into the
// view's pypi directory, wheels only (--only-binary=:all:): installing a
// wheel unpacks files and runs none of the package's code, while a source
// distribution would run its build. InstalledDists reads back what is there
// from each *.dist-info/METADATA.
package deps
