#!/usr/bin/env bash
# Fuzz every target (or those named) for SECONDS each (default 60), one after the other, on
# one core: `scripts/fuzz.sh [SECONDS] [TARGET...]`. Needs the nightly toolchain and
# cargo-fuzz (`rustup toolchain install nightly`, `cargo install cargo-fuzz --locked`).
#
# Each target starts from its committed seeds (fuzz/corpus/<target>, read only) and keeps what
# it finds in fuzz/work/<target>; crashes, hangs and out-of-memory inputs go to
# fuzz/artifacts/<target>/, the output to fuzz/logs/<target>.log. Limits per input: 5 s
# (-timeout), 2 GiB resident (-rss_limit_mb), 256 MiB in one allocation (-malloc_limit_mb).
# Ends with one line per target (runs, coverage, features, result) and fails if any target
# found something. docs/fuzzing.md says how to keep a find as a seed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^relgate-fuzz$')
fi
# Share the two cores: one compiler job, one fuzzing process.
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
mkdir -p fuzz/logs
summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
  status=ok
  cargo +nightly fuzz run "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -malloc_limit_mb=256 \
    -print_final_stats=1 >"fuzz/logs/$t.log" 2>&1 || status=FOUND
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/logs/$t.log" | tail -1)
  last=$(grep -E '^#[0-9]+' "fuzz/logs/$t.log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  [ "$status" = ok ] || failed=1
  summary+=("$(printf '%-16s %4ss runs %-10s cov %-6s ft %-6s %s' "$t" "$secs" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$status")")
  echo "${summary[-1]}"
done
echo "--- fuzz summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
