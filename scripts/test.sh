#!/usr/bin/env bash
# Run relgate's whole test suite: prerequisites first (real clamd, ssh-keygen, git), then
# every unit and integration test, then one closing line with the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-prereqs.sh
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test --locked 2>&1 | tee "$out" || status=$?
# cargo prints one "test result:" line per test binary; add them up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
exit "$status"
