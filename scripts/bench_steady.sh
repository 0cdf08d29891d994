#!/usr/bin/env bash
# What the steady-state window adds to the end of a `run` (issue 14: intervals add under
# 10% to run's end-of-run time).
#
#   scripts/bench_steady.sh [REQUESTS] [CONCURRENCY] [REPEATS]
#   (defaults: 20000 requests, concurrency 64, 3 repeats)
#
# 1. The end of a real run: `benchkeep run --synthetic` of REQUESTS requests against
#    `benchkeep simulate --no-delay`, into a fresh store; the end of the run is from the
#    raw log's last write (its mtime: the last record) to the process's exit (final
#    metadata, derived reports, summary). Best of REPEATS.
# 2. What the steady state costs at the end: `examples/steady_cost.rs` times the
#    steady-state collector's `finish` over REQUESTS closed-loop records (best of 3), and,
#    for scale, the aggregator's own `finish`.
# Printed: both, and the ratio (added / end of run without it). It always exits 0 once it
# has measured: a benchmark, not a test; run it on a quiet machine.
set -euo pipefail

requests=${1:-20000}
concurrency=${2:-64}
repeats=${3:-3}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# BENCH_PROFILE=debug measures the debug build instead (both sides in the same build).
profile=${BENCH_PROFILE:-release}
if [[ $profile == release ]]; then
    cargo build --release --quiet --bin benchkeep --example steady_cost
else
    cargo build --quiet --bin benchkeep --example steady_cost
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out_dir="$target_dir/$profile"
bin="$out_dir/benchkeep"

work=$(mktemp -d)
sim_pid=
cleanup() {
    [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" simulate --port 0 --no-delay >"$work/sim.out" 2>&1 &
sim_pid=$!
for _ in $(seq 50); do
    grep -q 'listening on' "$work/sim.out" 2>/dev/null && break
    sleep 0.1
done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/sim.out" | head -1)

best_end=
for i in $(seq "$repeats"); do
    store="$work/store$i"
    "$bin" --store "$store" run --platform vllm --base-url "$base" --model sim-model \
        --synthetic --input-tokens 16 --output-tokens 64 --concurrency "$concurrency" \
        --num-requests "$requests" --gpu off --quiet >/dev/null 2>&1
    exited=$(date +%s.%N)
    # the run's own raw log (raw/ also holds its .server.jsonl series)
    raw="$store/$(python3 -c 'import glob, json, sys; print(json.load(open(glob.glob(sys.argv[1] + "/metadata/*.json")[0]))["test"]["output_file"])' "$store")"
    last_write=$(stat -c '%.9Y' "$raw")
    end_ms=$(python3 -c "print(round(($exited - $last_write) * 1000, 1))")
    echo "run $i: end of run ${end_ms} ms" >&2
    if [[ -z $best_end ]] || python3 -c "import sys; sys.exit(0 if $end_ms < $best_end else 1)"; then
        best_end=$end_ms
    fi
    rm -rf "$store"
done

cost=$("$out_dir/examples/steady_cost" "$requests" "$concurrency")
echo "steady_cost: $cost" >&2
python3 - "$best_end" "$cost" "$profile" <<'PY'
import json, sys
end_ms = float(sys.argv[1])
cost = json.loads(sys.argv[2])
added = cost["steady_added_ms"]
print(f"requests {cost['requests']}, concurrency {cost['concurrency']}, {sys.argv[3]} build")
print(f"end of run (best, steady state included): {end_ms:.1f} ms")
print(f"aggregator finish: {cost['aggregator_finish_ms']:.2f} ms; steady-state finish: {added:.2f} ms (pushes during the run: {cost['steady_push_ms']:.2f} ms)")
rest = end_ms - added
if rest > 0:
    print(f"steady state adds {added:.2f} ms = {100 * added / rest:.1f}% to the end of run without it (goal < 10%)")
else:
    print(f"steady state takes {added:.2f} ms, more than the whole end of run measured ({end_ms:.1f} ms)")
PY
