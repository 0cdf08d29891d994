#!/usr/bin/env bash
# The `sweep` overhead goal (issue 11): a sweep adds no more than 1 s per point beyond
# the runs themselves. Measured against the built-in simulator: the wall time of
# `benchkeep sweep` minus the sum of its points' `results.total_time_seconds`, divided by
# the number of points. The overhead holds the probe, the id reservation, each point's
# metadata and raw log set-up and final write, the early-stop check (one pass over the
# raw log), the derived files' refresh after each point, and the process start.
#
# Usage: scripts/bench_sweep_overhead.sh      (POINTS=8 REQUESTS=200 DELAY=1 BIN=... to change)
#   DELAY=0: the simulator with --no-delay; DELAY=1: 1 ms prefill and 1 ms per token.
#   BIN: the benchkeep binary (default: a release build, made first).
# Exit code: 0 when the overhead per point is at most 1 s, 1 when not.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
points=${POINTS:-8}
requests=${REQUESTS:-200}
delay=${DELAY:-1}
if [[ -z ${BIN:-} ]]; then
    echo "== building (release)" >&2
    (cd "$repo" && cargo build --release --quiet --bin benchkeep)
    BIN=${CARGO_TARGET_DIR:-$repo/target}/release/benchkeep
fi
work=$(mktemp -d)
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT

sim_flags=(--port 0 --max-num-seqs 64)
if [[ $delay == 0 ]]; then
    sim_flags+=(--no-delay)
else
    sim_flags+=(--prefill-base-ms "$delay" --itl-ms "$delay" --itl-per-seq-ms 0)
fi
"$BIN" simulate "${sim_flags[@]}" >"$work/sim.out" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do
    url=$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$work/sim.out")
    [[ -n $url ]] && break
    sleep 0.05
done
[[ -n $url ]] || { echo "the simulator did not start" >&2; exit 1; }

values=$(seq -s, 1 "$points")
start=$(date +%s.%N)
"$BIN" --store "$work/store" sweep --platform vllm --model sim-model --base-url "$url" \
    --synthetic --input-tokens 16 --output-tokens 16 --num-requests "$requests" \
    --concurrency "$values" --no-early-stop --gpu off -q >/dev/null
end=$(date +%s.%N)

python3 - "$work/store" "$start" "$end" "$points" <<'PY'
import json, pathlib, sys
store, start, end, n = pathlib.Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
runs = [json.loads(p.read_text()) for p in (store / "metadata").glob("*.json")]
runs = [m for m in runs if "sweep" in m]
assert len(runs) == n, f"{len(runs)} points stored, {n} planned"
inside = sum(m["results"]["total_time_seconds"] for m in runs)
wall = end - start
per = (wall - inside) / n
print(f"points: {n}  wall: {wall:.3f} s  sum of the points' total_time_seconds: {inside:.3f} s")
print(f"overhead per point: {per:.3f} s (goal: <= 1 s)")
sys.exit(0 if per <= 1.0 else 1)
PY
