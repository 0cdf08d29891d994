#!/usr/bin/env bash
# Soak (RELIABILITY.md P1, P2, P4): `benchkeep run` against `benchkeep simulate`, kill -9 at
# random every few seconds, `benchkeep recover` after each; at the end the finished requests
# in the store are reconciled with the simulator's own count of completed requests
# (`vllm:request_success_total` on /metrics). Lost = completed by the server - stored; at
# most the requests in flight at each kill (the concurrency) and the records on their way
# to the log writer at that instant may be missing. Exits 1 on a
# loss, a failed recover, or a store `verify` does not accept.
# Usage: scripts/soak.sh MINUTES [BENCHKEEP_BIN]   (`scripts/soak.sh 1` runs in about 60 s)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:?usage: scripts/soak.sh MINUTES [BENCHKEEP_BIN]}"
bin="${2:-${BENCHKEEP_BIN:-target/debug/benchkeep}}"
[ -x "$bin" ] || { echo "no benchkeep binary at $bin (build it first)" >&2; exit 2; }
bin="$(realpath "$bin")"
work="$(mktemp -d)"
store="$work/store"
concurrency=4
sim_pid=""
run_pid=""
cleanup() {
    [ -n "$run_pid" ] && kill -9 "$run_pid" 2>/dev/null || true
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" simulate --port 0 --itl-ms 2 >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 50); do grep -q listening "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
url=$(awk '/listening/ {print $3; exit}' "$work/sim.out")
[ -n "$url" ] || fail "the simulator did not start"

deadline=$(( $(date +%s) + minutes * 60 - 12 ))
kills=0
while [ "$(date +%s)" -lt "$deadline" ]; do
    "$bin" --store "$store" run --platform vllm --model sim-model --base-url "$url" \
        --synthetic --input-tokens 8 --output-tokens 32 --num-requests 10000000 \
        --concurrency "$concurrency" --gpu off --quiet >/dev/null 2>>"$work/run.err" &
    run_pid=$!
    # 1.0 to 4.9 s, at random
    sleep "$(( RANDOM % 4 + 1 )).$(( RANDOM % 10 ))"
    kill -9 "$run_pid" 2>/dev/null || true
    wait "$run_pid" 2>/dev/null || true
    run_pid=""
    kills=$((kills + 1))
    "$bin" --store "$store" recover >"$work/recover.out" 2>&1 \
        || fail "recover after kill $kills failed: $(cat "$work/recover.out")"
done
sleep 0.5 # the server notices the dropped connections
completed=$(python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1] + "/metrics").read().decode())' "$url" | awk '/^vllm:request_success_total/ {s += $NF} END {printf "%d", s}')
stored=$(python3 - "$store" <<'PY'
import json, pathlib, sys
n = 0
for p in pathlib.Path(sys.argv[1], "metadata").glob("*.json"):
    m = json.loads(p.read_text())
    assert m["status"] != "running", f"{p.name} is still running after recover"
    n += m["results"]["success_count"]
print(n)
PY
) || fail "a run is still marked running"
lost=$((completed - stored))
# Lost at a kill: the requests in flight (a closed loop always has `concurrency` of them,
# and the server may finish them after the client died), plus at most as many records a
# request task has finished and handed to the log writer in the microseconds before the
# kill.
allowed=$((kills * concurrency * 2))
echo "soak: ${minutes} min, ${kills} kill -9, server completed ${completed}, stored ${stored}, lost ${lost} (in flight allowed: ${allowed})"
[ "$completed" -gt 0 ] || fail "the server completed nothing"
[ "$lost" -ge 0 ] || fail "the store holds $((-lost)) more finished requests than the server completed"
[ "$lost" -le "$allowed" ] || fail "$lost finished requests lost, more than the $allowed in flight at the kills (requests and records on their way to the log)"
"$bin" --store "$store" verify >"$work/verify.out" || fail "verify: $(cat "$work/verify.out")"
echo "soak: OK"
