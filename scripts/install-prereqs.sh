#!/usr/bin/env bash
# Install what relgate's tests and the example release need, on Debian (run as root, or with
# sudo available): ClamAV's daemon and tools, OpenSSH's ssh-keygen and ssh-agent, git,
# coreutils, zip (the virus-scan tests make a password-protected archive with `zip -P`), Apache
# httpd with mod_dav_fs, openssl and curl (the WebDAV tests start a real Apache, over TLS with a
# CA they make, and look at it as a user would), Chromium and a font (the report tests render
# the HTML report headless and dump its DOM), moto's S3 server (PyPI `moto[server]`: the S3
# publish tests run against it, since it honours `If-None-Match: *` even under races), and
# Python securesystemslib with cryptography (PyPI: the attestation tests check relgate's DSSE
# envelopes with them, an implementation not ours).
set -euo pipefail

# moto's S3 server: with the python3 on PATH when its pip may install (pyenv's, a venv's);
# else (Debian's own python3 is "externally managed", PEP 668) in a venv of its own, linked
# into /usr/local/bin.
install_moto() {
  command -v moto_server >/dev/null 2>&1 && return 0
  local spec='moto[server]>=5,<6'
  if python3 -m pip --version >/dev/null 2>&1 \
    && python3 -m pip install -q --disable-pip-version-check "$spec" 2>/dev/null; then
    hash -r
    command -v moto_server >/dev/null 2>&1 && return 0
    # pip put it beside the interpreter, outside PATH: link it.
    local bin
    bin="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/moto_server"
    if [ -x "$bin" ]; then
      $sudo ln -sf "$bin" /usr/local/bin/moto_server
      return 0
    fi
  fi
  local venv=/opt/relgate-moto
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  $sudo python3 -m venv "$venv"
  $sudo "$venv/bin/pip" install -q --disable-pip-version-check "$spec"
  $sudo ln -sf "$venv/bin/moto_server" /usr/local/bin/moto_server
}

# securesystemslib and cryptography for the attestation tests (tests/vsa_check.py): into the
# python3 on PATH when its pip may install; else into a venv of their own whose python3 is
# linked as /usr/local/bin/relgate-sslib-python3, which the tests look for.
install_sslib() {
  local check='import securesystemslib, cryptography'
  python3 -c "$check" 2>/dev/null && return 0
  [ -x /usr/local/bin/relgate-sslib-python3 ] && /usr/local/bin/relgate-sslib-python3 -c "$check" 2>/dev/null && return 0
  local spec='securesystemslib[crypto]>=1.6,<2'
  if python3 -m pip --version >/dev/null 2>&1 \
    && python3 -m pip install -q --disable-pip-version-check "$spec" 2>/dev/null \
    && python3 -c "$check" 2>/dev/null; then
    return 0
  fi
  local venv=/opt/relgate-sslib
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  $sudo python3 -m venv "$venv"
  $sudo "$venv/bin/pip" install -q --disable-pip-version-check "$spec"
  $sudo ln -sf "$venv/bin/python3" /usr/local/bin/relgate-sslib-python3
}

missing=()
command -v clamd >/dev/null 2>&1 || missing+=(clamav-daemon)
command -v clamdscan >/dev/null 2>&1 || missing+=(clamdscan)
command -v sigtool >/dev/null 2>&1 || missing+=(clamav)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v ssh-agent >/dev/null 2>&1 || missing+=(openssh-client)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v sha256sum >/dev/null 2>&1 || missing+=(coreutils)
command -v tar >/dev/null 2>&1 || missing+=(tar)
command -v gzip >/dev/null 2>&1 || missing+=(gzip)
command -v zip >/dev/null 2>&1 || missing+=(zip)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -f /usr/lib/apache2/modules/mod_dav_fs.so ] || missing+=(apache2)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)

sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
if ! command -v python3 >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
fi
if [ ${#missing[@]} -eq 0 ]; then
  install_moto
  install_sslib
  exit 0
fi
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_moto
install_sslib
