#!/usr/bin/env bash
# Install what relgate's tests and the example release need, on Debian (run as root, or with
# sudo available): ClamAV's daemon and tools, OpenSSH's ssh-keygen, git, coreutils, zip (the
# virus-scan tests make a password-protected archive with `zip -P`), and Apache httpd with
# mod_dav_fs, openssl and curl (the WebDAV tests start a real Apache, over TLS with a CA they
# make, and look at it as a user would).
set -euo pipefail

missing=()
command -v clamd >/dev/null 2>&1 || missing+=(clamav-daemon)
command -v clamdscan >/dev/null 2>&1 || missing+=(clamdscan)
command -v sigtool >/dev/null 2>&1 || missing+=(clamav)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v sha256sum >/dev/null 2>&1 || missing+=(coreutils)
command -v tar >/dev/null 2>&1 || missing+=(tar)
command -v gzip >/dev/null 2>&1 || missing+=(gzip)
command -v zip >/dev/null 2>&1 || missing+=(zip)
[ -f /usr/lib/apache2/modules/mod_dav_fs.so ] || missing+=(apache2)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
