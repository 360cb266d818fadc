#!/usr/bin/env bash
# The rootless phase of `make test`: runs the sandbox and cmd test binaries as
# an unprivileged user, first with no delegated cgroups (conductor must refuse
# to run, or run degraded only when allowed), then with a delegated subtree
# (children of this process's own memory and pids cgroups, chowned to the
# user: the one-time root step an admin does on cgroup v1 hosts).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "test-rootless: FAIL: must run as root on CI (it creates the unprivileged test user)" >&2
    exit 1
  fi
  echo "test-rootless: skipped: run as root to create the unprivileged test user (CI does)"
  exit 0
fi
user=conductor-ci
id -u "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
uid=$(id -u "$user"); gid=$(id -g "$user")

work=$(mktemp -d /tmp/conductor-rootless-XXXXXX)
chmod 0755 "$work"
deleg="conductor-ci-deleg-$$"
delegated_dirs=()
cleanup() {
  for d in "${delegated_dirs[@]}"; do
    # children first (tests remove their own; this catches a failed run)
    find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    rmdir "$d" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

go test -c -tags seccomp -o "$work/sandbox.test" ./sandbox
cp .build/deno "$work/deno"
chmod 0755 "$work"/*

# Like a login user: its own group and "users" (gid 100) as supplementary
# groups, which a rootless sandbox cannot drop (the escape suite checks
# that it adds none).
as_user() {
  setpriv --reuid="$uid" --regid="$gid" --groups="$gid,100" \
    env -i PATH=/usr/bin:/bin HOME="$work" XDG_RUNTIME_DIR="$work" CI="${CI:-}" \
    CONDUCTOR_DENO="$work/deno" "$@"
}

echo "test-rootless: as $user (uid $uid), no delegated cgroups: must fail closed"
(cd "$work" && as_user CONDUCTOR_ROOTLESS_PHASE=undelegated ./sandbox.test -test.count=1 -test.run 'TestRootless' -test.v) | tail -20

# Delegate: a child of our own cgroup in each v1 hierarchy that carries a limit.
mode=v1
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && mode=v2
if [ "$mode" = v1 ]; then
  for c in memory pids; do
    own=$(awk -F: -v c="$c" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup)
    d="/sys/fs/cgroup/$c${own%/}/$deleg"
    mkdir "$d"
    delegated_dirs+=("$d")
    chown -R "$uid:$gid" "$d"
  done
else
  own=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
  d="/sys/fs/cgroup${own%/}/$deleg"
  mkdir "$d"
  delegated_dirs+=("$d")
  chown -R "$uid:$gid" "$d"
fi

echo "test-rootless: as $user with delegated cgroup subtree $deleg: the sandbox suite"
if ! (cd "$work" && as_user CONDUCTOR_ROOTLESS_PHASE=delegated MCP_CONDUCTOR_CGROUP_PARENT="$deleg" \
  ./sandbox.test -test.count=1 -test.timeout 15m) > "$work/rootless.log" 2>&1; then
  echo "test-rootless: FAILED as $user:"
  grep -v '^\s*$' "$work/rootless.log" | head -300
  exit 1
fi
(cd "$work" && as_user CONDUCTOR_ROOTLESS_PHASE=delegated MCP_CONDUCTOR_CGROUP_PARENT="$deleg" \
  ./sandbox.test -test.count=1 -test.list '.*') | sed 's/^/  passed: /'
echo "test-rootless: passed"
