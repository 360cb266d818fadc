#!/usr/bin/env bash
# Fetches deno from the npm registry (package @deno/linux-<arch>-glibc), verifies the tarball's
# sha512 against the integrity the registry publishes, and installs the binary at $1 (default
# .build/deno). The version is pinned in one place: the DENO_VERSION file at the repo root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/.build/deno}
version=${DENO_VERSION:-$(tr -d ' \n' < "$top/DENO_VERSION")}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "fetch-deno: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
pkg="@deno/linux-${arch}-glibc@${version}"

if [ -x "$out" ] && "$out" --version 2>/dev/null | head -1 | grep -qx "deno ${version} .*"; then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-deno: npm is required (apt-get install -y npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
want=$(npm view "$pkg" dist.integrity 2>/dev/null)
case "$want" in
  sha512-*) ;;
  *) echo "fetch-deno: registry published no sha512 integrity for $pkg (got '$want')" >&2; exit 1 ;;
esac
(cd "$work" && npm pack --silent "$pkg" >/dev/null 2>&1)
tgz=$(ls "$work"/*.tgz)
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$want" ]; then
  echo "fetch-deno: integrity mismatch for $pkg: registry says $want, tarball is $got" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$work" package/deno
mkdir -p "$(dirname "$out")"
install -m 0755 "$work/package/deno" "$out.tmp"
mv -f "$out.tmp" "$out"
echo "fetch-deno: installed $pkg at $out (integrity $want verified)"
