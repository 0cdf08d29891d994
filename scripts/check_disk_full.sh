#!/usr/bin/env bash
# Disk full, for real (RELIABILITY.md P6): a tiny tmpfs as the store.
#   1. `run` fills it: exit 4, the raw log is a clean prefix (every line a record), no temp
#      file left; once space is freed, `recover` finishes the run with every logged request.
#   2. `analyze` into a full store: exit 4, nothing written, no temp file left.
# Needs root (mount); CI runs as root. Usage: scripts/check_disk_full.sh [BENCHKEEP_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-${BENCHKEEP_BIN:-target/debug/benchkeep}}"
[ -x "$bin" ] || { echo "no benchkeep binary at $bin (build it first)" >&2; exit 2; }
bin="$(realpath "$bin")"
work="$(mktemp -d)"
mnt="$work/mnt"
mkdir -p "$mnt"
sim_pid=""
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
    umount "$mnt" 2>/dev/null || true
    [ -n "${mnt2:-}" ] && umount "$mnt2" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mount -t tmpfs -o size=192k tmpfs "$mnt" || fail "cannot mount a tmpfs (needs root)"
store="$mnt/store"

"$bin" simulate --port 0 --no-delay >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 50); do grep -q listening "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
url=$(awk '/listening/ {print $3; exit}' "$work/sim.out")
[ -n "$url" ] || fail "the simulator did not start"

# 1. run until the disk is full
set +e
"$bin" --store "$store" run --platform vllm --model sim-model --base-url "$url" \
    --synthetic --input-tokens 8 --output-tokens 64 --num-requests 100000 \
    --concurrency 4 --save-text --gpu off --quiet >"$work/run.out" 2>"$work/run.err"
code=$?
set -e
[ "$code" -eq 4 ] || fail "run on a full disk exited $code, not 4: $(cat "$work/run.err")"
grep -qi "space\|disk full" "$work/run.err" || fail "no disk-full message: $(cat "$work/run.err")"
raw=$(ls "$store"/raw/*.jsonl)
id=$(basename "$raw" .jsonl)
status=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$store/metadata/$id.json")
# "Saved" only when it was: the final metadata is on disk (not still `running`).
if grep -q "Saved metadata" "$work/run.out" && [ "$status" = "running" ]; then
    fail "'Saved metadata' printed, but the metadata on disk still says running"
fi
python3 - "$raw" <<'PY' || fail "the raw log is not a clean prefix"
import json, sys
data = open(sys.argv[1], "rb").read()
assert data == b"" or data.endswith(b"\n"), "torn last line"
seqs = [json.loads(l)["seq"] for l in data.splitlines()]
assert seqs == sorted(set(seqs)), "seq not strictly increasing"
print(f"raw log: {len(seqs)} complete records")
PY
leftovers=$(find "$store" -name '.tmp-*' | wc -l)
[ "$leftovers" -eq 0 ] || fail "temp files left: $(find "$store" -name '.tmp-*')"
logged=$(wc -l <"$raw")

# free space, then recover
mount -o remount,size=8m "$mnt"
if [ "$status" = "running" ]; then
    "$bin" --store "$store" recover "$id" >/dev/null || fail "recover failed"
fi
python3 - "$store/metadata/$id.json" "$logged" <<'PY' || fail "the recovered run does not hold every logged request"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["status"] == "interrupted", m["status"]
assert m["test"]["num_requests"] == int(sys.argv[2]), (m["test"]["num_requests"], sys.argv[2])
print(f"recovered: {m['test']['num_requests']} requests, status {m['status']}")
PY
"$bin" --store "$store" verify >/dev/null || fail "verify after recovery: $("$bin" --store "$store" verify)"

# 2. analyze into a store too small for the file
mnt2="$work/mnt2"
mkdir -p "$mnt2"
mount -t tmpfs -o size=64k tmpfs "$mnt2" || fail "cannot mount a second tmpfs"
store2="$mnt2/store"
python3 - "$work/results.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(2000):
        f.write(json.dumps({"id": f"c{i}", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 40}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}) + "\n")
PY
set +e
"$bin" --store "$store2" analyze --platform p --model m --total-time 1 \
    --input "$work/results.jsonl" >/dev/null 2>"$work/analyze.err"
code=$?
set -e
[ "$code" -eq 4 ] || fail "analyze into a full store exited $code, not 4: $(cat "$work/analyze.err")"
[ -z "$(ls "$store2/metadata" 2>/dev/null)" ] || fail "metadata written by a failed analyze"
[ "$(find "$store2" -name '.tmp-*' | wc -l)" -eq 0 ] || fail "temp files left by analyze"
echo "disk-full check: ok (run: exit 4, clean prefix, final status $status before recovery; analyze: exit 4, nothing written)"
