#!/usr/bin/env bash
# Fetches AppArmor 4.1's apparmor_parser (Debian 13 trixie's apparmor package, the parser
# generation Ubuntu >= 23.10 ships: it knows the `userns,` rule that Debian 12's 3.0 does not)
# and the glibc it needs (trixie's libc6: the parser wants glibc >= 2.38), checks both .debs
# against the sha256 pinned here (from trixie's Packages index, whose InRelease apt verified),
# extracts them under $1 (default .build/apparmor) and writes $1/apparmor_parser: a wrapper that
# runs the parser through trixie's own loader and libraries, with the package's profile base and
# policy features (no parser.conf: the host's, if any, is for the host's parser). Only the test of packaging/apparmor/conductor uses it; nothing is installed on the host.
# The mirror is DEBIAN_MIRROR when set, else https://deb.debian.org/debian; the hashes decide.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/.build/apparmor}
mirror=${DEBIAN_MIRROR:-https://deb.debian.org/debian}

# pool file, sha256 (trixie main, amd64)
debs=(
  "pool/main/a/apparmor/apparmor_4.1.0-1_amd64.deb a08bf026cde3895f76d27cb5f9ba3d31d0ecf8b5b00cab9b70edaa7473d4b0a1"
  "pool/main/g/glibc/libc6_2.41-12+deb13u5_amd64.deb b59b0625cd1a791375d40dab23a4d5d3d0641e3d0a773501becdc3725b7f99cf"
)

if [ "$(uname -m)" != x86_64 ]; then
  echo "fetch-apparmor: only x86_64 .debs are pinned (this is $(uname -m)); the AppArmor profile test reports it cannot run" >&2
  exit 0
fi
stamp="$out/pinned"
want=$(printf '%s\n' "${debs[@]}")
if [ -x "$out/apparmor_parser" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root"
for d in "${debs[@]}"; do
  read -r file sum <<<"$d"
  url="$mirror/$file"
  if ! curl -fsSL --retry 3 -o "$work/pkg.deb" "$url"; then
    echo "fetch-apparmor: cannot fetch $url (the pinned file may have left the pool after a point release:" \
      "pin the current one and its sha256 from trixie's Packages index in scripts/fetch-apparmor.sh)" >&2
    exit 1
  fi
  got=$(sha256sum "$work/pkg.deb" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then
    echo "fetch-apparmor: $url has sha256 $got, pinned $sum: refusing it" >&2
    exit 1
  fi
  dpkg-deb -x "$work/pkg.deb" "$work/root"
done
lib=usr/lib/x86_64-linux-gnu
for f in "$lib/ld-linux-x86-64.so.2" usr/sbin/apparmor_parser etc/apparmor.d/abi/4.0 etc/apparmor.d/tunables/global usr/share/apparmor-features/features; do
  [ -e "$work/root/$f" ] || { echo "fetch-apparmor: the extracted packages lack $f" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out"
mv "$work/root" "$out/root"
cat > "$out/apparmor_parser" <<WRAP
#!/bin/sh
# AppArmor 4.1's parser from trixie's packages (scripts/fetch-apparmor.sh), with their glibc.
r="\$(dirname "\$0")/root"
exec "\$r/$lib/ld-linux-x86-64.so.2" --library-path "\$r/$lib" "\$r/usr/sbin/apparmor_parser" \\
  --config-file /dev/null --policy-features "\$r/usr/share/apparmor-features/features" --base "\$r/etc/apparmor.d" "\$@"
WRAP
chmod 0755 "$out/apparmor_parser"
printf '%s\n' "$want" > "$stamp"
echo "fetch-apparmor: apparmor_parser 4.1 at $out/apparmor_parser (sha256 of both .debs verified)"
