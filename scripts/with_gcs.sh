#!/usr/bin/env bash
# Run a command with a Google Cloud Storage emulator: gcp-storage-emulator (from PyPI, in a
# venv outside the repository) on 127.0.0.1, in memory, with the bucket `benchkeep`, stopped
# by its pid at the end. The command gets BENCHKEEP_TEST_GCS_ENDPOINT (the gs:// tests under
# --features gcp,external-it use it) and BENCHKEEP_TEST_GCS_BUCKET.
#   scripts/with_gcs.sh cargo test --locked --features external-it,gcp --test it remote_
# The emulator writes over an object where GCS refuses a create (it ignores
# x-goog-if-generation-match), so `benchkeep init` must refuse it: that is what the tests
# check on it (docs/team.md). GCS_EMULATOR_VENV (default ~/.cache/benchkeep/gcs-venv) holds
# the venv; gcp-storage-emulator already on PATH is used as it is.
set -euo pipefail
if command -v gcp-storage-emulator >/dev/null 2>&1; then
  emu=$(command -v gcp-storage-emulator)
else
  venv=${GCS_EMULATOR_VENV:-$HOME/.cache/benchkeep/gcs-venv}
  if [ ! -x "$venv/bin/gcp-storage-emulator" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet gcp-storage-emulator
  fi
  emu=$venv/bin/gcp-storage-emulator
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bucket=benchkeep
log=${TMPDIR:-/tmp}/benchkeep-gcs-$port.log
"$emu" start --host 127.0.0.1 --port "$port" --in-memory --default-bucket "$bucket" -q >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/storage/v1/b/$bucket', timeout=1)" 2>/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done
export BENCHKEEP_TEST_GCS_ENDPOINT="http://127.0.0.1:$port" BENCHKEEP_TEST_GCS_BUCKET="$bucket"
echo "gcp-storage-emulator at $BENCHKEEP_TEST_GCS_ENDPOINT, bucket $bucket (pid $pid)"
"$@"
