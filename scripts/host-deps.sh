#!/usr/bin/env bash
# Checks (and, as root with apt, installs) what the README's two commands need on the host:
#   scripts/host-deps.sh run    make build / make run: Go, a C compiler, pkg-config, libseccomp's
#                               headers, curl and openssl (deno's download and its check)
#   scripts/host-deps.sh test   make test: the above, plus npm (the MCP inspector and reference
#                               servers the end-to-end tests drive), Python with PyYAML and numpy,
#                               the tools the rootless and quota tests use
# Not root, or no apt: prints the exact command to run and stops. Go is never installed here:
# the script says which version go.mod needs and where to get it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-run}

want_go=$(awk '$1 == "go" { print $2; exit }' "$top/go.mod")
go_bin=$(command -v go || true)
[ -n "$go_bin" ] || { [ -x /usr/local/go/bin/go ] && go_bin=/usr/local/go/bin/go; }
if [ -z "$go_bin" ]; then
  echo "host-deps: Go $want_go or newer is needed (go.mod); get it from https://go.dev/dl/ (e.g. go$want_go.linux-amd64.tar.gz into /usr/local, then PATH=\$PATH:/usr/local/go/bin)" >&2
  exit 1
fi
have_go=$("$go_bin" env GOVERSION 2>/dev/null | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$want_go" "$have_go" | sort -V | head -1)" != "$want_go" ]; then
  echo "host-deps: $go_bin is Go $have_go; go.mod needs $want_go or newer (GOTOOLCHAIN=auto fetches it if the Go module proxy is reachable; else https://go.dev/dl/)" >&2
fi

pkgs=(gcc make pkg-config libseccomp-dev git curl openssl ca-certificates)
if [ "$mode" = test ]; then
  pkgs+=(npm python3 python3-pip python3-yaml python3-numpy util-linux passwd e2fsprogs xfsprogs systemd)
fi
need=()
for p in "${pkgs[@]}"; do
  # npm may come from elsewhere than apt (nodesource, nvm): the command is what counts.
  [ "$p" = npm ] && command -v npm >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "host-deps: not a Debian/Ubuntu host; install the equivalents of: ${need[*]}" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "host-deps: missing packages; run as root:  apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
echo "host-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null
