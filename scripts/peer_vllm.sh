#!/usr/bin/env bash
# Side-by-side checks of benchkeep against a real vLLM (CPU build, tiny random-weight model)
# and its own client, `vllm bench serve`. Not run by CI: it needs the peer environment
# (../shared/peers/vllm-cpu.sh setup DIR, ~5 GB, ~5 min) and takes about 5 minutes.
# What it found is written up in docs/peer-checks.md.
#
#   scripts/peer_vllm.sh [STEP...]        steps: sim serve batch (default: all three)
#
#   sim    benchkeep simulate --no-delay --workers 1 (CPU 1) driven by `vllm bench serve`
#          and by `benchkeep run` (CPU 0): concurrency 64, 32-token prompts, 256-token answers;
#          req/s, output tok/s, TTFT p50 of each and their ratios.
#   serve  a real `vllm serve` (vllm-cpu.sh serve): benchkeep run streamed, --no-stream and
#          --api openai-completions (40 requests, 64 words in, 32 tokens out, concurrency 4),
#          then `vllm bench serve` and `benchkeep run` alternately on fresh seeds (200
#          requests, ~316 prompt tokens each) with vLLM's prefix-cache hits counted per run;
#          error paths (max_tokens > max_model_len, unknown model).
#   batch  benchkeep record -- vllm run-batch on 10 good lines + 1 line with max_tokens 5000
#          (a per-line 400), benchkeep analyze on the same output, and record of a run-batch
#          that fails as a whole (a /v1/completions line).
#
# Environment: VLLM_PEER_DIR (default /tmp/vllm-peer, must exist: run the peer's setup),
# PEER (default ../shared/peers/vllm-cpu.sh next to the repository), PORT (default 18123),
# WORK (default: a new temp dir, kept, holds every store, log and result JSON),
# SIM_PROMPTS (vllm bench serve prompts against the simulator, default 10000),
# SIM_REQUESTS (benchkeep run requests against the simulator, default 20000),
# REPEATS (default 3). Only processes this script starts are stopped, by pid.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
peer=${PEER:-$root/../shared/peers/vllm-cpu.sh}
vdir=${VLLM_PEER_DIR:-/tmp/vllm-peer}
port=${PORT:-18123}
sim_prompts=${SIM_PROMPTS:-10000}
sim_requests=${SIM_REQUESTS:-20000}
repeats=${REPEATS:-3}
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(sim serve batch)

[[ -x $peer ]] || { echo "peer_vllm: $peer not found (set PEER)" >&2; exit 2; }
[[ -x $vdir/venv/bin/vllm ]] || { echo "peer_vllm: run '$peer setup $vdir' first" >&2; exit 2; }
case $vdir in "$root"/*) echo "peer_vllm: VLLM_PEER_DIR must be outside the repository" >&2; exit 2 ;; esac

cd "$root"
cargo build --release --quiet --bin benchkeep
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release/benchkeep"
work=${WORK:-$(mktemp -d /tmp/peer-vllm.XXXXXX)}
mkdir -p "$work"
echo "peer_vllm: $("$bin" --version), $(git rev-parse --short HEAD 2>/dev/null || echo '?'); work dir $work" >&2

pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

pin_server=()
pin_client=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
    pin_server=(taskset -c 1)
    pin_client=(taskset -c 0)
fi

# The headline figures of a store's latest run, one line.
bk_line() { # STORE LABEL
    "$bin" --store "$1" query --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
d = d[-1] if isinstance(d, list) else d
print("%-8s ok=%d req/s=%.2f out_tok/s=%.0f ttft_p50=%s ms tpot_p50=%s ms e2e_p50=%s ms avg_prompt=%s avg_completion=%s id=%s" % (
    sys.argv[1], d["success_count"], d["throughput_requests_per_sec"], d["output_tokens_per_sec"],
    d.get("ttft.p50"), d.get("tpot.p50"), d.get("e2e.p50"), d["avg_prompt_tokens"],
    d["avg_completion_tokens"], d["test_id"]))' "$2"
}
# The same figures from a `vllm bench serve --save-result` JSON.
vb_line() { # FILE LABEL
    python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
n = d["completed"]
print("%-8s ok=%d req/s=%.2f out_tok/s=%.0f ttft_p50=%.2f ms tpot_p50=%.3f ms e2e_p50=%.2f ms avg_prompt=%.1f avg_completion=%.1f" % (
    sys.argv[2], n, d["request_throughput"], d["output_throughput"], d["median_ttft_ms"],
    d["median_tpot_ms"], d["median_e2el_ms"], d["total_input_tokens"] / n,
    d["total_output_tokens"] / n))
EOF
}

step_sim() {
    echo "== sim: vllm bench serve vs benchkeep run against benchkeep simulate --no-delay"
    "${pin_server[@]}" "$bin" simulate --port 0 --no-delay --workers 1 --max-model-len 1000000 \
        >"$work/sim.out" 2>"$work/sim.err" &
    local sim=$!
    pids+=("$sim")
    for _ in $(seq 1 200); do grep -q '^listening on ' "$work/sim.out" && break; sleep 0.05; done
    local addr
    addr=$(sed -n 's#^listening on http://##p' "$work/sim.out" | head -n1)
    [[ -n $addr ]] || { echo "peer_vllm: the simulator did not start" >&2; exit 1; }
    : >"$work/sim_rows.jsonl"
    local i
    for i in $(seq 1 "$repeats"); do
        "${pin_client[@]}" "$peer" bench "$vdir" "http://$addr" --model sim-model \
            --dataset-name random --random-input-len 32 --random-output-len 256 \
            --num-prompts "$sim_prompts" --max-concurrency 64 --ignore-eos \
            --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,99 --disable-tqdm \
            --save-result --result-dir "$work" --result-filename "vbench_sim_$i.json" --seed "$i" \
            >"$work/vbench_sim_$i.log" 2>&1
        vb_line "$work/vbench_sim_$i.json" "vbench#$i"
        "${pin_client[@]}" "$bin" --store "$work/store-sim-$i" run --platform sim \
            --model sim-model --base-url "http://$addr" --synthetic --input-tokens 32 \
            --output-tokens 256 --num-requests "$sim_requests" --concurrency 64 --quiet \
            >"$work/bk_sim_$i.log" 2>&1
        bk_line "$work/store-sim-$i" "bk#$i"
        python3 - "$work/vbench_sim_$i.json" "$work/store-sim-$i" >>"$work/sim_rows.jsonl" <<'EOF'
import glob, json, sys
v = json.load(open(sys.argv[1]))
m = json.load(open(glob.glob(sys.argv[2] + "/metadata/*.json")[0]))["results"]
print(json.dumps({"v_rps": v["request_throughput"], "v_tok": v["output_throughput"],
                  "v_ttft": v["median_ttft_ms"], "b_rps": m["throughput_requests_per_sec"],
                  "b_tok": m["output_tokens_per_sec"], "b_ttft": m["latency_ms"]["ttft"]["p50"]}))
EOF
    done
    kill "$sim"; wait "$sim" 2>/dev/null || true
    python3 - "$work/sim_rows.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda k: statistics.median(r[k] for r in rows)
print("median   vllm bench serve: %.0f req/s, %.0f output tok/s, TTFT p50 %.2f ms" % (med("v_rps"), med("v_tok"), med("v_ttft")))
print("median   benchkeep run:    %.0f req/s, %.0f output tok/s, TTFT p50 %.2f ms" % (med("b_rps"), med("b_tok"), med("b_ttft")))
print("ratio    benchkeep / vllm bench serve: req/s %.1fx, tok/s %.1fx, TTFT p50 %.3fx" % (
    med("b_rps") / med("v_rps"), med("b_tok") / med("v_tok"), med("b_ttft") / med("v_ttft")))
EOF
}

step_serve() {
    echo "== serve: a real vLLM on 127.0.0.1:$port"
    local url="http://127.0.0.1:$port" store="$work/store-vllm" i
    "$peer" serve "$vdir" "$port" >"$work/serve.log" 2>&1 &
    local srv=$!
    pids+=("$srv")
    for i in $(seq 1 150); do
        curl -sf "$url/health" >/dev/null && break
        kill -0 "$srv" 2>/dev/null || { echo "peer_vllm: vllm serve exited; see $work/serve.log" >&2; exit 1; }
        sleep 2
    done
    curl -sf "$url/health" >/dev/null || { echo "peer_vllm: vllm serve not ready" >&2; exit 1; }
    local common=(--platform vllm-serve --model tiny --base-url "$url" --synthetic
        --input-tokens 64 --output-tokens 32 --num-requests 40 --concurrency 4 --quiet)
    "$bin" --store "$store" run "${common[@]}" --label variant=stream >"$work/bk_stream.log" 2>&1
    bk_line "$store" "stream"
    "$bin" --store "$store" run "${common[@]}" --no-stream --label variant=no-stream >"$work/bk_nostream.log" 2>&1
    bk_line "$store" "nostream"
    "$bin" --store "$store" run "${common[@]}" --api openai-completions --label variant=completions \
        >"$work/bk_completions.log" 2>&1
    bk_line "$store" "compl"
    "$bin" --store "$store" query --label variant=stream --metric server --json | python3 -c '
import json, sys
s = json.load(sys.stdin)["value"]
c = s["details"]["cache_config"]
print("server   version=%s max_model_len=%s block_size=%s enable_prefix_caching=%s num_gpu_blocks=%s gpu_memory_utilization=%s" % (
    s["version"], s["max_model_len"], c["block_size"], c["enable_prefix_caching"], c["num_gpu_blocks"], c["gpu_memory_utilization"]))'
    python3 - "$store" <<'EOF'
import glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/raw/*.jsonl")):
    rs = [json.loads(l) for l in open(f)]
    print("raw      %s: %d ok of %d, completion_tokens %s, finish %s" % (
        f.rsplit("/", 1)[1], sum(r["ok"] for r in rs), len(rs),
        sorted({r.get("completion_tokens") for r in rs}, key=str), sorted({str(r.get("finish_reason")) for r in rs})))
EOF
    hits() { curl -s "$url/metrics" | sed -n 's/^vllm:prefix_cache_hits_total{[^}]*} //p'; }
    local h0 h1 seed
    for seed in 101 102 103; do
        h0=$(hits)
        "$peer" bench "$vdir" "$url" --dataset-name random --random-input-len 300 \
            --random-output-len 32 --num-prompts 200 --max-concurrency 4 --ignore-eos \
            --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,90,99 --disable-tqdm \
            --save-result --result-dir "$work" --result-filename "vbench_real_$seed.json" \
            --seed "$seed" >"$work/vbench_real_$seed.log" 2>&1
        h1=$(hits)
        echo "$(vb_line "$work/vbench_real_$seed.json" "vb s$seed") cache_hit_tokens=$(python3 -c "print(int($h1-$h0))")"
        h0=$(hits)
        "$bin" --store "$work/store-pair-$seed" run --platform vllm-serve --model tiny --base-url "$url" \
            --synthetic --input-tokens 64 --output-tokens 32 --num-requests 200 --concurrency 4 \
            --seed "$seed" --quiet >"$work/bk_pair_$seed.log" 2>&1
        h1=$(hits)
        echo "$(bk_line "$work/store-pair-$seed" "bk s$seed") cache_hit_tokens=$(python3 -c "print(int($h1-$h0))")"
    done
    local rc
    set +e
    "$bin" --store "$work/store-err" run --platform vllm-serve --model tiny --base-url "$url" \
        --synthetic --input-tokens 64 --output-tokens 2000 --num-requests 4 --concurrency 2 --quiet \
        >"$work/bk_err_maxtokens.log" 2>&1
    rc=$?
    echo "error    max_tokens 2000 > max_model_len: exit $rc; $(head -n1 "$work"/store-err/raw/*.jsonl | cut -c1-220)"
    "$bin" --store "$work/store-err" run --platform vllm-serve --model nosuch --base-url "$url" \
        --synthetic --input-tokens 8 --output-tokens 8 --num-requests 4 --quiet >"$work/bk_err_model.log" 2>&1
    rc=$?
    echo "error    unknown model: exit $rc; $(head -c 200 "$work/bk_err_model.log")"
    set -e
    kill "$srv"; wait "$srv" 2>/dev/null || true
}

step_batch() {
    echo "== batch: benchkeep record -- vllm run-batch"
    local b="$work/batch" store="$work/store-rec" rc
    mkdir -p "$b"
    python3 - "$b" <<'EOF'
import json, sys
d = sys.argv[1]
line = lambda cid, content, mt, url="/v1/chat/completions": json.dumps({"custom_id": cid, "method": "POST", "url": url,
    "body": {"model": "tiny", "messages": [{"role": "user", "content": content}], "max_tokens": mt}}) + "\n"
with open(d + "/in.jsonl", "w") as f:
    for i in range(10):
        f.write(line(f"request-{i}", f"the quick brown fox number {i} jumps over the lazy dog", 16))
    f.write(line("request-big", "too many tokens please", 5000))
bad = json.loads(line("request-c", "x", 4, "/v1/completions"))
bad["body"] = {"model": "tiny", "prompt": "hello", "max_tokens": 4}
with open(d + "/in_bad.jsonl", "w") as f:
    f.write(line("request-0", "hello", 4) + json.dumps(bad) + "\n" + line("request-2", "hello", 4))
EOF
    local vllm_args=(--model "$vdir/tiny" --served-model-name tiny --load-format dummy
        --max-model-len 1024 --dtype bfloat16)
    (cd "$b" && VLLM_CPU_KVCACHE_SPACE=1 "$bin" --store "$store" record --platform vllm-offline \
        --model tiny -- "$vdir/venv/bin/vllm" run-batch -i in.jsonl -o out.jsonl "${vllm_args[@]}") \
        >"$work/record.log" 2>&1
    echo "record   exit 0"
    "$bin" --store "$store" show vllm-offline-tiny-11 | sed -n '/^Results/,/^Config/p'
    python3 - "$store" <<'EOF'
import glob, json, sys
m = json.load(open(sorted(glob.glob(sys.argv[1] + "/metadata/vllm-offline-tiny-11-*.json"))[0]))
c = m["command"]
print("record   load_time_source=%s load_line=%r config=%s input_file=%s" % (
    c.get("load_time_source"), c.get("load_line"), m["config"], m["test"].get("input_file")))
EOF
    local t
    t=$("$bin" --store "$store" query --platform vllm-offline --model tiny --metric total_time_seconds)
    (cd "$b" && "$bin" --store "$store" analyze --platform vllm-offline --model tiny --input out.jsonl \
        --requests in.jsonl --total-time "$t" --label via=analyze) >"$work/analyze.log" 2>&1
    grep -E 'Requests:|Errors:|Status:|Format:' "$work/analyze.log" | sed 's/^ */analyze  /'
    set +e
    (cd "$b" && VLLM_CPU_KVCACHE_SPACE=1 "$bin" --store "$store" record --platform vllm-offline \
        --model tiny-bad -- "$vdir/venv/bin/vllm" run-batch -i in_bad.jsonl -o out_bad.jsonl \
        "${vllm_args[@]}") >"$work/record_bad.log" 2>&1
    rc=$?
    set -e
    echo "record   a run-batch that fails as a whole: exit $rc; $(grep -E 'Status:' "$work/record_bad.log" | tr -s ' ')"
    "$bin" --store "$store" verify
}

for s in "${steps[@]}"; do
    case $s in
    sim) step_sim ;;
    serve) step_serve ;;
    batch) step_batch ;;
    *) echo "peer_vllm: unknown step $s (sim serve batch)" >&2; exit 2 ;;
    esac
done
echo "peer_vllm: everything is in $work" >&2
