#!/usr/bin/env bash
# Measures `benchkeep compare` and `benchkeep query` over a store of 10,000 metadata files.
# Goal (issue 2): each answers in under 200 ms. Prints the best and median of 7 runs each.
#
#   scripts/bench_store.sh [N_RUNS]      (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
cargo build --release --quiet
bin=$PWD/target/release/benchkeep
work=${TMPDIR:-/tmp}/benchkeep-bench-store-$n
if [ ! -f "$work/.done" ]; then
  rm -rf "$work"; mkdir -p "$work/metadata" "$work/raw"
  python3 - "$work" "$n" <<'PY'
import json, sys, random
work, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
plats = ["vllm-offline", "vllm-serve", "ollama", "sglang"]
models = ["gemma3-4b", "gemma3:12b", "google/gemma-3-4b-it", "llama3.2"]
for i in range(n):
    p, m = plats[i % 4], models[(i // 4) % 4]
    day = 1 + i % 28
    tid = f"{p}-{m.replace('/', '-').replace(':', '-')}-{1000+i}-2026-10-{day:02d}"
    lat = {k: {"count": 1000, "mean": 10.0, "p50": 9.0, "p90": 15.0, "p95": 17.0, "p99": 20.0, "max": 30.0} for k in ("ttft", "tpot", "itl", "e2e")}
    meta = {
        "schema_version": 1, "test_id": tid, "timestamp": f"2026-10-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
        "platform": p, "model": m,
        "gpu": {"name": "RTX 4080", "vram_total_gb": 16, "vram_used_gb": 14.4},
        "config": {"max_model_len": 4096, "gpu_memory_utilization": 0.9, "enable_prefix_caching": True},
        "test": {"num_requests": 1000 + i, "input_file": "batch_5k.jsonl", "output_file": f"raw/{tid}.jsonl",
                 "input_sha256": "%064x" % (i % 50), "raw_sha256": "%064x" % i, "raw_bytes": 1000},
        "results": {"success_count": 1000 + i, "failure_count": i % 3, "total_time_seconds": 100 + random.random() * 50,
                    "model_load_time_seconds": 25.8, "throughput_tokens_per_sec": random.random() * 2000,
                    "throughput_requests_per_sec": random.random() * 10, "avg_prompt_tokens": 850, "avg_completion_tokens": 450,
                    "gpu_utilization_percent": 96, "output_tokens_per_sec": random.random() * 1000,
                    "total_prompt_tokens": 850000, "total_completion_tokens": 450000, "unparseable_lines": 0,
                    "errors_by_kind": {"http_status": i % 3} if i % 3 else {}, "latency_ms": lat},
        "status": "completed", "tool": {"name": "benchkeep", "version": "0.1.0"},
        "host": {"hostname": "bench", "os": "linux-x86_64", "cpus": 2}, "labels": {"gpu": "rtx4080", "batch": str(i % 10)},
        "source": {"kind": "analyze", "format": "openai"},
    }
    with open(f"{work}/metadata/{tid}.json", "w") as f:
        json.dump(meta, f, indent=2)
PY
  touch "$work/.done"
fi
echo "store: $work ($(ls "$work/metadata" | wc -l) metadata files, $(du -sh "$work/metadata" | cut -f1))"
"$bin" --store "$work" compare >/dev/null   # first call writes the derived files
time_ms() {  # best and median of 7 runs of "$@", in ms
  python3 - "$@" <<'PY'
import subprocess, sys, time
ts = []
for _ in range(7):
    t = time.perf_counter()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    ts.append((time.perf_counter() - t) * 1000)
ts.sort()
print(f"best {ts[0]:.0f} ms, median {ts[3]:.0f} ms")
PY
}
echo "compare (table):                         $(time_ms "$bin" --store "$work" compare)"
echo "compare --platform ollama --format csv:  $(time_ms "$bin" --store "$work" compare --platform ollama --format csv)"
echo "query --model gemma3-4b --metric ...:    $(time_ms "$bin" --store "$work" query --platform vllm-offline --model gemma3-4b --metric throughput_tokens_per_sec)"
echo "query --platform ollama (headline):      $(time_ms "$bin" --store "$work" query --platform ollama)"
