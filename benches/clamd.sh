#!/usr/bin/env bash
# Time relgate's virus-scan gate against clamdscan on the same files and the same clamd.
#
#   benches/clamd.sh            # 200 files x 5 MiB (about 1 GiB)
#   N=40 SIZE_MIB=5 benches/clamd.sh
#
# Starts one clamd (MaxThreads 4) on fixtures/clamav/db, listening on a Unix socket and a free
# loopback TCP port, warms the page cache, then times:
#   relgate gate over TCP and over the Unix socket (INSTREAM, hashing every byte sent),
#   clamdscan --multiscan --fdpass (clamd reads the client's file descriptors: no copy),
#   clamdscan --stream (INSTREAM, one file at a time).
# Needs clamav-daemon (clamd, clamdscan). Not run in CI.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${N:-200}
SIZE_MIB=${SIZE_MIB:-5}
CONCURRENCY=${CONCURRENCY:-4}
CLAMD=$(command -v clamd || echo /usr/sbin/clamd)
[ -x "$CLAMD" ] || { echo "clamd not found: install clamav-daemon (apt-get install clamav-daemon)" >&2; exit 2; }

cargo build --release --quiet --bin relgate --example clamd_scan

work=$(mktemp -d /tmp/relgate-bench-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "making $N files of $SIZE_MIB MiB in $work/files"
mkdir -p "$work/files" "$work/tmp"
head -c $((SIZE_MIB * 1048576)) /dev/urandom > "$work/seed"
for i in $(seq -w 1 "$N"); do
    # Distinct contents (the first bytes differ) so no cache can short-cut a file.
    { printf 'file %s\n' "$i"; cat "$work/seed"; } | head -c $((SIZE_MIB * 1048576)) > "$work/files/f$i.bin"
done
rm "$work/seed"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/clamd.conf" <<CONF
LocalSocket $work/clamd.sock
TCPSocket $port
TCPAddr 127.0.0.1
DatabaseDirectory $PWD/fixtures/clamav/db
Foreground yes
LogFile $work/clamd.log
PidFile $work/clamd.pid
TemporaryDirectory $work/tmp
AlertExceedsMax yes
StreamMaxLength 100M
MaxThreads 4
CONF
"$CLAMD" -c "$work/clamd.conf" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    clamdscan --config-file="$work/clamd.conf" --ping 1 >/dev/null 2>&1 && break
    sleep 0.1
done
clamdscan --config-file="$work/clamd.conf" --version

cat "$work"/files/* > /dev/null   # warm the page cache

t() { local s e; s=$(date +%s.%N); "$@" > "$work/out" 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }

echo
target/release/examples/clamd_scan "$work/files" "tcp://127.0.0.1:$port" "$CONCURRENCY" > /dev/null  # warm-up
echo "== relgate gate, INSTREAM over tcp://127.0.0.1:$port (concurrency $CONCURRENCY)"
target/release/examples/clamd_scan "$work/files" "tcp://127.0.0.1:$port" "$CONCURRENCY"
echo "== relgate gate, INSTREAM over unix:$work/clamd.sock (concurrency $CONCURRENCY)"
target/release/examples/clamd_scan "$work/files" "unix:$work/clamd.sock" "$CONCURRENCY"
echo "== clamdscan --multiscan --fdpass"
echo "   $(t clamdscan --config-file="$work/clamd.conf" --multiscan --fdpass --no-summary "$work/files") s"
echo "== clamdscan --stream"
echo "   $(t clamdscan --config-file="$work/clamd.conf" --stream --no-summary "$work/files") s"
grep -v ': OK$' "$work/out" | head -5 || true
