#!/usr/bin/env bash
# Import speed and memory: a folder of N result files (mixed formats, about 200 MB in all
# by default) imported into an empty store, then imported again (everything skipped).
# Prints the wall time, CPU time and peak RSS of each pass. Goal: under 10 s and bounded
# memory.
#
#   scripts/bench_import.sh [FILES] [BENCHKEEP]
# e.g. scripts/bench_import.sh 1000 target/release/benchkeep
set -euo pipefail
N=${1:-1000}
BK=${2:-target/release/benchkeep}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$ROOT/tests/fixtures/import" "$WORK/in" "$N" <<'PY'
import json, os, sys, random
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out)
gl = json.load(open(os.path.join(src, "guidellm/benchmarks.json")))
serve = open(os.path.join(src, "vllm_serve/append.jsonl")).read().split("\n")[0]
ib = json.load(open(os.path.join(src, "inference_benchmarker/org_tiny_2026-03-01-10-15-00.json")))
thr = json.load(open(os.path.join(src, "vllm_throughput/throughput.json")))
rnd = random.Random(1)
for i in range(n):
    k = i % 4
    if k == 0:  # a big GuideLLM report: the real one, its requests repeated (~0.8 MB)
        d = json.loads(json.dumps(gl)); d["config"]["spec"]["seed"] = {"kind": "static", "value": i}
        for b in d["benchmarks"]:
            b["requests"]["successful"] = b["requests"]["successful"] * 8
            n_ok = len(b["requests"]["successful"])
            b["metrics"]["request_totals"]["successful"] = n_ok
            b["metrics"]["request_totals"]["total"] = n_ok
        open(f"{out}/g{i}.json", "w").write(json.dumps(d))
    elif k == 1:  # vllm bench serve --append-result, 3 detailed runs
        v = json.loads(serve); v["date"] = f"20260301-{i:06d}"
        open(f"{out}/s{i}.jsonl", "w").write("\n".join(json.dumps(v) for _ in range(3)))
    elif k == 2:
        d = json.loads(json.dumps(ib)); d["config"]["run_id"] = f"r{i}"
        open(f"{out}/ib{i}.json", "w").write(json.dumps(d))
    else:
        d = dict(thr); d["elapsed_time"] = 10 + rnd.random()
        open(f"{out}/t{i}.json", "w").write(json.dumps(d))
PY
du -sh "$WORK/in" | sed 's/^/input: /'
echo "files: $(find "$WORK/in" -type f | wc -l)"
echo "cores: $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# CPU seconds (user + sys) are printed too: on a shared, loaded machine the wall time says
# more about the other processes than about benchkeep.
for pass in first again; do
  /usr/bin/time -f "$pass pass: %e s wall, %U s user + %S s sys CPU, %M KiB peak RSS" \
    "$BK" --store "$WORK/store" import "$WORK/in" > "$WORK/$pass.out" || echo "(exit $?)"
  tail -1 "$WORK/$pass.out"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
