#!/usr/bin/env bash
# The engine snippets of docs/engines.md, run for real (issue 13, item 3): DuckDB and
# Polars (and Spark with CHECK_SPARK=1) over a store made by `benchkeep demo` (simulator
# runs): the catalog, the metadata files and, when the binary has the cargo feature
# `parquet`, an `export --format parquet` file. Each snippet prints one line per platform,
# "PLATFORM RUNS BEST_THROUGHPUT"; that must equal what `benchkeep query --all --json`
# says. The snippets are taken from the doc itself (each Python block after a
# `<!-- skip: run by scripts/check_engines.sh (ENGINE) -->` line), so doc and check cannot
# drift apart.
#
# Usage: scripts/check_engines.sh [BENCHKEEP_BIN]
#   BENCHKEEP_ENGINES_VENV  the venv with duckdb and polars (made and filled with the pinned
#                           versions below when it lacks them; default: a folder in $TMPDIR)
#   CHECK_SPARK=1           also the Spark snippets (pyspark in SPARK_VENV; needs Java 17)
#   BENCHKEEP_TEST_S3_ENDPOINT  a moto (S3) server, as scripts/with_moto.sh sets it: the
#                           DuckDB-on-S3 snippet then runs against an s3:// store made there,
#                           with DuckDB 1.4.4 and its httpfs extension from PyPI (a second venv,
#                           BENCHKEEP_DUCKDB_S3_VENV)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-${BENCHKEEP_BIN:-target/debug/benchkeep}}")"
[ -x "$bin" ] || { echo "no benchkeep binary at $bin (build it first)" >&2; exit 2; }
venv="${BENCHKEEP_ENGINES_VENV:-${TMPDIR:-/tmp}/benchkeep-engines-venv}"
DUCKDB_VERSION=2.0.1
POLARS_VERSION=2.1.0
if ! "$venv/bin/python" -c "import duckdb, polars" 2>/dev/null; then
    echo "installing duckdb $DUCKDB_VERSION and polars $POLARS_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "duckdb==$DUCKDB_VERSION" "polars==$POLARS_VERSION"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A store of simulator runs: two platforms, a head-to-head, and one more run of each.
"$bin" --store "$work/benchmarks" demo --quiet >/dev/null
"$bin" --store "$work/benchmarks" demo --quiet >/dev/null
"$bin" --store "$work/benchmarks" query >/dev/null   # builds analysis/catalog/
has_parquet=0
if "$bin" --store "$work/benchmarks" export --format parquet --out "$work/runs.parquet" 2>"$work/parquet.err"; then
    has_parquet=1
elif ! grep -q "built without Parquet support" "$work/parquet.err"; then
    cat "$work/parquet.err" >&2
    fail "export --format parquet failed"
fi

# The truth: benchkeep's own answer, in the snippets' format.
expected_of() { # QUERY_JSON OUT
python3 - "$1" >"$2" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))
by = {}
for r in runs:
    by.setdefault(r["platform"], []).append(r["throughput_tokens_per_sec"])
for p in sorted(by):
    print(p, len(by[p]), round(max(by[p]), 3))
PY
}
"$bin" --store "$work/benchmarks" query --all --json >"$work/all.json"
expected_of "$work/all.json" "$work/expected"
[ "$(wc -l <"$work/expected")" -ge 2 ] || fail "the demo store should hold two platforms"

# The snippets, by engine.
python3 - docs/engines.md "$work/snippets" <<'PY'
import os, re, sys
md, out = open(sys.argv[1]).read().splitlines(), sys.argv[2]
os.makedirs(out)
n, i = 0, 0
while i < len(md):
    m = re.match(r"<!-- skip: run by scripts/check_engines.sh \((\w+)\) -->", md[i].strip())
    if m and i + 1 < len(md) and md[i + 1].startswith("```python"):
        j = i + 2
        body = []
        while md[j].strip() != "```":
            body.append(md[j]); j += 1
        n += 1
        open(f"{out}/{n:02d}-{m.group(1)}.py", "w").write("\n".join(body) + "\n")
        i = j
    i += 1
print(f"{n} snippets in docs/engines.md", file=sys.stderr)
PY
# DuckDB on S3: a store in a moto bucket, made by benchkeep itself, read in place.
s3_ok=0
if [ -n "${BENCHKEEP_TEST_S3_ENDPOINT:-}" ]; then
    s3venv="${BENCHKEEP_DUCKDB_S3_VENV:-${TMPDIR:-/tmp}/benchkeep-duckdb-s3-venv}"
    if ! "$s3venv/bin/python" -c "import duckdb, importlib.metadata as m; m.distribution('duckdb-ext-httpfs')" 2>/dev/null; then
        echo "installing duckdb 1.4.4 and duckdb-ext-httpfs into $s3venv"
        python3 -m venv "$s3venv"
        "$s3venv/bin/pip" install -q "duckdb==1.4.4" "duckdb-ext-httpfs==1.4.4.20260205"
    fi
    bucket="bk-engines-$$"
    python3 -c "import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], method='PUT'))" "$BENCHKEEP_TEST_S3_ENDPOINT/$bucket"
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=engines-check-secret AWS_REGION=us-east-1 \
        AWS_ENDPOINT_URL="$BENCHKEEP_TEST_S3_ENDPOINT" AWS_ALLOW_HTTP=true
    s3store="s3://$bucket/team"
    "$bin" --store "$s3store" --spool "$work/spool" init >/dev/null
    "$bin" --store "$s3store" --spool "$work/spool" demo --quiet >/dev/null
    "$bin" --store "$s3store" --spool "$work/spool2" demo --quiet >/dev/null
    "$bin" --store "$s3store" --spool "$work/spool3" query --all --json >"$work/s3.json"
    expected_of "$work/s3.json" "$work/expected-s3"
    [ "$(wc -l <"$work/expected-s3")" -ge 2 ] || fail "the s3 store should hold two platforms"
    s3_ok=1
fi

ran=0
for f in "$work"/snippets/*.py; do
    engine=$(basename "$f" .py | cut -d- -f2)
    py="$venv/bin/python"
    want="$work/expected"
    case "$engine" in
        duckdbs3)
            [ "$s3_ok" = 1 ] || { echo "not run (no moto: run under scripts/with_moto.sh): $(basename "$f")"; continue; }
            sed -i "s|s3://BUCKET/PREFIX|$s3store|g" "$f"
            py="$s3venv/bin/python"; want="$work/expected-s3" ;;
        spark)
            [ "${CHECK_SPARK:-0}" = 1 ] || { echo "not run (CHECK_SPARK=1 runs it): $(basename "$f")"; continue; }
            py="${SPARK_VENV:?set SPARK_VENV to a venv with pyspark}/bin/python" ;;
        parquet)
            [ "$has_parquet" = 1 ] || { echo "not run (this benchkeep has no parquet feature): $(basename "$f")"; continue; }
            ;;
    esac
    (cd "$work" && "$py" "$f") >"$work/got" 2>"$work/err" || { cat "$work/err" >&2; fail "$(basename "$f") exited non-zero"; }
    if ! diff -u "$want" "$work/got"; then
        fail "$(basename "$f") does not print what benchkeep query says (above: - expected, + got)"
    fi
    echo "ok: $(basename "$f"): $(wc -l <"$work/got") platforms, as benchkeep query says"
    ran=$((ran + 1))
done
[ "$ran" -ge 4 ] || fail "only $ran snippets ran; docs/engines.md has at least four for DuckDB and Polars"
echo "engines: $ran snippets agree with benchkeep query"
