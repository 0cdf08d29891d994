#!/usr/bin/env bash
# A shared store (RELIABILITY.md P11): one group-writable (setgid) store used by two Unix
# users, run as uid/gid numbers with setpriv.
#   1. both users analyze into it with umask 002: every file has the umask's mode, none is
#      world-writable;
#   2. user A's run is left `running` by kill -9, with A's files not writable by B (umask
#      022): B's `recover` leaves them byte-identical and says whose they are; A's recover
#      finishes the run and `verify` is clean.
# Needs root (setpriv to other users); CI runs as root.
# Usage: scripts/check_shared_store.sh [BENCHKEEP_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-${BENCHKEEP_BIN:-target/debug/benchkeep}}"
[ -x "$bin" ] || { echo "no benchkeep binary at $bin (build it first)" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: check_shared_store.sh needs root (to act as two users with setpriv)"
    exit 0
fi
command -v setpriv >/dev/null || { echo "FAIL: setpriv (util-linux) is missing" >&2; exit 1; }
work="$(mktemp -d)"
chmod 755 "$work"
sim_pid=""
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cp "$bin" "$work/benchkeep" && chmod 755 "$work/benchkeep"
cp tests/fixtures/foundation/chat_ok_and_error.jsonl "$work/in.jsonl" && chmod 644 "$work/in.jsonl"
GID=64000 A=64001 B=64002
as() { # as UID UMASK CMD...
    local uid=$1 mask=$2; shift 2
    setpriv --reuid "$uid" --regid "$GID" --clear-groups -- sh -c "umask $mask; cd '$work'; exec \"\$@\"" sh "$@"
}
store="$work/store"
mkdir "$store" && chgrp "$GID" "$store" && chmod 2775 "$store"

# 1. two users, umask 002
as $A 002 ./benchkeep --store "$store" analyze --platform pa --model m --total-time 5 --input in.jsonl >/dev/null \
    || fail "user A cannot analyze into the shared store"
as $B 002 ./benchkeep --store "$store" analyze --platform pb --model m --total-time 5 --input in.jsonl >/dev/null \
    || fail "user B cannot analyze into the shared store"
ww=$(find "$store" -perm -0002 ! -type l | grep -v "^$store\$" || true)
[ -z "$ww" ] || fail "world-writable files: $ww"
bad=$(find "$store" -type f ! -name '.lock' -perm /0111 || true)
[ -z "$bad" ] || fail "executable files: $bad"
for f in "$store"/metadata/*.json; do
    mode=$(stat -c %a "$f")
    [ "$mode" = 664 ] || fail "$f has mode $mode, not 664 (0666 less umask 002)"
done
echo "shared store: both users wrote, modes follow the umask, nothing world-writable"

# 2. A's crashed run, A's files not writable by B
"$work/benchkeep" simulate --port 0 --itl-ms 2 >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 50); do grep -q listening "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
url=$(awk '/listening/ {print $3; exit}' "$work/sim.out")
[ -n "$url" ] || fail "the simulator did not start"
setpriv --reuid $A --regid $GID --clear-groups -- sh -c "umask 022; exec '$work/benchkeep' --store '$store' run --platform pc --model sim-model --base-url '$url' --synthetic --input-tokens 8 --output-tokens 32 --num-requests 1000000 --concurrency 2 --gpu off --quiet" >/dev/null 2>&1 &
run_pid=$!
sleep 2
kill -9 "$run_pid"; wait "$run_pid" 2>/dev/null || true
meta=$(grep -l '"running"' "$store"/metadata/*.json) || fail "no running run after kill -9"
id=$(basename "$meta" .json)
raw="$store/raw/$id.jsonl"
before=$(sha256sum "$meta" "$raw")
as $B 002 ./benchkeep --store "$store" recover >"$work/b.out" 2>&1 || true
after=$(sha256sum "$meta" "$raw")
[ "$before" = "$after" ] || fail "user B's recover changed user A's run: $(cat "$work/b.out")"
grep -q "another user" "$work/b.out" || fail "B's recover did not say why: $(cat "$work/b.out")"
code=0; as $B 002 ./benchkeep --store "$store" recover "$id" >"$work/b2.out" 2>&1 || code=$?
[ "$code" -eq 4 ] || fail "B's recover $id exited $code, not 4: $(cat "$work/b2.out")"
[ "$before" = "$(sha256sum "$meta" "$raw")" ] || fail "recover $id as B changed A's run"
as $A 022 ./benchkeep --store "$store" recover >"$work/a.out" 2>&1 || fail "A's recover: $(cat "$work/a.out")"
grep -q '"interrupted"' "$meta" || fail "A's recover did not finish the run"
as $A 022 ./benchkeep --store "$store" verify >"$work/v.out" 2>&1 || fail "verify: $(cat "$work/v.out")"
echo "shared store: B's recover left A's run alone; A's recover finished it; verify clean"
echo "check_shared_store: OK"
