# A local Apache httpd with mod_dav_fs and basic auth, for examples/acme/release-webdav.sh and
# benches/webdav.sh (the tests start their own, tests/it/dav/apache.rs). Source it, then:
#   webdav_start DIR USER PASSWORD   # serves DIR/dav on a free loopback port; sets WEBDAV_PORT
#   webdav_stop                      # stops it (call it from an EXIT trap)
# The config is what docs/publish.md asks of a server: Depth: infinity listings, no body limit.

WEBDAV_PID=
WEBDAV_PORT=

webdav_start() {
  local srv=$1 user=$2 password=$3 p mods=/usr/lib/apache2/modules user_lines=
  for p in $(seq 18080 18180); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then WEBDAV_PORT=$p; break; fi
  done
  [ -n "$WEBDAV_PORT" ] || { echo "no free port in 18080-18180" >&2; return 1; }
  mkdir -p "$srv/dav" "$srv/run"
  printf '%s:%s\n' "$user" "$(openssl passwd -apr1 "$password")" > "$srv/htpasswd"
  if [ "$(id -u)" = 0 ]; then
    # Apache will not serve as root: its workers run as nobody, who must own what they write.
    chmod 755 "$srv"
    chown -R nobody:nogroup "$srv/dav" "$srv/run"
    user_lines=$'User nobody\nGroup nogroup'
  fi
  cat > "$srv/httpd.conf" <<CONF
ServerRoot $srv
Listen 127.0.0.1:$WEBDAV_PORT
ServerName 127.0.0.1:$WEBDAV_PORT
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
DavLockDB $srv/run/DavLock
DavDepthInfinity On
LimitRequestBody 0
DocumentRoot $srv/dav
<Directory $srv/dav>
  Dav On
  AuthType Basic
  AuthName "releases"
  AuthUserFile $srv/htpasswd
  Require valid-user
</Directory>
CONF
  apache2 -f "$srv/httpd.conf" -DFOREGROUND &
  WEBDAV_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$WEBDAV_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "apache2 did not start:" >&2
  cat "$srv/run/error.log" >&2
  return 1
}

webdav_stop() {
  if [ -n "$WEBDAV_PID" ]; then
    # SIGTERM lets the parent stop its workers.
    kill -TERM "$WEBDAV_PID" 2>/dev/null || true
    wait "$WEBDAV_PID" 2>/dev/null || true
    WEBDAV_PID=
  fi
}
