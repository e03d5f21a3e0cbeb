#!/usr/bin/env bash
# The example release published to a WebDAV repository instead of a folder: a local Apache httpd
# with mod_dav_fs (started here from a config in a temporary folder, on a free loopback port,
# with basic auth), then verified and replayed by its URL from an unrelated folder.
#   prepare -> run (awaits QA) -> approve -> run (uploads, checks, one MOVE) -> verify URL -> replay URL
# The same pipeline as release.sh, with `publish.to` pointing at the server
# and a record folder of its own (pipeline-webdav.yaml, written here; .relgate-webdav).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
version=${1:-1.0.0}

"$repo/scripts/install-prereqs.sh"
cargo build --release --locked --quiet --manifest-path "$repo/Cargo.toml"
relgate="$repo/target/release/relgate"
cd "$here"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "prepare: example keys, artefacts, signature database, register"
. "$here/prepare.sh"
rm -rf .relgate-webdav pipeline-webdav.yaml

step "start Apache httpd with mod_dav_fs on a free loopback port"
. "$repo/scripts/webdav-server.sh"
srv=$(mktemp -d)
elsewhere=$(mktemp -d)
trap 'webdav_stop; rm -rf "$srv" "$elsewhere"' EXIT
# The publishing user's password: made up here, given to relgate in the environment only.
export RELGATE_PUBLISH_USER=rel-eng
RELGATE_PUBLISH_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
export RELGATE_PUBLISH_PASSWORD
webdav_start "$srv" "$RELGATE_PUBLISH_USER" "$RELGATE_PUBLISH_PASSWORD"
base="http://127.0.0.1:$WEBDAV_PORT/releases"
echo "WebDAV at $base (files in $srv/dav)"

sed -e "s#^  to: published/{project}/{version}#  to: $base/{project}/{version}#" \
  -e 's#^project: acme-widget$#project: acme-widget\nstate_dir: .relgate-webdav#' \
  pipeline.yaml > pipeline-webdav.yaml
grep -q "to: $base/" pipeline-webdav.yaml
grep -q "^state_dir: .relgate-webdav" pipeline-webdav.yaml
rg() { "$relgate" -p pipeline-webdav.yaml "$@"; }

export ACME_RELEASE_KEY="$here/keys/release"
export RELGATE_OPERATOR=rel-eng@acme.test

step "relgate run $version   (exit 3: the QA sign-off is awaited)"
set +e
rg run "$version"
rc=$?
set -e
if [ "$rc" -ne 3 ]; then
  echo "expected exit 3 (sign-off awaited), got $rc" >&2
  exit 1
fi
step "relgate approve   (alice, QA, signs the staged subject)"
rg approve "$version" --gate manual-regression --key keys/alice --as alice@acme.test \
  --comment "manual regression checklist passed"
step "relgate run $version   (uploads beside the target, checks what arrived, one MOVE)"
rg run "$version"
url="$base/acme-widget/$version"

step "from an unrelated folder: verify and replay by URL, the trust root given"
fingerprint=$(ssh-keygen -l -E sha256 -f keys/release.pub | cut -d' ' -f2)
(
  cd "$elsewhere"
  "$relgate" verify "$url" --trust-key "$fingerprint"
  "$relgate" replay "$url" --signers "$here/keys/allowed_signers" --signer release@acme.test
)
step "never overwritten: publishing $version again is refused"
set +e
rg run "$version" 2>"$elsewhere/refusal"
rc=$?
set -e
sed 's/^/    /' "$elsewhere/refusal"
if [ "$rc" -ne 1 ]; then
  echo "expected the second publish to be refused (exit 1), got $rc" >&2
  exit 1
fi
step "what the server holds, checked with stock tools"
(cd "$srv/dav/releases/acme-widget/$version" && sha256sum -c --strict SHA256SUMS)
curl -sf -u "$RELGATE_PUBLISH_USER:$RELGATE_PUBLISH_PASSWORD" -X PROPFIND -H 'Depth: 1' "$url/" \
  | grep -o '<D:href>[^<]*</D:href>' | sed 's/<[^>]*>//g; s/^/    /'
step "done: $url"
