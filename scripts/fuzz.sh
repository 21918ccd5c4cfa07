#!/usr/bin/env bash
# Runs every Go fuzz target of the repository (each `func Fuzz...` in a _test.go file,
# found with `go test -list`) for FUZZTIME, one target after another, and ends with a
# table of the executions each ran and whether it failed. A failing target does not stop
# the others; the script exits 1 when one failed. The failing input is left where Go
# writes it: testdata/fuzz/<Target>/ of the target's package.
#
# Environment: FUZZTIME (default 30s), FUZZPARALLEL (workers per target; default Go's,
# GOMAXPROCS), FUZZMINIMIZETIME (time to minimize a failing input and each input that
# adds coverage, default 10s: Go's 60s starves short runs), FUZZ (a regexp: only the
# targets it matches), GO.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-10s}
args=(-fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME")
if [ -n "${FUZZPARALLEL:-}" ]; then
  args+=(-parallel "$FUZZPARALLEL")
fi

dirs=$(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u)
summary=()
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for dir in $dirs; do
  for target in $("$GO" test -list '^Fuzz' "./$dir" | grep '^Fuzz' || true); do
    if [ -n "${FUZZ:-}" ] && ! [[ $target =~ $FUZZ ]]; then
      continue
    fi
    echo "== ./$dir $target ($FUZZTIME)"
    status=ok
    if ! "$GO" test "./$dir" -run '^$' -fuzz "^$target\$" "${args[@]}" 2>&1 | tee "$log"; then
      status=FAIL
      failed=1
    fi
    # The last progress line: "fuzz: elapsed: 10s, execs: 12345 (1234/sec), ...".
    execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    summary+=("$(printf '%-28s %-18s %10s  %s' "./$dir" "$target" "${execs:-?}" "$status")")
  done
done
echo
printf '%-28s %-18s %10s  %s\n' package target execs result
printf '%s\n' "${summary[@]}"
exit $failed
