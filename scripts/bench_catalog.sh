#!/usr/bin/env bash
# The catalog's goals (issue 13, item 2): on a local store of 100,000 runs `query` answers
# in under 100 ms and `compare` of all runs in under 1 s, through the catalog
# (analysis/catalog/part-NN.jsonl, docs/catalog.md). Prints, with a release build: the old
# path (every metadata file read: --no-catalog), the cold catalog build (query, compare),
# the catalog's size, the warm figures (the state file trusted: no metadata file looked
# at), one new run (a listing of metadata/ and one part rewritten), the ratios. Best and
# median of several runs each.
#
#   scripts/bench_catalog.sh [N_RUNS]          (default 100000; a temporary store, deleted)
#   BENCH_STORE=DIR_OR_URL scripts/bench_catalog.sh
#       times an existing store instead (any --store value, e.g. a shared store; nothing is
#       generated or deleted, and the "one new run" step is skipped)
#   BENCH_BIN=path/to/benchkeep   skips the build; KEEP=1 keeps the generated store.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --quiet
  bin=$PWD/target/release/benchkeep
else
  bin=$BENCH_BIN
fi
reps=${REPS:-5}

if [ -n "${BENCH_STORE:-}" ]; then
  store=$BENCH_STORE
  generated=0
else
  store=$(mktemp -d "${TMPDIR:-/tmp}/benchkeep-bench-catalog-XXXXXX")
  generated=1
  [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$store"' EXIT
  mkdir -p "$store/metadata" "$store/raw" "$store/analysis" "$store/reports"
  # A real run's metadata (from `benchkeep demo`: latency, server, load blocks) is the
  # template, varied per run: 8 platforms, 16 models, 28 days, labels.
  "$bin" --store "$store.tpl" demo --quiet >/dev/null
  t0=$(date +%s.%N)
  python3 - "$store" "$n" <<'PY'
import copy, glob, json, random, sys
store, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
tpl = json.load(open(sorted(glob.glob(f"{store}.tpl/metadata/*.json"))[0]))
plats = ["vllm-offline", "vllm-serve", "ollama", "sglang", "tgi", "llamacpp", "trtllm", "mlc"]
models = [f"model-{k}" for k in range(16)]
for i in range(n):
    m = copy.deepcopy(tpl)
    p, model = plats[i % 8], models[(i // 8) % 16]
    day = 1 + i % 28
    tid = f"{p}-{model}-{100000 + i}-2026-10-{day:02d}"
    m.update(test_id=tid, platform=p, model=model,
             timestamp=f"2026-10-{day:02d}T{i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}Z")
    m["test"]["output_file"] = f"raw/{tid}.jsonl"
    m["test"]["num_requests"] = 1000 + i
    m["labels"] = {"gpu": "h100" if i % 2 else "rtx4080", "batch": str(i % 10)}
    r = m["results"]
    r["throughput_tokens_per_sec"] = random.random() * 2000
    r["output_tokens_per_sec"] = random.random() * 1000
    r["total_time_seconds"] = 100 + random.random() * 50
    with open(f"{store}/metadata/{tid}.json", "w") as f:
        json.dump(m, f, indent=2)
PY
  rm -rf "$store.tpl"
  echo "generated $n runs in $(python3 -c "import time; print(round(time.time() - $t0))") s"
fi
s=(--store "$store")
if [ -d "$store/metadata" ]; then
  echo "store: $store ($(ls "$store/metadata" | wc -l) metadata files, $(du -sh "$store/metadata" | cut -f1))"
fi

time_ms() {  # REPS NAME CMD...: best and median in ms, the value also kept in $best
  python3 - "$@" <<'PY'
import subprocess, sys, time
reps, name, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
ts = []
for _ in range(reps):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    ts.append((time.perf_counter() - t) * 1000)
ts.sort()
print(f"{name:<44} best {ts[0]:7.0f} ms, median {ts[len(ts) // 2]:7.0f} ms")
with open("/dev/fd/3", "a") as f:
    f.write(f"{name}\t{ts[0]:.1f}\n")
PY
}
figs=$(mktemp)
exec 3>>"$figs"

# The derived files (COMPARISON.md, summary.json) are written by the producers after each
# run; here by one first compare over every file.
t0=$(date +%s.%N)
"$bin" "${s[@]}" compare --no-catalog >/dev/null
echo "first compare (derived files written):        $(python3 -c "import time; print(round((time.time() - $t0) * 1000))") ms"

time_ms 3 "old: query --no-catalog" "$bin" "${s[@]}" query --no-catalog --platform ollama
time_ms 3 "old: compare --no-catalog" "$bin" "${s[@]}" compare --no-catalog

cat_dir="$store/analysis/catalog"
drop_catalog() { rm -rf "$cat_dir" "$store/analysis/catalog.jsonl"; }
if [ "$generated" = 1 ] || [ -d "$cat_dir" ]; then
  drop_catalog
  time_ms 1 "cold: compare (builds the catalog)" "$bin" "${s[@]}" compare
  drop_catalog
fi
time_ms 1 "cold: query (builds the catalog)" "$bin" "${s[@]}" query --platform ollama
if [ -d "$cat_dir" ]; then
  rows=$(cat "$cat_dir"/*.jsonl | wc -l); bytes=$(cat "$cat_dir"/*.jsonl | wc -c)
  echo "catalog: $bytes bytes in $(ls "$cat_dir" | wc -l) parts, $rows rows ($((bytes / (rows > 0 ? rows : 1))) bytes a row), $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['racy'])" "$cat_dir/.state.json" | sed 's/True/racy (metadata\/ changed within 2 s: the next reader lists it)/;s/False/state trusted by the next reader/')"
fi
# A metadata/ changed within 2 s of the cold build is not trusted (the racy rule): the
# first warm reader lists it once and writes a state it can trust.
"$bin" "${s[@]}" query --platform ollama >/dev/null

time_ms "$reps" "warm: query --platform ollama" "$bin" "${s[@]}" query --platform ollama
time_ms "$reps" "warm: query --metric (latest run)" "$bin" "${s[@]}" query --metric throughput_tokens_per_sec
time_ms "$reps" "warm: compare (all runs, table)" "$bin" "${s[@]}" compare
time_ms "$reps" "warm: compare --format csv (all runs)" "$bin" "${s[@]}" compare --format csv
time_ms "$reps" "warm: compare --platform ollama --format csv" "$bin" "${s[@]}" compare --platform ollama --format csv

if [ "$generated" = 1 ]; then
  # One new run, as a producer would add it (without its derive step): the next query
  # lists metadata/ (its mtime moved), reads that one file and rewrites one part.
  f=$(cd "$store/metadata" && for x in *.json; do echo "$x"; break; done)  # no SIGPIPE
  python3 - "$store" "$f" <<'PY'
import json, sys
store, f = sys.argv[1], sys.argv[2]
m = json.load(open(f"{store}/metadata/{f}"))
m["test_id"] = "zz-new-run-2026-10-30"
m["timestamp"] = "2026-10-30T00:00:00Z"
m["test"]["output_file"] = "raw/zz-new-run-2026-10-30.jsonl"
json.dump(m, open(f"{store}/metadata/zz-new-run-2026-10-30.json", "w"), indent=2)
PY
  time_ms 1 "incremental: query after one new run" "$bin" "${s[@]}" query --platform ollama
  # Within 2 s of the change the state is racy: readers list metadata/ until then.
  sleep 2.1
  time_ms 1 "after it, 2 s later: query (lists once more)" "$bin" "${s[@]}" query --platform ollama
  time_ms 3 "after it: query (state trusted)" "$bin" "${s[@]}" query --platform ollama
fi
exec 3>&-
python3 - "$figs" <<'PY'
import sys
f = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[1]))
f = {k: float(v) for k, v in f.items()}
q_old, c_old = f["old: query --no-catalog"], f["old: compare --no-catalog"]
q, c = f["warm: query --platform ollama"], f["warm: compare (all runs, table)"]
print(f"ratio query:   {q_old / q:.1f}x faster ({q_old:.0f} -> {q:.0f} ms; goal < 100 ms: {'met' if q < 100 else 'MISSED'})")
print(f"ratio compare: {c_old / c:.1f}x faster ({c_old:.0f} -> {c:.0f} ms; goal < 1000 ms: {'met' if c < 1000 else 'MISSED'})")
PY
rm -f "$figs"
