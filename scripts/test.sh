#!/usr/bin/env bash
# Run relgate's whole test suite: prerequisites first (real clamd, ssh-keygen, git), then
# every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-prereqs.sh
cargo test --locked
