#!/usr/bin/env bash
# Time relgate's virus-scan gate against clamdscan on the same files and the same clamd.
#
#   benches/clamd.sh            # 200 files x 5 MiB (about 1 GiB), 3 rounds
#   N=40 SIZE_MIB=5 ROUNDS=5 benches/clamd.sh
#
# Starts one clamd (MaxThreads 4) on fixtures/clamav/db, listening on a Unix socket and a free
# loopback TCP port, warms the page cache, then, ROUNDS times in turn, times:
#   relgate gate over the Unix socket (FILDES: each staged file hashed through one descriptor,
#     which clamd then scans: no copy),
#   clamdscan --multiscan --fdpass (clamd reads the client's file descriptors: no copy),
#   relgate gate over TCP (INSTREAM, hashing every byte sent; clamd copies each stream to a
#     temporary file first),
#   clamdscan --stream (INSTREAM, one file at a time),
# and prints each wall time (with the CPU seconds clamd and the client spent) and the median
# per method. The relgate times cover the whole collect step (VERSION, opening, hashing,
# scanning); staging is done before and not timed. clamd caches clean results by MD5, so after
# the warm-up every method scans against a warm cache, as in the published numbers; a cold
# scan of new content costs clamd several times more CPU for every method alike.
# Needs clamav-daemon (clamd, clamdscan). Not run in CI.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${N:-200}
SIZE_MIB=${SIZE_MIB:-5}
ROUNDS=${ROUNDS:-3}
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

clamd_cpu() { awk '{print ($14 + $15) / 100}' "/proc/$pid/stat"; }
# Each measurement prints "<wall seconds> <clamd cpu seconds> <client cpu seconds>".
t() {
    local s e c0
    c0=$(clamd_cpu); s=$(date +%s.%N)
    "$@" > "$work/out" 2>&1 || true
    e=$(date +%s.%N)
    echo "$(echo "$e - $s" | bc) $(echo "$(clamd_cpu) - $c0" | bc) -"
}
relgate() {
    local c0 line
    c0=$(clamd_cpu)
    line=$(target/release/examples/clamd_scan "$work/files" "$1" "$CONCURRENCY" | tee -a "$work/relgate.out" | head -1)
    echo "$(sed -n 's/.* in \([0-9.]*\) s .*/\1/p' <<< "$line") $(echo "$(clamd_cpu) - $c0" | bc) $(sed -n 's/.*relgate cpu \([0-9.]*\) s.*/\1/p' <<< "$line")"
}
record() {
    set -- "$1" $2
    printf '%s\n' "$2" >> "$work/times.$1"
    printf '   %-28s %6.2f s   clamd cpu %5.2f s   client cpu %s\n' "$1" "$2" "$3" "$4"
}
median() { sort -n "$work/times.$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

relgate "unix:$work/clamd.sock" > /dev/null  # warm-up: clamd caches clean results by MD5

echo; echo "concurrency $CONCURRENCY; clamd MaxThreads 4; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r"
    record relgate-fildes-unix "$(relgate "unix:$work/clamd.sock")"
    record clamdscan-multiscan-fdpass "$(t clamdscan --config-file="$work/clamd.conf" --multiscan --fdpass --no-summary "$work/files")"
    grep -v ': OK$' "$work/out" | head -5 || true
    record relgate-instream-tcp "$(relgate "tcp://127.0.0.1:$port")"
    record clamdscan-stream "$(t clamdscan --config-file="$work/clamd.conf" --stream --no-summary "$work/files")"
    grep -v ': OK$' "$work/out" | head -5 || true
done
grep -v 'verdict Green' "$work/relgate.out" | head -5 || true

echo; echo "== median wall time of $ROUNDS rounds ($N files x $SIZE_MIB MiB; load $(cut -d' ' -f1-3 /proc/loadavg))"
for m in relgate-fildes-unix clamdscan-multiscan-fdpass relgate-instream-tcp clamdscan-stream; do
    printf '   %-34s %6.2f s\n' "$m" "$(median "$m")"
done
