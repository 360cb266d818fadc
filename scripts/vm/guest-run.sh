#!/usr/bin/env bash
# Runs inside the test VM (conductor-vm-test.service, as root, at boot; the VM
# powers off when it returns). Installs the payload, then runs the phases that
# /payload/config.sh lists, each but install with scripts/vm/phase.sh:
#   install  copy bin/conductor and its data directory (deno and the root built
#            on the host) to /opt/conductor, as an admin installs a build;
#            checks: the copied root verifies (doctor's rootfs check), doctor
#            in this undelegated service cgroup obtains its own transient
#            Delegate=yes scope through the system bus (and systemd collects it
#            when doctor exits), doctor refuses when MCP_CONDUCTOR_CGROUP_PARENT
#            names a cgroup holding other processes (this service's), naming
#            Delegate=yes, `conductor rootfs build` (a no-op when the copy is current)
#   a  root, each check a systemd service with Delegate=yes (README: Hosts)
#   b  root, MCP_CONDUCTOR_CGROUP_PARENT = an empty cgroup made here
#   c  an unprivileged user with lingering (its own systemd --user manager),
#      each check in `systemd-run --user --scope -p Delegate=yes`
#   d  desktop: a fresh unprivileged user with lingering (its systemd user
#      manager and user bus); a go-sdk client (cmd/conductor's
#      TestDesktopStdio) starts `conductor serve` over stdio from README's
#      Desktop config, from `systemd-run --user --scope` without Delegate (as
#      GNOME starts apps) and from runuser (outside the user manager's tree):
#      hello, oom, pids, nothing left; then without a user bus: the refusal
# Results go to /results (a 9p share of the host directory): host.txt,
# <phase>/{summary.tsv,status,*.log}, guest.log, and done when all ran.
set -uo pipefail
P=/payload
R=/results
exec > >(tee -a "$R/guest.log") 2>&1
# shellcheck source=/dev/null
. "$P/config.sh"
say() { echo "guest: $*"; }
elapsed() { echo $(($(date +%s) - $1)); }

{
  echo "kernel $(uname -r); $(systemctl --version | head -1); $(nproc) CPUs; $(awk '/^MemTotal:/ { print int($2 / 1024) " MiB" }' /proc/meminfo)"
  echo "/sys/fs/cgroup: $(stat -fc %T /sys/fs/cgroup)"
  echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
  echo "root subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
  echo "/proc/kcore: $([ -e /proc/kcore ] && echo present || echo absent)"
  echo "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
} > "$R/host.txt"
cat "$R/host.txt"

export CI=true VM_TEST_TIMEOUT CONDUCTOR_TEST_TIME_SCALE TESTS_DIR=/opt/conductor-tests
export CONDUCTOR_BIN=/opt/conductor/bin/conductor CONDUCTOR_DENO=/opt/conductor/.build/deno

collect() { # phase: copy its local results to the share
  mkdir -p "$R/$1"
  cp -a "/var/tmp/vm-out/$1/." "$R/$1/"
  sync
}

# Sandbox cgroups (conductor-<instance>-…) left anywhere after a phase; the
# server leaves (conductor-server) are conductor's own and stay.
leftovers() {
  find /sys/fs/cgroup -mindepth 1 -type d -name 'conductor-*' ! -name 'conductor-server' ! -name 'conductor-vm-*' 2>/dev/null
}

# record PHASE CHECK RESULT SECONDS DETAILS: a line of the phase's summary.
record() {
  printf '%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" >> "/var/tmp/vm-out/$1/summary.tsv"
  say "phase $1: $2 $3 ($4 s): $5"
  [ "$3" = pass ] || echo fail > "/var/tmp/vm-out/$1/status"
}

phase_install() {
  local t0 out=/var/tmp/vm-out/install rc line
  t0=$(date +%s)
  mkdir -p /opt/conductor /opt/conductor-tests
  cp -a "$P/conductor/." /opt/conductor/
  cp -a "$P/tests/." /opt/conductor-tests/
  chmod 0755 /opt/conductor /opt/conductor-tests
  record install copy pass "$(elapsed "$t0")" "$(du -sh /opt/conductor | cut -f1) to /opt/conductor"

  t0=$(date +%s)
  "$CONDUCTOR_BIN" doctor > "$out/doctor.log" 2>&1
  rc=$?
  line=$(grep -E '^\s+\[(ok  |FAIL)\] rootfs' "$out/doctor.log" | sed 's/^ *//')
  if [[ $line == "[ok  ]"* ]]; then
    record install copied-root pass "$(elapsed "$t0")" "$line"
  else
    record install copied-root fail "$(elapsed "$t0")" "${line:-no rootfs line in doctor.log}"
  fi
  # Root in this undelegated service: doctor (as serve) obtains conductor-<pid>.scope
  # with Delegate=yes through the system bus; systemd collects it when doctor exits.
  line=$(grep -E 'cgroup delegation' "$out/doctor.log" | sed 's/^ *//')
  if [ $rc -eq 0 ] && [[ $line == "[ok  ]"*"(Delegate=yes) obtained through the system bus"* ]]; then
    record install undelegated pass 0 "doctor in $(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup): $line"
  else
    record install undelegated fail 0 "doctor in an undelegated service cgroup: exit $rc, '${line:-no cgroup delegation line}'; want a scope obtained through the system bus"
  fi
  for i in $(seq 30); do
    units=$(systemctl list-units --all --no-legend --plain 'conductor-*.scope')
    [ -n "$units" ] || break
    sleep 1
  done
  if [ -z "$units" ] && [ -z "$(find /sys/fs/cgroup -type d -name 'conductor-[0-9]*.scope')" ]; then
    record install scope-collected pass 0 "no conductor scope unit or cgroup after doctor exited"
  else
    record install scope-collected fail 0 "left after doctor exited: ${units:-} $(find /sys/fs/cgroup -type d -name 'conductor-[0-9]*.scope' | paste -sd ' ')"
  fi
  # An admin-named parent holding other processes (this service's cgroup): no scope of
  # its own (the admin's setting wins), a refusal naming Delegate=yes.
  MCP_CONDUCTOR_CGROUP_PARENT=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup) "$CONDUCTOR_BIN" doctor > "$out/doctor-shared.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ] && grep -q 'also holds processes conductor did not start' "$out/doctor-shared.log" && grep -q 'Delegate=yes' "$out/doctor-shared.log"; then
    record install shared-parent pass 0 "doctor with MCP_CONDUCTOR_CGROUP_PARENT=<this service> refuses (exit $rc), naming Delegate=yes"
  else
    record install shared-parent fail 0 "doctor with MCP_CONDUCTOR_CGROUP_PARENT=<this service>: exit $rc, want a refusal naming the other processes and Delegate=yes"
  fi

  t0=$(date +%s)
  "$CONDUCTOR_BIN" rootfs build > "$out/rootfs-build.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    record install rootfs-build pass "$(elapsed "$t0")" "$(grep -q 'built root' "$out/rootfs-build.log" && echo rebuilt || echo "copy reused")"
  else
    record install rootfs-build fail "$(elapsed "$t0")" "exit $rc"
  fi
  [ -f "$out/status" ] || echo pass > "$out/status"
}

phase_a() {
  VM_LAUNCH=service VM_TESTS=$VM_TESTS_A "$P/phase.sh" a /var/tmp/vm-out/a
}

phase_b() {
  local parent=/sys/fs/cgroup/conductor-vm-b c
  mkdir -p "$parent"
  # One controller per write: the write fails as a whole if one is unavailable.
  for c in memory pids cpu; do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || say "could not enable $c at the root"
  done
  # As an admin runs it from a root shell (HOME set; a system service has none).
  HOME=/root VM_LAUNCH=direct VM_TESTS=$VM_TESTS_B MCP_CONDUCTOR_CGROUP_PARENT=/conductor-vm-b \
    "$P/phase.sh" b /var/tmp/vm-out/b
}

cleanup_b() { # after the leftovers check: the parent and conductor's server leaf
  find /sys/fs/cgroup/conductor-vm-b -depth -type d -exec rmdir {} + 2>/dev/null
  [ ! -d /sys/fs/cgroup/conductor-vm-b ] || say "could not remove /sys/fs/cgroup/conductor-vm-b"
}

# user_checkout USER SOCKET PHASE: USER's own checkout, as the user clones and builds conductor
# (bin/ and .build/ copied from the install, the root built as USER by `conductor rootfs build`,
# as the user's `make build` ends; its data directory writable by the user and by nobody else),
# and lingering, which starts user@UID.service (the user's systemd manager, with the delegated
# cgroup subtree systemd gives every user, and its bus) without a login, until
# /run/user/UID/SOCKET is up. Sets the caller's uid and home; the phase's output directory
# becomes the user's.
user_checkout() {
  local user=$1 sock=$2 ph=$3 i t0
  uid=$(id -u "$user")
  home=$(getent passwd "$user" | cut -d: -f6)
  chmod 0755 "$home"
  runuser -u "$user" -- mkdir -p "$home/conductor"
  cp -a /opt/conductor/bin /opt/conductor/.build "$home/conductor/"
  rm -rf "$home/conductor/.build/rootfs"
  chown -R "$user:" "$home/conductor"
  loginctl enable-linger "$user" || return 1
  for i in $(seq 120); do
    [ -S "/run/user/$uid/$sock" ] && break
    sleep 1
  done
  [ -S "/run/user/$uid/$sock" ] || { say "phase $ph: no /run/user/$uid/$sock: user@$uid.service did not start"; systemctl status "user@$uid.service"; return 1; }
  say "phase $ph: user manager of $user (uid $uid, $sock) up after $i s"
  mkdir -p "/var/tmp/vm-out/$ph"
  chown "$user:" "/var/tmp/vm-out/$ph"
  t0=$(date +%s)
  if ! runuser -u "$user" -- env -i PATH=/usr/bin:/bin HOME="$home" "$home/conductor/bin/conductor" rootfs build \
    > "/var/tmp/vm-out/$ph/rootfs-build.log" 2>&1; then
    say "phase $ph: conductor rootfs build as $user failed: see $ph/rootfs-build.log"
    return 1
  fi
  say "phase $ph: root built as $user in $(elapsed "$t0") s"
}

phase_c() {
  local user=conductor-user uid home
  id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
  user_checkout "$user" systemd/private c || return 1
  runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" USER="$user" \
    XDG_RUNTIME_DIR="/run/user/$uid" CI=true VM_LAUNCH=user-scope VM_TESTS="$VM_TESTS_C" \
    VM_TEST_TIMEOUT="$VM_TEST_TIMEOUT" CONDUCTOR_TEST_TIME_SCALE="$CONDUCTOR_TEST_TIME_SCALE" TESTS_DIR="$TESTS_DIR" CONDUCTOR_ROOTLESS_PHASE=delegated \
    CONDUCTOR_BIN="$home/conductor/bin/conductor" CONDUCTOR_DENO="$home/conductor/.build/deno" \
    "$P/phase.sh" c /var/tmp/vm-out/c
}

# phase_d: as a desktop user, following only the README (its Desktop section's
# client config, with the install path substituted).
phase_d() {
  local user=conductor-desk uid home t0 rc out=/var/tmp/vm-out/d check launch
  useradd --create-home --shell /bin/bash "$user" || return 1 # fresh: fails if it exists
  t0=$(date +%s)
  if user_checkout "$user" bus d; then
    record d rootfs-build pass "$(elapsed "$t0")" "as $user"
  else
    record d rootfs-build fail "$(elapsed "$t0")" "see the guest log and rootfs-build.log"
    return 1
  fi
  # desk CHECK PHASE [LAUNCHER...]: TestDesktopStdio as the user, from the test's
  # package directory (it reads ../../README.md), with a desktop session's environment.
  desk() {
    local check=$1 dphase=$2 extra=()
    shift 2
    [ "$dphase" = nobus ] || extra=(XDG_RUNTIME_DIR="/run/user/$uid")
    t0=$(date +%s)
    runuser -u "$user" -- env -i -C "$TESTS_DIR/src/cmd/conductor" PATH=/usr/bin:/bin HOME="$home" USER="$user" \
      "${extra[@]}" CI=true CONDUCTOR_TEST_TIME_SCALE="$CONDUCTOR_TEST_TIME_SCALE" \
      CONDUCTOR_DESKTOP_PHASE="$dphase" CONDUCTOR_BIN="$home/conductor/bin/conductor" \
      "$@" "$TESTS_DIR/src/cmd/conductor/conductor.test" -test.v -test.count=1 -test.timeout 15m \
      -test.run '^TestDesktopStdio$' < /dev/null > "$out/$check.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q '^--- PASS: TestDesktopStdio' "$out/$check.log"; then
      record d "$check" pass "$(elapsed "$t0")" "$(grep -m1 -oE 'server [0-9]+ in \S+|refused: .{0,160}' "$out/$check.log" || echo '?')"
    else
      record d "$check" fail "$(elapsed "$t0")" "exit $rc: $(grep -m3 -E '^\s+desktop_test.go:[0-9]+:' "$out/$check.log" | cut -c1-200 | paste -sd ' ')"
    fi
  }
  desk app-scope limits systemd-run --user --scope --quiet --
  desk runuser limits
  desk no-bus nobus
  [ -f "$out/status" ] || echo pass > "$out/status"
}

status=0
for p in install $PHASES; do
  t0=$(date +%s)
  mkdir -p "/var/tmp/vm-out/$p"
  say "phase $p: start"
  "phase_$p"
  rc=$?
  left=$(leftovers)
  if [ -n "$left" ]; then
    say "phase $p: sandbox cgroups left behind: $left"
    printf 'leftovers\tfail\t0\t%s\n' "$(echo "$left" | paste -sd ' ')" >> "/var/tmp/vm-out/$p/summary.tsv"
    rc=1
  fi
  ! declare -F "cleanup_$p" >/dev/null || "cleanup_$p"
  [ -f "/var/tmp/vm-out/$p/status" ] || echo fail > "/var/tmp/vm-out/$p/status"
  [ $rc -eq 0 ] || echo fail > "/var/tmp/vm-out/$p/status"
  elapsed "$t0" > "/var/tmp/vm-out/$p/seconds"
  collect "$p"
  say "phase $p: $(cat "$R/$p/status") in $(elapsed "$t0") s"
  [ "$(cat "$R/$p/status")" = pass ] || status=1
done

echo "$status" > "$R/done"
sync
