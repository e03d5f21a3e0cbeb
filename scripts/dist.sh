#!/usr/bin/env bash
# Build relgate's release artefacts into dist/: the release binary with its docs, as a tarball.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
cargo build --release --locked
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/relgate-$version" dist
cp target/release/relgate README.md CHANGELOG.md "$stage/relgate-$version/"
cp -r docs "$stage/relgate-$version/"
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -czf "dist/relgate-$version-$(uname -m)-linux.tar.gz" "relgate-$version"
ls -l dist/*.tar.gz
