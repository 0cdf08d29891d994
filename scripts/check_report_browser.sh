#!/usr/bin/env bash
# Checks the HTML report in a real browser: builds a demo-like store, runs
# `benchkeep report --gpu-hourly-usd 2.50`, renders reports/index.html in headless
# Chromium to a PNG, and fails unless the picture is not blank, the page loaded nothing
# from outside, and the rendered DOM holds the decision summary.
#
# Usage: scripts/check_report_browser.sh [SCREENSHOT.png]
#   Installs Debian's chromium when it is missing (needs root, as in CI). The screenshot
#   is copied to SCREENSHOT.png when given (docs/report.png is made this way).
#   BENCHKEEP_BIN names a binary to use instead of building one; CHECK_STORE=analyze
#   builds the store from fixture files even where `benchkeep demo` exists.
set -euo pipefail
cd "$(dirname "$0")/.."
out_png="${1:-}"

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian package) ..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [[ -n "${BENCHKEEP_BIN:-}" ]]; then
    bin="$BENCHKEEP_BIN"
else
    cargo build --quiet
    bin="${CARGO_TARGET_DIR:-target}/debug/benchkeep"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
store="$work/benchmarks"

if [[ "${CHECK_STORE:-auto}" != analyze ]] && "$bin" demo --help >/dev/null 2>&1; then
    echo "store: benchkeep demo" >&2
    "$bin" --store "$store" demo --quiet >/dev/null
else
    echo "store: benchkeep analyze on generated fixture files" >&2
    # Raw logs in benchkeep's RequestRecord format (so latency charts have data), one
    # OpenAI results file, and a GPU series, all deterministic.
    python3 - "$work" <<'PY'
import json, random, sys
work = sys.argv[1]
rng = random.Random(7)

def raw(name, n, ttft, tpot, fail=0):
    with open(f"{work}/{name}", "w") as f:
        t = 0.0
        for seq in range(n):
            t += 0.05
            if seq < fail:
                f.write(json.dumps({"seq": seq, "ok": False, "error_kind": "http_status", "http_status": 503,
                                    "error": "HTTP 503: server overloaded", "scheduled_s": t, "sent_s": t, "end_s": t + 0.01}) + "\n")
                continue
            a = ttft * rng.lognormvariate(0, 0.35)
            toks = rng.randint(80, 200)
            e2e = a + (toks - 1) * tpot * rng.uniform(0.85, 1.2)
            f.write(json.dumps({"seq": seq, "ok": True, "http_status": 200, "prompt_tokens": rng.randint(150, 300),
                                "completion_tokens": toks, "finish_reason": "stop", "scheduled_s": round(t, 4),
                                "sent_s": round(t, 4), "first_token_s": round(t + a / 1000, 4),
                                "end_s": round(t + e2e / 1000, 4), "ttft_ms": round(a, 3), "e2e_ms": round(e2e, 3),
                                "itl_ms": [round(tpot, 2)] * 4, "chunks": toks}) + "\n")

raw("vllm-a.jsonl", 400, 90, 12)
raw("vllm-b.jsonl", 400, 80, 11)
raw("ollama.jsonl", 400, 420, 38, fail=6)
with open(f"{work}/openai.jsonl", "w") as f:
    for i in range(50):
        f.write(json.dumps({"id": f"c{i}", "object": "chat.completion", "model": "gemma3-4b",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 200, "completion_tokens": 120, "total_tokens": 320}}) + "\n")
with open(f"{work}/gpu.jsonl", "w") as f:
    for i in range(240):
        for g in range(2):
            f.write(json.dumps({"t_s": i * 0.5, "gpu": g, "memory_used_mib": 14000 + 40 * i + 500 * g,
                                "utilization_percent": min(100, 30 + (i * 3) % 75), "power_w": 180 + (i * 7) % 120}) + "\n")
PY
    analyze() { "$bin" --store "$store" analyze "$@" >/dev/null; }
    analyze --platform vllm-serve --model google/gemma-3-4b-it --input "$work/vllm-a.jsonl" \
        --format benchkeep --label input=batch-400 --config '{"max_model_len": 4096, "gpu_memory_utilization": 0.9}' \
        --gpu-name "RTX 4080" --vram-total-gb 16 --vram-used-gb 14.4
    analyze --platform vllm-serve --model google/gemma-3-4b-it --input "$work/vllm-b.jsonl" \
        --format benchkeep --label input=batch-400 --config '{"max_model_len": 8192, "gpu_memory_utilization": 0.9}' \
        --gpu-name "RTX 4080" --vram-total-gb 16 --vram-used-gb 14.6
    analyze --platform ollama --model gemma3:4b --input "$work/ollama.jsonl" \
        --format benchkeep --label input=batch-400 --gpu-name "RTX 4080" --vram-total-gb 16 --vram-used-gb 6.2
    analyze --platform vllm-offline --model gemma3-4b --input "$work/openai.jsonl" --total-time 20
    # A GPU series beside the latest vLLM run, as `record` and `run` write it.
    latest=$(ls -t "$store"/metadata/vllm-serve-*.json | head -1)
    cp "$work/gpu.jsonl" "$store/raw/$(basename "$latest" .json).gpu.jsonl"
fi

if "$bin" decide --help >/dev/null 2>&1; then
    "$bin" --store "$store" report --gpu-hourly-usd 2.50 >/dev/null
else
    "$bin" --store "$store" report >/dev/null
fi
html="$store/reports/index.html"
test -s "$html"

# 1. The page asks for nothing outside itself, and says so to the browser.
grep -qF "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">" "$html" \
    || { echo "FAIL: CSP meta tag missing" >&2; exit 1; }
if grep -Eiq '<(script|link|img|iframe|object|embed|audio|video|source)[ >]|(src|href)="(https?:)?//|url\(|@import' "$html"; then
    echo "FAIL: the page references an external resource:" >&2
    grep -Eio '<(script|link|img|iframe|object|embed|audio|video|source)[ >]|(src|href)="(https?:)?//[^"]*|url\([^)]*\)|@import' "$html" | head >&2
    exit 1
fi

# 2. Render it in Chromium, recording every network event; then check the picture and
#    that no request the page made left the machine. The same check first runs on a
#    canary page with an external image, to prove it can see such a request here.
render() {  # render URL PNG NETLOG
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --disable-extensions --hide-scrollbars \
        --user-data-dir="$(mktemp -d -p "$work")" --log-net-log="$3" \
        --screenshot="$2" --window-size=1280,2400 "$1" >"$work/chromium.log" 2>&1 || {
        echo "FAIL: chromium did not render $1:" >&2
        tail -20 "$work/chromium.log" >&2
        exit 1
    }
}
cat > "$work/check.py" <<'PY'
import json, struct, sys, zlib

mode, png, netlog = sys.argv[1], sys.argv[2], sys.argv[3]

# Requests the page made carry the file:// site in their network isolation key;
# Chromium's own background requests (time, updates) are keyed otherwise.
try:
    text = open(netlog).read().rstrip()
    try:
        log = json.loads(text)
    except ValueError:  # the browser may stop before closing the event list
        log = json.loads(text.rstrip(",") + "]}")
except (OSError, ValueError) as e:
    sys.exit("FAIL: cannot read the network log: %s" % e)
start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
page_urls = [ev["params"]["url"] for ev in log["events"]
             if ev.get("type") == start_job and "file://" in ev.get("params", {}).get("network_isolation_key", "")]
outside = sorted(u for u in page_urls if not u.startswith(("file:", "data:")))
if mode == "canary":
    if not outside:
        sys.exit("FAIL: the network check cannot see a page's external request here")
    sys.exit(0)
if outside:
    sys.exit("FAIL: the page loaded external resources: %s" % outside[:10])

# The picture: decode the PNG (zlib + scanline filters, no extra packages).
data = open(png, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    (n,) = struct.unpack(">I", data[pos:pos + 4]); kind = data[pos + 4:pos + 8]
    body = data[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
colors, nonwhite, sampled = set(), 0, 0
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if f == 1:
        for i in range(bpp, stride): line[i] = (line[i] + line[i - bpp]) & 255
    elif f == 2:
        line = bytearray((a + b) & 255 for a, b in zip(line, prev))
    elif f == 3:
        for i in range(stride): line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
    elif f == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    if y % 4:
        continue
    for x in range(0, w, 4):
        r, g, b = line[x * bpp:x * bpp + 3]
        colors.add((r >> 3, g >> 3, b >> 3))
        sampled += 1
        if r + g + b < 720:
            nonwhite += 1
share = nonwhite / sampled
print("screenshot %dx%d: %d distinct colours, %.0f%% not white; the page requested nothing outside"
      % (w, h, len(colors), share * 100))
if len(colors) < 40 or not 0.05 < share < 0.97:
    sys.exit("FAIL: the screenshot looks blank or broken")
PY

printf '<!DOCTYPE html><html><body><img src="http://canary.invalid/x.png"><p>canary</p></body></html>' >"$work/canary.html"
render "file://$work/canary.html" "$work/canary.png" "$work/canary-net.json"
python3 "$work/check.py" canary "$work/canary.png" "$work/canary-net.json"

png="$work/report.png"
render "file://$html" "$png" "$work/netlog.json"
test -s "$png" || { echo "FAIL: no screenshot" >&2; exit 1; }
python3 "$work/check.py" page "$png" "$work/netlog.json"

# 3. The decision summary is in the DOM Chromium built (first section, with its verdict,
#    a figure table and the sweep note).
if "$bin" decide --help >/dev/null 2>&1; then
    timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d -p "$work")" --dump-dom "file://$html" \
        >"$work/dom.html" 2>"$work/chromium-dom.log" || {
        echo "FAIL: chromium --dump-dom failed:" >&2
        tail -20 "$work/chromium-dom.log" >&2
        exit 1
    }
    python3 - "$work/dom.html" <<'PY'
import re, sys
dom = open(sys.argv[1]).read()
main = dom.find("<main>")
first = re.search(r'<section id="([^"]+)"', dom[main:])
if not first or first.group(1) != "decision":
    sys.exit("FAIL: the decision summary is not the first section of the rendered page")
sec = dom[main + first.start():]
sec = sec[:sec.find("</section>")]
for want in ("<h2>Decision summary</h2>", 'class="verdict"', " wins ", 'class="decision"',
             "Output tok/s", "Sweeps: no sweep data.", "Cost formula:"):
    if want not in sec:
        sys.exit("FAIL: the rendered decision summary lacks %r" % want)
print("decision summary rendered: %s" % re.sub(r"<[^>]+>", "", re.search(r'<p class="verdict">.*?</p>', sec).group(0)))
PY
fi

if [[ -n "$out_png" ]]; then
    cp "$png" "$out_png"
    echo "screenshot saved: $out_png"
fi
echo "report browser check: ok"
