#!/usr/bin/env bash
# The build cost of the cargo feature `tokenizer` (`run --tokenizer FILE`): two clean
# `cargo build --release` runs, without and with the feature, each in its own fresh
# target directory, timed; and the packages each build compiles (`cargo tree`). The
# feature stays off by default while the delta is above ~30 s (docs/workloads.md).
#
# Usage: scripts/bench_tokenizer_build.sh     (BENCH_DIR=... for the target directories;
#        FEATURES_ONLY=1 to skip the builds and print only the package counts)
# Run it on a quiet machine: the wall times measure the neighbours too. Exit code 0.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-${TMPDIR:-/tmp}/benchkeep-tokenizer-build}
cd "$repo"

packages() {
    cargo tree --offline -e normal,build --prefix none "$@" 2>/dev/null |
        sed 's/ (\*)//; s/ (proc-macro)//' | awk '{print $1" "$2}' | sort -u
}
base=$(packages | wc -l)
with=$(packages --features tokenizer | wc -l)
echo "packages compiled: $base without the feature, $with with it (+$((with - base)))"
[ -n "${FEATURES_ONLY:-}" ] && exit 0

build() { # $1: name, rest: cargo flags
    local name=$1
    shift
    rm -rf "$work/$name"
    local t0 t1
    t0=$(date +%s.%N)
    CARGO_TARGET_DIR="$work/$name" cargo build --release --quiet "$@"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
a=$(build default)
b=$(build tokenizer --features tokenizer)
echo "clean release build: ${a}s without the feature, ${b}s with it (+$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", b - a }')s)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$work"
