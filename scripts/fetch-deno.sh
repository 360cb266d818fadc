#!/usr/bin/env bash
# Fetches deno (the npm registry's @deno/linux-<arch>-glibc tarball, over plain HTTPS: no npm
# needed), checks the tarball against the sha512 pinned in the repo (DENO_SHA512, next to
# DENO_VERSION) and installs the binary at $1 (default .build/deno). The registry is
# NPM_CONFIG_REGISTRY when set (a mirror), else https://registry.npmjs.org; either way the
# pinned hash decides.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/.build/deno}
version=$(tr -d ' \n' < "$top/DENO_VERSION")
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "fetch-deno: unsupported architecture $(uname -m); install deno 2.x yourself and run make DENO=/path/to/deno" >&2; exit 1 ;;
esac

if [ -x "$out" ] && "$out" --version 2>/dev/null | head -1 | grep -qx "deno ${version} .*"; then
  exit 0
fi
want=$(awk -v a="$arch" '$1 == a { print $2 }' "$top/DENO_SHA512")
[ -n "$want" ] || { echo "fetch-deno: DENO_SHA512 has no sha512 for $arch" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$top/scripts/npm-tarball.sh"
fetch_tarball fetch-deno "@deno/linux-${arch}-glibc/-/linux-${arch}-glibc-${version}.tgz" "$want" "$work/deno.tgz"
tar -xzf "$work/deno.tgz" -C "$work" package/deno
mkdir -p "$(dirname "$out")"
install -m 0755 "$work/package/deno" "$out.tmp"
mv -f "$out.tmp" "$out"
echo "fetch-deno: installed deno $version ($arch) at $out (sha512 pinned in DENO_SHA512 verified)"
