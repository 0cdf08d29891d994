#!/usr/bin/env bash
# The `analyze` performance goal (issue 2): importing a 500,000-line, ~530 MB
# chat.completion file that is already in the store's raw/ must be at least 20x faster
# than the seed's analyze_benchmark.py on the same file, on the same machine, in the same
# run of this script, with a peak memory (max RSS) under 100 MB.
#
# Usage: scripts/bench_analyze.sh            (RUNS=5 LINES=500000 BENCH_DIR=... to change)
#
# The big file is generated once under $BENCH_DIR (default ${TMPDIR:-/tmp}/benchkeep-bench)
# and reused. The two commands run alternately, RUNS times each, under /usr/bin/time -v
# (or a python fallback giving the same two numbers). Reported: the best and the median
# wall time of each, and the largest max RSS. The goal is judged on the best times: on a
# shared machine the slower runs measure the neighbours (Python's timeit documentation
# makes the same argument for taking the minimum); the medians are printed next to them,
# and so is the load average, so a noisy run is visible.
# Exit code: 0 when both goals are met, 1 when not.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
lines=${LINES:-500000}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/benchkeep-bench}
target=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$work"

echo "== building (release)" >&2
(cd "$repo" && cargo build --release --quiet --bin benchkeep --example gen_chat_jsonl)
bin=$target/release/benchkeep

file=$work/chat-$lines.jsonl
if [[ ! -s $file ]]; then
    echo "== generating $file ($lines lines)" >&2
    "$target/release/examples/gen_chat_jsonl" "$file.tmp" "$lines"
    mv "$file.tmp" "$file"
fi

# A fresh store whose raw/ already holds the file (a hard link when possible: same bytes).
store=$work/store
rm -rf "$store"
mkdir -p "$store/raw"
raw=$store/raw/$(basename "$file")
ln "$file" "$raw" 2>/dev/null || cp "$file" "$raw"
size=$(wc -c <"$raw")
echo "== input: $raw ($lines lines, $size bytes)" >&2

# The seed's script writes ./benchmarks/metadata: run it in a scratch directory.
pywork=$work/seed-cwd
rm -rf "$pywork"
mkdir -p "$pywork"

# measure DIR CMD...: run CMD in DIR, print "wall_seconds max_rss_kb".
measure() {
    local dir=$1
    shift
    local out=$work/time.out
    if [[ -x /usr/bin/time ]]; then
        (cd "$dir" && /usr/bin/time -v -o "$out" "$@" >/dev/null)
        python3 - "$out" <<'EOF'
import sys
wall = rss = None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("Elapsed (wall clock) time"):
        parts = line.rsplit(" ", 1)[1].split(":")
        wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts)))
    elif line.startswith("Maximum resident set size"):
        rss = int(line.rsplit(" ", 1)[1])
print(wall, rss)
EOF
    else
        (cd "$dir" && python3 - "$@" <<'EOF'
import resource, subprocess, sys, time
start = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
wall = time.monotonic() - start
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
EOF
        )
    fi
}

# Warm the page cache so neither side pays for the disk.
cat "$raw" >/dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

py_results=()
bk_results=()
for ((i = 1; i <= runs; i++)); do
    echo "== run $i/$runs: seed analyze_benchmark.py" >&2
    py_results+=("$(measure "$pywork" python3 "$repo/scripts/seed/analyze_benchmark.py" \
        --platform p --model m --input "$raw" --config '{}' --total-time 100)")
    echo "== run $i/$runs: benchkeep analyze" >&2
    bk_results+=("$(measure "$work" "$bin" --store "$store" analyze \
        --platform p --model m --input "$raw" --config '{}' --total-time 100)")
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

python3 - "$runs" "$size" "$load_before" "$load_after" "${py_results[@]}" "${bk_results[@]}" <<'EOF'
import statistics, sys
runs, size = int(sys.argv[1]), int(sys.argv[2])
load_before, load_after = sys.argv[3], sys.argv[4]
rows = [tuple(map(float, r.split())) for r in sys.argv[5:]]
py, bk = rows[:runs], rows[runs:]
def stats(xs):
    walls = [w for w, _ in xs]
    return min(walls), statistics.median(walls), max(r for _, r in xs) / 1024, walls
py_best, py_med, py_rss, py_walls = stats(py)
bk_best, bk_med, bk_rss, bk_walls = stats(bk)
ratio, ratio_med = py_best / bk_best, py_med / bk_med
print(f"input: {size / 1e6:.0f} MB; load average before {load_before}, after {load_after}")
print(f"seed analyze_benchmark.py: best {py_best:.2f} s, median {py_med:.2f} s "
      f"({', '.join(f'{w:.2f}' for w in py_walls)}), max RSS {py_rss:.0f} MB")
print(f"benchkeep analyze:         best {bk_best:.3f} s, median {bk_med:.3f} s "
      f"({', '.join(f'{w:.3f}' for w in bk_walls)}), max RSS {bk_rss:.1f} MB")
print(f"speedup: {ratio:.1f}x best-to-best, {ratio_med:.1f}x median-to-median (goal >= 20x); "
      f"benchkeep peak memory {bk_rss:.1f} MB (goal < 100 MB)")
ok = ratio >= 20 and bk_rss < 100
print("goal met" if ok else "GOAL NOT MET")
sys.exit(0 if ok else 1)
EOF
