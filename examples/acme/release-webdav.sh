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
srv=$(mktemp -d)
elsewhere=$(mktemp -d)
apache_pid=
cleanup() {
  if [ -n "$apache_pid" ]; then
    kill -TERM "$apache_pid" 2>/dev/null || true
    wait "$apache_pid" 2>/dev/null || true
  fi
  rm -rf "$srv" "$elsewhere"
}
trap cleanup EXIT
port=
for p in $(seq 18080 18180); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port in 18080-18180" >&2; exit 1; }
mkdir -p "$srv/dav" "$srv/run"
# The publishing user's password: made up here, given to relgate in the environment only.
export RELGATE_PUBLISH_USER=rel-eng
RELGATE_PUBLISH_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
export RELGATE_PUBLISH_PASSWORD
printf '%s:%s\n' "$RELGATE_PUBLISH_USER" "$(openssl passwd -apr1 "$RELGATE_PUBLISH_PASSWORD")" > "$srv/htpasswd"
user_lines=
if [ "$(id -u)" = 0 ]; then
  # Apache will not serve as root: its workers run as nobody, who must own what they write.
  chmod 755 "$srv"
  chown -R nobody:nogroup "$srv/dav" "$srv/run"
  user_lines=$'User nobody\nGroup nogroup'
fi
mods=/usr/lib/apache2/modules
cat > "$srv/httpd.conf" <<CONF
ServerRoot $srv
Listen 127.0.0.1:$port
ServerName 127.0.0.1:$port
PidFile $srv/run/httpd.pid
DefaultRuntimeDir $srv/run
ErrorLog $srv/run/error.log
$user_lines
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authn_file_module $mods/mod_authn_file.so
LoadModule auth_basic_module $mods/mod_auth_basic.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule dav_module $mods/mod_dav.so
LoadModule dav_fs_module $mods/mod_dav_fs.so
# What relgate needs from a WebDAV server (docs/publish.md): a listing of the whole collection,
# and no cap on a body's size (Apache's default is 1 GiB).
DavLockDB $srv/run/DavLock
DavDepthInfinity On
LimitRequestBody 0
DocumentRoot $srv/dav
<Directory $srv/dav>
  Dav On
  AuthType Basic
  AuthName "acme releases"
  AuthUserFile $srv/htpasswd
  Require valid-user
</Directory>
CONF
apache2 -f "$srv/httpd.conf" -DFOREGROUND &
apache_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
base="http://127.0.0.1:$port/releases"
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
