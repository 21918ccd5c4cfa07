#!/usr/bin/env bash
# Training throughput of Hinton's 784-800-800-10 ReLU MLP at batch 128 on 2 threads:
# our engine (train.BenchmarkTrainStepMLP800, GOMAXPROCS=2) and the same step in PyTorch
# (scripts/bench_train_torch.py, torch.set_num_threads(2)), alternated ROUNDS times in
# one run so that a background load hits both sides alike. Prints each side's samples/s
# and CPU time per step for each round, and the median ratio Go/PyTorch with its spread.
# On a loaded machine PyTorch's OpenMP threads suffer more than Go's goroutines: quote
# the load column with the ratio.
#
# Environment: ROUNDS (default 5), SECONDS_PER_RUN (default 3), THREADS (default 2),
# PYTHON (default: the first of python3, /usr/bin/python3 that imports torch), GO,
# TORCH_WAIT_POLICIES (default "default PASSIVE": see torch_run).
# Without an importable torch it measures the Go side alone and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-3}
THREADS=${THREADS:-2}
GO=${GO:-go}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "building the train test binary..."
"$GO" test -c -o "$tmp/train.test" ./train

py=""
for cand in ${PYTHON:-python3 /usr/bin/python3}; do
	if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import torch' >/dev/null 2>&1; then
		py=$cand
		break
	fi
done
if [ -z "$py" ]; then
	echo "PyTorch is not installed (no python3 here imports torch; set PYTHON=...): measuring the Go side only."
	echo "For the comparison install Debian's python3-torch and libopenblas0-pthread."
else
	echo "PyTorch: $("$py" -c 'import torch; print(torch.__version__)') via $py"
fi
echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

go_run() { # prints "samples/s cpu-ms/step"
	local out
	out=$(cd train && { "${timecmd[@]}" env GOMAXPROCS="$THREADS" "$tmp/train.test" -test.run '^$' \
		-test.bench '^BenchmarkTrainStepMLP800$' -test.benchtime "${SECS}s"; } 2>&1)
	echo "$out" | awk '
		/^BenchmarkTrainStepMLP800/ { n = $2; for (i = 2; i <= NF; i++) if ($i == "samples/s") s = $(i-1) }
		/^CPU / { cpu = $2 + $3 }
		END { if (s == "") exit; if (cpu == "") print s, "-"; else printf "%s %.2f\n", s, cpu * 1000 / (n + 1) }'
}
# GNU time gives the Go side's CPU time; without it that column is "-".
timecmd=()
[ -x /usr/bin/time ] && timecmd=(/usr/bin/time -f 'CPU %U %S')

# PyTorch's intra-op threads are GNU OpenMP's, which by default spin while they wait; on
# a machine where other processes want the cores too they lose their time slices and
# PyTorch's throughput collapses (5-10x), while with OMP_WAIT_POLICY=PASSIVE it barely
# moves. Each round runs PyTorch once per policy in TORCH_WAIT_POLICIES and takes the
# faster as the reference, so the ratio never flatters our engine.
TORCH_WAIT_POLICIES=${TORCH_WAIT_POLICIES:-default PASSIVE}

torch_run() { # prints "samples/s cpu-ms/step policy" of the fastest policy
	local pol best="" out
	for pol in $TORCH_WAIT_POLICIES; do
		if [ "$pol" = default ]; then
			out=$(env -u OMP_WAIT_POLICY "$py" scripts/bench_train_torch.py --threads "$THREADS" --seconds "$SECS" 2>/dev/null)
		else
			out=$(OMP_WAIT_POLICY=$pol "$py" scripts/bench_train_torch.py --threads "$THREADS" --seconds "$SECS" 2>/dev/null)
		fi
		out=$(echo "$out" | awk -v p="$pol" '$1 == "samples/s" { s = $2 } $1 == "cpu-ms/step" { c = $2 } END { if (s != "") print s, c, p }')
		[ -n "$out" ] || continue
		if [ -z "$best" ] || awk -v a="${out%% *}" -v b="${best%% *}" 'BEGIN { exit !(a > b) }'; then
			best=$out
		fi
	done
	echo "$best"
}

gos=() tos=() ratios=() gcpu=() tcpu=()
printf '%-6s %12s %12s %8s %7s %14s %14s %6s\n' round "go samples/s" "pt samples/s" "pt wait" ratio "go cpu-ms/step" "pt cpu-ms/step" load
for r in $(seq 1 "$ROUNDS"); do
	# Alternate which side goes first, so a load that changes over time is shared fairly.
	t=""
	if [ -n "$py" ] && [ $((r % 2)) -eq 0 ]; then
		t=$(torch_run)
		g=$(go_run)
	else
		g=$(go_run)
		[ -n "$py" ] && t=$(torch_run)
	fi
	load=$(cut -d' ' -f1 /proc/loadavg)
	[ -n "$g" ] || { echo "the Go benchmark printed no samples/s" >&2; exit 1; }
	read -r gs gc <<<"$g"
	gos+=("$gs") gcpu+=("$gc")
	if [ -n "$py" ]; then
		[ -n "$t" ] || { echo "the PyTorch script printed no samples/s" >&2; exit 1; }
		read -r ts tc tp <<<"$t"
		tos+=("$ts") tcpu+=("$tc")
		ratio=$(awk -v g="$gs" -v t="$ts" 'BEGIN { printf "%.3f", g / t }')
		ratios+=("$ratio")
		printf '%-6s %12s %12s %8s %7s %14s %14s %6s\n' "$r" "$gs" "$ts" "$tp" "$ratio" "$gc" "$tc" "$load"
	else
		printf '%-6s %12s %12s %8s %7s %14s %14s %6s\n' "$r" "$gs" - - - "$gc" - "$load"
	fi
done

# median and range of a list of numbers
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf "median %.3f (min %.3f, max %.3f, %d runs)", m, v[1], v[NR], NR }'; }

echo "go samples/s:      $(stats "${gos[@]}")"
[ "${gcpu[0]}" != - ] && echo "go cpu-ms/step:     $(stats "${gcpu[@]}")"
if [ -n "$py" ]; then
	echo "torch samples/s:   $(stats "${tos[@]}")"
	echo "torch cpu-ms/step:  $(stats "${tcpu[@]}")"
	echo "ratio go/torch (samples/s): $(stats "${ratios[@]}")"
fi
echo "(pt wait: the OMP_WAIT_POLICY of PyTorch's faster run; cpu-ms/step: CPU time of all threads per step;"
echo " load: 1-minute load average after the round)"
