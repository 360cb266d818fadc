#!/usr/bin/env bash
# One phase of `make test-vm`, inside the VM, in the cgroup and as the user
# the phase is about (guest-run.sh starts it): `conductor doctor`, one
# `conductor exec`, then the Go test binaries. Writes to OUT:
#   <check>.log       the full output of each check
#   summary.tsv       check, result (pass/fail), seconds, details
#   status            pass or fail
#   phase.sh PHASE OUT
# Environment: CONDUCTOR_BIN, CONDUCTOR_DENO, TESTS_DIR (src/<pkg>/<pkg>.test),
# VM_TESTS ("pkg pkg:RUN pkg!SKIP ...", -test.run/-test.skip regexps), VM_TEST_TIMEOUT, CI, what the phase sets
# (MCP_CONDUCTOR_CGROUP_PARENT, CONDUCTOR_ROOTLESS_PHASE), and VM_LAUNCH, how
# each check is started, so that it is the only process in its cgroup as in a
# real deployment (conductor moves itself into a leaf of a delegated cgroup):
#   service     a transient system service with Delegate=yes (root)
#   user-scope  systemd-run --user --scope -p Delegate=yes (the user's manager)
#   direct      a child of this script
set -uo pipefail -o noglob # VM_TESTS holds regular expressions
phase=${1:?phase}
out=${2:?out dir}
mkdir -p "$out"
: > "$out/summary.tsv"
failed=0
n=0

# launch DIR CMD...: run CMD from DIR the phase's way; stdin and stdout are ours.
launch() {
  local dir=$1
  shift
  case ${VM_LAUNCH:-direct} in
  service)
    local env=() v
    for v in CI CONDUCTOR_BIN CONDUCTOR_DENO MCP_CONDUCTOR_CGROUP_PARENT CONDUCTOR_ROOTLESS_PHASE CONDUCTOR_TEST_TIME_SCALE; do
      [ -n "${!v:-}" ] && env+=("--setenv=$v=${!v}")
    done
    n=$((n + 1))
    systemd-run --quiet --wait --pipe --collect --unit="conductor-vm-$phase-$n" -p Delegate=yes \
      --working-directory="$dir" "${env[@]}" -- "$@"
    ;;
  user-scope) (cd "$dir" && systemd-run --user --scope --quiet -p Delegate=yes -- "$@") ;;
  direct) (cd "$dir" && "$@") ;;
  *) echo "phase.sh: unknown VM_LAUNCH=$VM_LAUNCH" >&2; return 1 ;;
  esac
}

record() { # check result seconds details
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$out/summary.tsv"
  printf 'phase %s: %-8s %-4s %4ss  %s\n' "$phase" "$1" "$2" "$3" "$4"
  [ "$2" = pass ] || failed=1
}

{
  echo "phase $phase: $(id), launch ${VM_LAUNCH:-direct}, this script's cgroup $(cat /proc/self/cgroup)"
  echo "MCP_CONDUCTOR_CGROUP_PARENT=${MCP_CONDUCTOR_CGROUP_PARENT:-}"
  own=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
  for f in cgroup.controllers cgroup.subtree_control; do
    echo "$own/$f: $(cat "/sys/fs/cgroup$own/$f" 2>&1)"
  done
} > "$out/env.log" 2>&1

t0=$(date +%s)
launch / "$CONDUCTOR_BIN" doctor < /dev/null > "$out/doctor.log" 2>&1
rc=$?
record doctor "$([ $rc -eq 0 ] && echo pass || echo fail)" $(($(date +%s) - t0)) "exit $rc"

t0=$(date +%s)
echo 'return [1, 2, 3].reduce((a, b) => a + b, 0)' | launch / "$CONDUCTOR_BIN" exec --json - > "$out/exec.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q '"returnValue": 6' "$out/exec.log"; then
  record exec pass $(($(date +%s) - t0)) "returnValue 6"
else
  record exec fail $(($(date +%s) - t0)) "exit $rc"
fi

for spec in $VM_TESTS; do
  # pkg, pkg:RUN (-test.run RUN) or pkg!SKIP (-test.skip SKIP)
  pkg=${spec%%[:!]*}
  run=
  skip=
  case $spec in
  *:*) run=${spec#*:} ;;
  *!*) skip=${spec#*!} ;;
  esac
  bin="$TESTS_DIR/src/$pkg/$pkg.test"
  t0=$(date +%s)
  # From the package's directory, as `go test` runs it (tests read ../program/testdata).
  launch "$TESTS_DIR/src/$pkg" "$bin" -test.v -test.count=1 -test.timeout "${VM_TEST_TIMEOUT:-20m}" \
    ${run:+-test.run "$run"} ${skip:+-test.skip "$skip"} < /dev/null > "$out/$pkg.log" 2>&1
  rc=$?
  pass=$(grep -c '^--- PASS' "$out/$pkg.log")
  fail=$(grep -c '^--- FAIL' "$out/$pkg.log")
  nskip=$(grep -c '^--- SKIP' "$out/$pkg.log")
  # The failed tests (the log names their failed subtests), and a panic or
  # timeout if the binary died.
  fails=$(grep -E '^--- FAIL' "$out/$pkg.log" | awk '{ print $3 }' | paste -sd ' ')
  died=$(grep -m1 -E '^panic: |^FAIL\s.*\[build failed\]|test timed out' "$out/$pkg.log")
  details="${pass} passed, ${fail} failed, ${nskip} skipped${run:+ (-run $run)}${skip:+ (-skip $skip)}${fails:+; FAILED: $fails}${died:+; $died}"
  # A filter that ran nothing proves nothing.
  [ "$pass" -gt 0 ] || { rc=${rc/#0/1}; details="no test passed: $details"; }
  record "$pkg" "$([ "$rc" -eq 0 ] && echo pass || echo fail)" $(($(date +%s) - t0)) "exit $rc: $details"
done

[ $failed -eq 0 ] && echo pass > "$out/status" || echo fail > "$out/status"
exit $failed
