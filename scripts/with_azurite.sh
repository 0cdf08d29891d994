#!/usr/bin/env bash
# Run a command with a real Azure Blob Storage emulator: Azurite (from npm, installed into a
# directory outside the repository) on 127.0.0.1, in memory, stopped by its pid at the end.
# The container `benchkeep` is created with a SharedKey-signed REST call (Azurite's
# well-known devstoreaccount1 key). The command gets BENCHKEEP_TEST_AZ_ENDPOINT (the account
# URL, http://127.0.0.1:PORT/devstoreaccount1; the az:// store tests under
# --features azure,external-it use it) and BENCHKEEP_TEST_AZ_CONTAINER.
#   scripts/with_azurite.sh cargo test --locked --features external-it,azure --test it remote_
# AZURITE_DIR (default ~/.cache/benchkeep/azurite) holds the npm install; azurite-blob
# already on PATH is used as it is. Needs node/npm (apt-get install nodejs npm) and python3.
# AZURITE_VERSION defaults to 3.35.0, the last release that runs on Debian 12's Node 18
# (3.36 asks for Node 21, 3.37 for Node 22).
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/server.sh"
if command -v azurite-blob >/dev/null 2>&1; then
  azurite=$(command -v azurite-blob)
else
  dir=${AZURITE_DIR:-$HOME/.cache/benchkeep/azurite}
  if [ ! -x "$dir/node_modules/.bin/azurite-blob" ]; then
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@${AZURITE_VERSION:-3.35.0}" >/dev/null
  fi
  azurite=$dir/node_modules/.bin/azurite-blob
fi
port=$(free_port)
log=${TMPDIR:-/tmp}/benchkeep-azurite-$port.log
"$azurite" --blobHost 127.0.0.1 --blobPort "$port" --inMemoryPersistence --skipApiVersionCheck \
  --disableTelemetry --silent >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
wait_ready "$pid" "$log" port_open "$port"
endpoint="http://127.0.0.1:$port/devstoreaccount1"
container=benchkeep
# Create the container: PUT ?restype=container, signed with the emulator's public key.
python3 - "$endpoint" "$container" <<'PY'
import base64, hashlib, hmac, http.client, sys, urllib.parse
from email.utils import formatdate
endpoint, container = sys.argv[1], sys.argv[2]
account = "devstoreaccount1"
key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
date, version = formatdate(usegmt=True), "2021-08-06"
resource = f"/{account}/{account}/{container}\nrestype:container"
to_sign = "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n" + resource
sig = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
u = urllib.parse.urlsplit(endpoint)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
c.request("PUT", f"{u.path}/{container}?restype=container", headers={"x-ms-date": date,
    "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}", "Content-Length": "0"})
r = c.getresponse()
if r.status not in (201, 409):
    sys.exit(f"creating the container {container}: {r.status} {r.read()[:400]!r}")
PY
export BENCHKEEP_TEST_AZ_ENDPOINT="$endpoint" BENCHKEEP_TEST_AZ_CONTAINER="$container"
echo "azurite at $BENCHKEEP_TEST_AZ_ENDPOINT, container $container (pid $pid)"
"$@"
