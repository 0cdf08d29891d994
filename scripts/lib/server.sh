# Sourced by scripts/with_*.sh: the two steps every test server there shares.
#   free_port                      a free port on 127.0.0.1
#   wait_ready PID LOG CHECK...    run CHECK until it succeeds (60 s at most); if the server
#                                  (PID) dies first or never answers, print its LOG and exit 1
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A TCP connect to 127.0.0.1:PORT, as a CHECK for wait_ready.
port_open() {
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)"
}

wait_ready() {
  local pid=$1 log=$2
  shift 2
  for _ in $(seq 1 300); do
    if "$@" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the server (pid $pid) exited before it was ready; its log, $log:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "the server (pid $pid) was not ready after 60 s; its log, $log:" >&2
  cat "$log" >&2
  exit 1
}
