#!/usr/bin/env bash
# Conformance of `benchkeep simulate` with the official `openai` and `ollama` Python
# clients, for both profiles.
#
#   scripts/conformance/run.sh [BENCHKEEP_BINARY]
#
# The binary comes from the argument, else $BENCHKEEP_BIN, else `cargo build --release`.
# The Python venv lives outside the repository, in
# ${BENCHKEEP_CONFORMANCE_VENV:-${TMPDIR:-/tmp}/benchkeep-conformance-venv}, and is reused.
# Exits non-zero on any mismatch; the servers are killed on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${BENCHKEEP_CONFORMANCE_VENV:-${TMPDIR:-/tmp}/benchkeep-conformance-venv}
bin=${1:-${BENCHKEEP_BIN:-}}
work=$(mktemp -d "${TMPDIR:-/tmp}/benchkeep-conformance.XXXXXX")
pids=()

cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "conformance: $*" >&2; }

if [[ -z "$bin" ]]; then
    log "building target/release/benchkeep"
    (cd "$root" && cargo build --release --quiet --bin benchkeep)
    target_dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    bin="$target_dir/release/benchkeep"
fi
[[ -x "$bin" ]] || { log "no executable at $bin"; exit 2; }

# A venv with pip. Debian's python3 may lack ensurepip (package python3-venv): then make
# the venv without pip and bootstrap pip from its wheel on PyPI.
make_venv() {
    if python3 -m venv "$venv" 2>"$work/venv.err"; then
        return 0
    fi
    log "python3 -m venv failed ($(tail -n1 "$work/venv.err")); bootstrapping pip from PyPI"
    rm -rf "$venv"
    python3 -m venv --without-pip "$venv"
    "$venv/bin/python" - "$work" <<'PY'
import json, os, subprocess, sys, urllib.parse, urllib.request
work = sys.argv[1]
index = "https://pypi.org/pypi/pip/json"
meta = json.load(urllib.request.urlopen(index, timeout=60))
wheel = next(u for u in meta["urls"] if u["filename"].endswith(".whl"))
path = os.path.join(work, wheel["filename"])
urllib.request.urlretrieve(urllib.parse.urljoin(index, wheel["url"]), path)
subprocess.check_call([sys.executable, os.path.join(path, "pip"), "install", "--quiet", path])
PY
}

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating venv $venv"
    rm -rf "$venv"
    make_venv
fi
if ! "$venv/bin/python" -c 'import openai, ollama' 2>/dev/null; then
    log "installing openai and ollama into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check openai ollama
fi

# Start a simulator (in this shell, so the exit trap can kill it), wait for its
# "listening on URL" line, and set $sim_url.
sim_url=
start_sim() {
    local name=$1
    shift
    "$bin" simulate --port 0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 200); do
        if grep -q '^listening on ' "$work/$name.out" 2>/dev/null; then
            sim_url=$(sed -n 's/^listening on //p' "$work/$name.out" | head -n1)
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "simulator ($name) exited: $(cat "$work/$name.err")"
            return 1
        fi
        sleep 0.05
    done
    log "simulator ($name) printed no address within 10 s"
    return 1
}

status=0
jitter=0.1
common=(--seed 7 --prefill-base-ms 2 --prefill-tok-s 50000 --itl-ms 1 --jitter "$jitter")

start_sim vllm --profile vllm --max-model-len 4096 "${common[@]}"
log "vllm profile at $sim_url"
"$venv/bin/python" "$here/check.py" --profile vllm --base-url "$sim_url" || status=1

start_sim ollama --profile ollama --num-parallel 2 --load-ms 50 --itl-per-seq-ms 0.5 "${common[@]}"
log "ollama profile at $sim_url"
"$venv/bin/python" "$here/check.py" --profile ollama --base-url "$sim_url" --load-ms 50 \
    --jitter "$jitter" || status=1

if [[ $status -eq 0 ]]; then
    log "all checks passed"
else
    log "FAILED"
fi
exit $status
