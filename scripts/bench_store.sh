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
work=${TMPDIR:-/tmp}/benchkeep-bench-store-v2-$n
if [ ! -f "$work/.done" ]; then
  rm -rf "$work"; mkdir -p "$work/metadata" "$work/raw"
  # A real run's metadata (from `benchkeep demo`: latency, server, load blocks, ~4 KB) is the
  # template, varied per run.
  "$bin" --store "$work/template" demo --quiet >/dev/null
  python3 - "$work" "$n" <<'PY'
import copy, glob, json, random, sys
work, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
tpl = json.load(open(sorted(glob.glob(f"{work}/template/metadata/*.json"))[0]))
plats = ["vllm-offline", "vllm-serve", "ollama", "sglang"]
models = ["gemma3-4b", "gemma3:12b", "google/gemma-3-4b-it", "llama3.2"]
for i in range(n):
    m = copy.deepcopy(tpl)
    p, model = plats[i % 4], models[(i // 4) % 4]
    day = 1 + i % 28
    tid = f"{p}-{model.replace('/', '-').replace(':', '-')}-{1000+i}-2026-10-{day:02d}"
    m.update(test_id=tid, platform=p, model=model,
             timestamp=f"2026-10-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z")
    m["test"]["output_file"] = f"raw/{tid}.jsonl"
    m["test"]["num_requests"] = 1000 + i
    m["labels"] = {"gpu": "rtx4080", "batch": str(i % 10)}
    r = m["results"]
    r["throughput_tokens_per_sec"] = random.random() * 2000
    r["output_tokens_per_sec"] = random.random() * 1000
    r["total_time_seconds"] = 100 + random.random() * 50
    with open(f"{work}/metadata/{tid}.json", "w") as f:
        json.dump(m, f, indent=2)
PY
  rm -rf "$work/template"
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
