#!/usr/bin/env bash
# Reading a release from S3: `relgate verify s3://…` and `relgate replay s3://…` of a release
# of 384 MiB (four artefacts of 64 MiB and one of 128 MiB, random bytes) in moto's server
# (PyPI `moto[server]`), against fetching the same objects with curl and hashing them with
# sha256sum, four at once as relgate reads them. moto does not check signatures, so curl needs
# no credentials; relgate signs every request as for AWS.
#
# Reports wall time and peak RSS (GNU time's maximum resident set) of each, best of three.
# Numbers go to docs/benchmarks.md ("S3 verify").
#
# Needs about 2 GiB free below TMPDIR and as much memory for moto (it holds objects in memory).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v moto_server >/dev/null 2>&1 || pip install -q 'moto[server]'
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
cargo build --release --locked --quiet --manifest-path "$repo/Cargo.toml"
relgate="$repo/target/release/relgate"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
endpoint="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -s -o /dev/null "$endpoint" && break; sleep 0.1; done
curl -s -X PUT "$endpoint/bench" -o /dev/null

export AWS_ACCESS_KEY_ID=AKIABENCHBENCHBENCH0 AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent

dir="$work/project"
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
  to: s3://bench/rel/{project}/{version}
  endpoint: $endpoint
  region: us-east-1
YAML
for i in 1 2 3 4; do head -c $((64 << 20)) /dev/urandom > "$dir/dist/part$i.bin"; done
head -c $((128 << 20)) /dev/urandom > "$dir/dist/whole.bin"
(cd "$dir" && "$relgate" run 1.0.0 >/dev/null 2>&1)
url=s3://bench/rel/bench/1.0.0

# Best of three: "seconds peak-KiB" of a command run under GNU time.
best() {
  local out="" s kib
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || {
      cat "$work/err" >&2
      exit 1
    }
    read -r s kib < "$work/time"
    if [ -z "$out" ] || awk -v a="$s" -v b="${out%% *}" 'BEGIN{exit !(a<b)}'; then
      out="$s $kib"
    fi
  done
  echo "$out"
}

row() {
  local what=$1 s kib
  shift
  read -r s kib <<<"$(best "$@")"
  printf '| %s | %.2f s | %d MB/s | %d MiB |\n' "$what" "$s" \
    "$(awk -v s="$s" 'BEGIN{printf "%d", 384*1.048576/s}')" $((kib / 1024))
}

# curl fetches each object and sha256sum hashes it, four objects at once.
fetch_and_hash() {
  cd "$dir/dist"
  printf '%s\n' * | xargs -P4 -I{} sh -c \
    "curl -sf '$endpoint/bench/rel/bench/1.0.0/{}' | sha256sum >/dev/null"
}
fetch_only() {
  cd "$dir/dist"
  printf '%s\n' * | xargs -P4 -I{} curl -sf -o /dev/null "$endpoint/bench/rel/bench/1.0.0/{}"
}
# What `verify s3://…` did before it streamed: every object of the prefix into a temporary
# folder, then the checks of a local folder.
fetch_then_verify() {
  local tmp
  tmp=$(mktemp -d)
  curl -sf "$endpoint/bench?list-type=2&prefix=rel/bench/1.0.0/" |
    grep -o '<Key>[^<]*</Key>' | sed 's/<Key>rel\/bench\/1.0.0\///; s/<\/Key>//' |
    xargs -P4 -I{} curl -sf --create-dirs -o "$tmp/{}" "$endpoint/bench/rel/bench/1.0.0/{}"
  (cd "$dir" && "$relgate" verify "$tmp")
  rm -rf "$tmp"
}
export -f fetch_and_hash fetch_only fetch_then_verify
export dir endpoint relgate

echo "| 384 MiB release in moto | wall | throughput | peak RSS |"
echo "|---|---|---|---|"
row "relgate verify $url" sh -c "cd '$dir' && '$relgate' verify $url"
row "relgate replay $url" sh -c "cd '$dir' && '$relgate' replay $url"
row "curl into a folder, then relgate verify DIR" bash -c fetch_then_verify
row "curl + sha256sum, 4 at once" bash -c fetch_and_hash
row "curl to /dev/null, 4 at once" bash -c fetch_only
