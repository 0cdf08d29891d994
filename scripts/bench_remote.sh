#!/usr/bin/env bash
# Measures `benchkeep query` and `benchkeep compare` over 10,000 runs in an s3:// store on
# moto (a real S3-compatible server on 127.0.0.1): the first command on a fresh spool of
# a store written without metadata packs (one LIST + one GET per run; that pull then
# writes the packs), a fresh spool once the packs exist (two LISTs + 64 pack GETs), then
# warm ones (one LIST, nothing new to fetch). Prints the best and median of 3 runs of each
# warm command.
#
#   scripts/bench_remote.sh [N_RUNS]      (default 10000; needs python3, moto as in
#                                          scripts/with_moto.sh, and boto3 beside moto;
#                                          BENCHKEEP_BIN=path skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
if [ -z "${BENCHKEEP_TEST_S3_ENDPOINT:-}" ]; then
  exec scripts/with_moto.sh "$0" "$@"
fi
if [ -z "${BENCHKEEP_BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BENCHKEEP_BIN:-$PWD/target/release/benchkeep}
work=${TMPDIR:-/tmp}/benchkeep-bench-remote-$n
rm -rf "$work"; mkdir -p "$work/metadata"
"$bin" --store "$work/template" demo --quiet >/dev/null
py=$(head -1 "$(command -v "$BENCHKEEP_MOTO")" | sed -n 's/^#!//p'); py=${py:-python3}
"$py" -c 'import boto3' 2>/dev/null || py=python3
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
  AWS_ENDPOINT_URL=$BENCHKEEP_TEST_S3_ENDPOINT AWS_ALLOW_HTTP=true
"$py" - "$work" "$n" <<'PY'
import copy, glob, json, os, random, sys, boto3
from concurrent.futures import ThreadPoolExecutor
work, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
tpl = json.load(open(sorted(glob.glob(f"{work}/template/metadata/*.json"))[0]))
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
s3.create_bucket(Bucket="bench")
plats = ["vllm-offline", "vllm-serve", "ollama", "sglang"]
models = ["gemma3-4b", "gemma3:12b", "google/gemma-3-4b-it", "llama3.2"]
def one(i):
    m = copy.deepcopy(tpl)
    p, model = plats[i % 4], models[(i // 4) % 4]
    day = 1 + i % 28
    tid = f"{p}-{model.replace('/', '-').replace(':', '-')}-{1000+i}-2026-10-{day:02d}"
    m.update(test_id=tid, platform=p, model=model,
             timestamp=f"2026-10-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z")
    m["test"]["output_file"] = f"raw/{tid}.jsonl"
    m["labels"] = {"gpu": "rtx4080", "batch": str(i % 10)}
    m["results"]["throughput_tokens_per_sec"] = random.random() * 2000
    s3.put_object(Bucket="bench", Key=f"team/metadata/{tid}.json",
                  Body=json.dumps(m, indent=2).encode())
with ThreadPoolExecutor(16) as ex:
    list(ex.map(one, range(n)))
PY
url=s3://bench/team
"$bin" init --store "$url" >/dev/null
# Seconds a command took; a command that fails stops the script with its stderr (a failed
# run must never print a time).
secs() {
  local t err=$work/secs.err
  t=$(date +%s.%N)
  "$@" >/dev/null 2>"$err" || { cat "$err" >&2; echo "failed: $*" >&2; exit 1; }
  echo "$(date +%s.%N) - $t" | bc
}
echo "store: $url on moto, $n runs"
t=$(secs "$bin" --store "$url" --spool "$work/spool0" compare)
echo "compare, fresh spool, no packs yet (LIST + $n GETs, then the packs are written):  $t s"
# The second figure is only the packs' path if the first pull wrote them.
packs=$(AWS_ENDPOINT_URL=$BENCHKEEP_TEST_S3_ENDPOINT "$py" -c 'import boto3; print(boto3.client("s3").list_objects_v2(Bucket="bench", Prefix="team/analysis/packs/").get("KeyCount", 0))')
[ "$packs" -gt 0 ] || { echo "no metadata packs were written by the first pull" >&2; exit 1; }
t=$(secs "$bin" --store "$url" --spool "$work/spool" compare)
echo "compare, fresh spool, with packs ($packs packs; 2 LISTs + a GET per pack):  $t s"
time_ms() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
ts = []
for _ in range(3):
    t = time.perf_counter()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    ts.append((time.perf_counter() - t) * 1000)
ts.sort()
print(f"best {ts[0]:.0f} ms, median {ts[1]:.0f} ms")
PY
}
echo "compare, warm spool (one LIST):          $(time_ms "$bin" --store "$url" --spool "$work/spool" compare)"
echo "query --platform ollama, warm spool:     $(time_ms "$bin" --store "$url" --spool "$work/spool" query --platform ollama)"
echo "compare, the same store as a directory:  $(time_ms "$bin" --store "$work/spool" compare)"
rm -rf "$work"
