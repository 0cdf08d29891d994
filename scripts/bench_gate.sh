#!/usr/bin/env bash
# Performance goal of significance gating: at the scale of the report benchmark (1,000
# runs, 20 of them with 100,000 raw requests; scripts/bench_report.sh's fixture store),
# one `benchkeep gate` of a 100,000-request run against its history, and one
# `compare --baseline` of two 100,000-request runs, each take under 10 % of the time of
# `benchkeep report` on the same store.
#
# Usage: scripts/bench_gate.sh [STORE_DIR]
#   Builds the release binary and the fixture store (through bench_report.sh, which also
#   times `report`), times `report` once more, then `gate` for every 100,000-request run
#   and `compare --baseline` for pairs of them, prints the figures and the ratios, and
#   fails when a ratio reaches BENCH_MAX_RATIO (default 0.10).
#   A quick check at a small size with the debug build (figures not meaningful):
#     BENCH_PROFILE=debug BENCH_RUNS=100 BENCH_BIG_REQS=2000 BENCH_MAX_RATIO=100 \
#       scripts/bench_gate.sh
set -euo pipefail

cd "$(dirname "$0")/.."
STORE="${1:-$(mktemp -d)/bench-store}"
MAX_RATIO="${BENCH_MAX_RATIO:-0.10}"
TARGET="${CARGO_TARGET_DIR:-target}"
PROFILE="${BENCH_PROFILE:-release}"
export BENCH_PROFILE="$PROFILE" BENCH_RUNS="${BENCH_RUNS:-1000}" BENCH_BIG_REQS="${BENCH_BIG_REQS:-100000}"
BIN="$TARGET/$PROFILE/benchkeep"

# The fixture (and report's own goal, which does not concern this script).
scripts/bench_report.sh "$STORE" || true

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }

t0=$(now); "$BIN" --store "$STORE" report >/dev/null; t1=$(now)
report_s=$(secs "$t0" "$t1")
echo "benchkeep report: ${report_s} s"

big=$(cd "$STORE/metadata" && grep -l "\"num_requests\": $BENCH_BIG_REQS," ./*.json | sed 's|^\./||; s|\.json$||' | sort)
count=$(echo "$big" | wc -l)
worst_gate=0
status=0
for id in $big; do
    t0=$(now)
    code=0
    "$BIN" --store "$STORE" gate "$id" >/dev/null 2>&1 || code=$?
    t1=$(now)
    s=$(secs "$t0" "$t1")
    worst_gate=$(awk -v a="$worst_gate" -v b="$s" 'BEGIN {print (b > a) ? b : a}')
    echo "gate $id: ${s} s (exit $code)"
done
worst_cmp=0
set -- $big
while (($# >= 2)); do
    t0=$(now)
    code=0
    "$BIN" --store "$STORE" compare --baseline "$1" "$2" >/dev/null 2>&1 || code=$?
    t1=$(now)
    s=$(secs "$t0" "$t1")
    worst_cmp=$(awk -v a="$worst_cmp" -v b="$s" 'BEGIN {print (b > a) ? b : a}')
    echo "compare --baseline $1 $2: ${s} s (exit $code)"
    shift 2
done
for what in "gate:$worst_gate" "compare:$worst_cmp"; do
    name=${what%%:*}
    s=${what#*:}
    ratio=$(awk -v a="$s" -v b="$report_s" 'BEGIN {printf "%.3f", a / b}')
    echo "slowest $name of a $BENCH_BIG_REQS-request run: ${s} s = ${ratio} x report (${count} runs of $BENCH_BIG_REQS requests, $PROFILE build)"
    if awk -v r="$ratio" -v m="$MAX_RATIO" 'BEGIN {exit !(r >= m)}'; then
        echo "FAIL: $name ratio ${ratio} >= ${MAX_RATIO}" >&2
        status=1
    fi
done
exit $status
