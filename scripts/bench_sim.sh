#!/usr/bin/env bash
# Throughput of `benchkeep simulate --no-delay` on ONE core over loopback.
#
#   scripts/bench_sim.sh [SECONDS] [CONCURRENCY] [TOKENS]
#
# Builds the release binary and the `sim_load` example client, runs the server
# single-threaded (--workers 1) pinned to CPU 0 and the client pinned to CPU 1 (when
# taskset and two CPUs exist), and prints the client's JSON result. Exits 1 if the
# server streams fewer than $BENCH_SIM_MIN_CHUNKS_S content chunks per second
# (default 400000). This is a benchmark, not a test: run it on a quiet machine.
set -euo pipefail

seconds=${1:-10}
concurrency=${2:-64}
tokens=${3:-256}
min_rate=${BENCH_SIM_MIN_CHUNKS_S:-400000}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo build --release --quiet --bin benchkeep --example sim_load
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release/benchkeep"
client="$target_dir/release/examples/sim_load"

server_pin=()
client_pin=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
    server_pin=(taskset -c 0)
    client_pin=(taskset -c 1)
else
    echo "bench_sim: taskset or a second CPU is missing; running unpinned" >&2
fi

out=$(mktemp)
"${server_pin[@]}" "$bin" simulate --port 0 --no-delay --workers 1 \
    --max-model-len 1000000 >"$out" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 200); do
    grep -q '^listening on ' "$out" && break
    sleep 0.05
done
addr=$(sed -n 's#^listening on http://##p' "$out" | head -n1)
[[ -n "$addr" ]] || { echo "bench_sim: the simulator did not start" >&2; exit 2; }

echo "bench_sim: server ${server_pin[*]:-unpinned} --workers 1 at $addr;" \
    "client ${client_pin[*]:-unpinned}, concurrency $concurrency, $tokens tokens, ${seconds}s" >&2
result=$("${client_pin[@]}" "$client" --addr "$addr" --concurrency "$concurrency" \
    --tokens "$tokens" --seconds "$seconds")
echo "$result"
rate=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["content_chunks_per_s"]))' "$result")
if (( rate < min_rate )); then
    echo "bench_sim: $rate content chunks/s is below the goal of $min_rate" >&2
    exit 1
fi
echo "bench_sim: $rate content chunks/s (goal >= $min_rate)" >&2
