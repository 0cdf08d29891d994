#!/usr/bin/env bash
# Runs examples/slurm/sweep-array.sbatch as its 3 array tasks on this machine, at once
# (the SLURM_* variables set by hand as Slurm sets them; `vllm` a stand-in that starts
# benchkeep's simulator on the task's port), into one store, then
# examples/slurm/sweep-gate.sbatch, which must pass; then a second array with task 1
# left out, whose gate must fail naming the missing shard. Also parses the Kubernetes
# manifest (tests/it/sweep_shards.rs checks its content).
# Usage: scripts/check_fleet_examples.sh [path/to/benchkeep]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/debug/benchkeep}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
ln -s "$BIN" "$work/bin/benchkeep"
cat > "$work/bin/vllm" <<'STANDIN'
#!/bin/sh
# vllm serve MODEL --port P ...: benchkeep's simulator with 4 sequences in the batch.
model=$2
shift 2
port=8000
while [ $# -gt 0 ]; do
  case $1 in --port) port=$2; shift ;; esac
  shift
done
exec benchkeep simulate --model "$model" --port "$port" --max-num-seqs 4 --itl-ms 5 --prefill-base-ms 2
STANDIN
chmod +x "$work/bin/vllm"
export PATH="$work/bin:$PATH"
export BENCHKEEP_STORE="$work/store" MODEL=sim-model INPUT_TOKENS=8 OUTPUT_TOKENS=10
export NUM_REQUESTS=24 CONCURRENCY=1,2,3,4,6,8,12,16 TMPDIR="$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# array JOB TASK...: the tasks of array job JOB at once, each on a port of its own.
array() {
  local job=$1 pids=() t
  shift
  for t in "$@"; do
    SLURM_ARRAY_JOB_ID=$job SLURM_ARRAY_TASK_ID=$t SLURM_ARRAY_TASK_MIN=0 \
      SLURM_ARRAY_TASK_COUNT=3 PORT=$(free_port) \
      bash examples/slurm/sweep-array.sbatch >"$work/array-$job-$t.log" 2>&1 &
    pids+=($!)
  done
  for t in "${pids[@]}"; do
    wait "$t" || { cat "$work"/array-"$job"-*.log; echo "FAIL: an array task failed"; exit 1; }
  done
}

array 4242 0 1 2
if ! SWEEP_JOB=4242 SLURM_JOB_ID=4243 MIN_KNEE=2 bash examples/slurm/sweep-gate.sbatch >"$work/gate1.log" 2>&1; then
  cat "$work/gate1.log"; echo "FAIL: the gate of a whole sweep failed"; exit 1
fi
tail -n 1 "$work/gate1.log"

array 4343 0 2
if SWEEP_JOB=4343 SLURM_JOB_ID=4344 bash examples/slurm/sweep-gate.sbatch >"$work/gate2.log" 2>&1; then
  cat "$work/gate2.log"; echo "FAIL: the gate passed with shard 1 missing"; exit 1
fi
grep -q "only 2 of 3 shards complete" "$work/gate2.log" && grep -q "missing: 1/3" "$work/gate2.log" || {
  cat "$work/gate2.log"; echo "FAIL: the gate did not name the missing shard"; exit 1
}
grep -m1 "only 2 of 3" "$work/gate2.log"

python3 - <<'PY'
import sys
try:
    import yaml
except ImportError:
    print("python3 yaml not installed: the manifest is parsed by tests/it/sweep_shards.rs only")
    sys.exit(0)
doc = yaml.safe_load(open("examples/kubernetes/sweep-indexed-job.yaml"))
spec = doc["spec"]
assert doc["kind"] == "Job" and spec["completionMode"] == "Indexed"
assert spec["completions"] == spec["parallelism"]
print("examples/kubernetes/sweep-indexed-job.yaml parses: an Indexed Job of", spec["completions"])
PY
echo "fleet examples: OK"
