#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME each (`make fuzz`; `make test` runs it
# shorter). Targets are found with `go test -list '^Fuzz'` in every package whose tests define
# one, so a new FuzzX is included without editing this file. One target at a time with
# FUZZPARALLEL workers (default 1: the machine is shared). A failure leaves the input that
# failed under the package's testdata/fuzz/FuzzX/ (commit it with the fix: it then runs in
# every `go test`) and the script exits non-zero after running the rest.
#   FUZZTIME=10s      time per target (a go test -fuzztime value: 30s, 1m, 5000x)
#   FUZZ_MATCH=regex  only targets whose name matches
#   FUZZPARALLEL=1    fuzzing workers per target
#   FUZZMINIMIZETIME=500x  budget to minimize each new input (go's default, 60s, can spend a whole
#                     short run minimizing the inputs of a target with several arguments)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZ_MATCH=${FUZZ_MATCH:-.}
FUZZPARALLEL=${FUZZPARALLEL:-1}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-500x}
tags=(-tags seccomp)

# Packages whose test files declare a fuzz target (cheap pre-selection; -list decides).
mapfile -t dirs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . \
  | grep -v -e '^\./\.' -e '/testdata/' | xargs -r -n1 dirname | sort -u)
targets=()
for d in "${dirs[@]}"; do
  pkg=$("$GO" list "${tags[@]}" "$d")
  while read -r name; do
    [[ $name == Fuzz* ]] && [[ $name =~ $FUZZ_MATCH ]] && targets+=("$pkg $name")
  done < <("$GO" test "${tags[@]}" -list '^Fuzz' "$d")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz targets found (FUZZ_MATCH=$FUZZ_MATCH)" >&2
  exit 1
fi

echo "fuzz: ${#targets[@]} targets, $FUZZTIME each, $FUZZPARALLEL worker(s)"
failed=()
start=$SECONDS
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  t0=$SECONDS
  log=$(mktemp)
  dir=$("$GO" list "${tags[@]}" -f '{{.Dir}}' "$pkg")/testdata/fuzz/$name
  before=$(ls "$dir" 2>/dev/null || true)
  if "$GO" test "${tags[@]}" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" -parallel "$FUZZPARALLEL" "$pkg" >"$log" 2>&1; then
    execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    printf 'fuzz: ok    %-60s %4ds  %s execs\n' "$pkg $name" $((SECONDS - t0)) "${execs:-?}"
  elif grep -qx '    context deadline exceeded' "$log" && [ "$(ls "$dir" 2>/dev/null || true)" = "$before" ]; then
    # Go 1.26's coordinator can report its own -fuzztime deadline as a failure (go.dev/issue/75804,
    # fixed in Go 1.27): no input was written, so nothing failed.
    printf 'fuzz: ok    %-60s %4ds  (the toolchain reported its deadline: go.dev/issue/75804)\n' "$pkg $name" $((SECONDS - t0))
  else
    printf 'fuzz: FAIL  %-60s %4ds\n' "$pkg $name" $((SECONDS - t0))
    sed 's/^/    /' "$log"
    failed+=("$pkg $name")
  fi
  rm -f "$log"
done
echo "fuzz: ${#targets[@]} targets in $((SECONDS - start))s"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
