#!/usr/bin/env bash
# Fetches TypeScript's compiler (the npm registry's typescript tarball, over plain HTTPS: no npm
# needed), checks the tarball against the sha512 pinned in the repo (TYPESCRIPT_SHA512, next to
# TYPESCRIPT_VERSION) and installs into $1 (default .build/typescript) what the type checker's
# sandbox mounts: lib/typescript.js (the compiler and its API), lib/lib.*.d.ts (the language's
# declarations), and deno's own declarations (lib.deno.d.ts, from `$DENO types`: Deno.* and the
# web APIs). The registry is NPM_CONFIG_REGISTRY when set (a mirror), else
# https://registry.npmjs.org; either way the pinned hash decides.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/.build/typescript}
deno=${DENO_BIN:-$top/.build/deno}
version=$(tr -d ' \n' < "$top/TYPESCRIPT_VERSION")
want=$(grep -v '^#' "$top/TYPESCRIPT_SHA512" | tr -d ' \n')
stamp="$version $want $("$deno" --version | head -1)"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$top/scripts/npm-tarball.sh"
fetch_tarball fetch-typescript "typescript/-/typescript-${version}.tgz" "$want" "$work/ts.tgz"
tar -xzf "$work/ts.tgz" -C "$work" --wildcards 'package/lib/typescript.js' 'package/lib/lib.*.d.ts' 'package/LICENSE.txt'
mkdir -p "$work/out"
cp "$work"/package/lib/typescript.js "$work"/package/lib/lib.*.d.ts "$work"/package/LICENSE.txt "$work/out/"
"$deno" types > "$work/out/lib.deno.d.ts"
echo "$stamp" > "$work/out/.stamp"
chmod -R a+rX "$work/out"
rm -rf "$out.tmp" && mkdir -p "$(dirname "$out")" && cp -a "$work/out" "$out.tmp"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "fetch-typescript: installed typescript $version and deno's declarations at $out (sha512 pinned in TYPESCRIPT_SHA512 verified)"
