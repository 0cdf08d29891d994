#!/usr/bin/env bash
# Run a command with a real S3-compatible server: moto's server mode (from PyPI, in a venv
# outside the repository) on 127.0.0.1, stopped by its pid at the end. The command gets
# BENCHKEEP_TEST_S3_ENDPOINT (the remote-store tests under --features external-it use it) and
# BENCHKEEP_MOTO.
#   scripts/with_moto.sh cargo test --locked --features external-it --test it remote_
# MOTO_VENV (default ~/.cache/benchkeep/moto-venv) holds the venv; moto_server already on
# PATH is used as it is.
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/server.sh"
if command -v moto_server >/dev/null 2>&1; then
  moto=$(command -v moto_server)
else
  venv=${MOTO_VENV:-$HOME/.cache/benchkeep/moto-venv}
  if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "moto[server]"
  fi
  moto=$venv/bin/moto_server
fi
port=$(free_port)
log=${TMPDIR:-/tmp}/benchkeep-moto-$port.log
"$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
wait_ready "$pid" "$log" port_open "$port"
export BENCHKEEP_TEST_S3_ENDPOINT="http://127.0.0.1:$port" BENCHKEEP_MOTO="$moto" BENCHKEEP_MOTO_LOG="$log"
echo "moto at $BENCHKEEP_TEST_S3_ENDPOINT (pid $pid)"
"$@"
