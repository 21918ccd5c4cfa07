#!/usr/bin/env bash
# Training throughput of Hinton's 784-800-800-10 ReLU MLP at batch 128 on 2 threads:
# our engine (train.BenchmarkTrainStepMLP800, GOMAXPROCS=2) and the same step in PyTorch
# (scripts/bench_train_torch.py, torch.set_num_threads(2)), alternated ROUNDS times in
# one run so that a background load hits both sides alike. Prints each side's samples/s
# per round, and the median ratio Go/PyTorch with its spread.
#
# Environment: ROUNDS (default 5), SECONDS_PER_RUN (default 3), THREADS (default 2),
# PYTHON (default: the first of python3, /usr/bin/python3 that imports torch), GO.
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

go_run() {
	(cd train && GOMAXPROCS=$THREADS "$tmp/train.test" -test.run '^$' \
		-test.bench '^BenchmarkTrainStepMLP800$' -test.benchtime "${SECS}s") |
		awk '/^BenchmarkTrainStepMLP800/ { for (i = 2; i <= NF; i++) if ($i == "samples/s") print $(i-1) }'
}

torch_run() {
	"$py" scripts/bench_train_torch.py --threads "$THREADS" --seconds "$SECS" 2>/dev/null |
		awk '$1 == "samples/s" { print $2 }'
}

gos=() tos=() ratios=()
printf '%-6s %14s %14s %8s\n' round "go samples/s" "torch samples/s" ratio
for r in $(seq 1 "$ROUNDS"); do
	# Alternate which side goes first, so a load that changes over time is shared fairly.
	if [ -n "$py" ] && [ $((r % 2)) -eq 0 ]; then
		t=$(torch_run)
		g=$(go_run)
	else
		g=$(go_run)
		t=""
		[ -n "$py" ] && t=$(torch_run)
	fi
	[ -n "$g" ] || { echo "the Go benchmark printed no samples/s" >&2; exit 1; }
	gos+=("$g")
	if [ -n "$py" ]; then
		[ -n "$t" ] || { echo "the PyTorch script printed no samples/s" >&2; exit 1; }
		tos+=("$t")
		ratio=$(awk -v g="$g" -v t="$t" 'BEGIN { printf "%.3f", g / t }')
		ratios+=("$ratio")
		printf '%-6s %14s %14s %8s\n' "$r" "$g" "$t" "$ratio"
	else
		printf '%-6s %14s %14s %8s\n' "$r" "$g" - -
	fi
done

# median and range of a list of numbers
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf "median %.3f (min %.3f, max %.3f, %d runs)", m, v[1], v[NR], NR }'; }

echo "go samples/s:    $(stats "${gos[@]}")"
if [ -n "$py" ]; then
	echo "torch samples/s: $(stats "${tos[@]}")"
	echo "ratio go/torch:  $(stats "${ratios[@]}")"
fi
