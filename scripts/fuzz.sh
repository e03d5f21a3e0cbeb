#!/usr/bin/env bash
# Fuzz every target (or those named) for SECONDS each (default 60):
# `scripts/fuzz.sh [SECONDS] [TARGET...]`. Needs the nightly toolchain and cargo-fuzz
# (`rustup toolchain install nightly`, `cargo install cargo-fuzz --locked`).
#
# Builds every target first (`cargo +nightly fuzz build`: release, debug assertions,
# AddressSanitizer), then runs the built binaries, FUZZ_JOBS targets at a time (default 1, one
# core), each at `nice` 10 so that other work on the machine goes first. Running the built
# binaries rather than `cargo fuzz run` per target means an edit to `src/` during a long
# campaign does not rebuild in the middle of it: the whole campaign tests one build.
#
# Each target starts from its committed seeds (fuzz/corpus/<target>, read only) and keeps what
# it finds in fuzz/work/<target>; crashes, hangs and out-of-memory inputs go to
# fuzz/artifacts/<target>/, the output to fuzz/logs/<target>.log. Limits per input: 5 s
# (-timeout), 2 GiB resident (-rss_limit_mb), 256 MiB in one allocation (-malloc_limit_mb).
# Ends with one line per target (runs, coverage, features, CPU seconds, result) and fails if
# any target found something. docs/fuzzing.md says how to keep a find as a seed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^relgate-fuzz$')
fi
jobs=${FUZZ_JOBS:-1}
# Share the two cores: one compiler job unless told otherwise.
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
cargo +nightly fuzz build
bin=fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p fuzz/logs

one() {
  local t=$1 secs=$2 bin=$3
  mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
  local status=ok
  # GNU time (when installed) adds the CPU seconds the target really had.
  local timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -v)
  "${timer[@]}" nice -n 10 "$bin/$t" "fuzz/work/$t" "fuzz/corpus/$t" \
    -artifact_prefix="fuzz/artifacts/$t/" -max_total_time="$secs" -timeout=5 \
    -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1 \
    >"fuzz/logs/$t.log" 2>&1 || status=FOUND
  local log="fuzz/logs/$t.log"
  local runs last cov ft user sys
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  user=$(sed -n 's/.*User time (seconds): //p' "$log")
  sys=$(sed -n 's/.*System time (seconds): //p' "$log")
  printf '%-16s %4ss runs %-10s cov %-6s ft %-6s cpu %-8s %s\n' "$t" "$secs" "${runs:-?}" \
    "${cov:-?}" "${ft:-?}" "${user:+$(awk "BEGIN { print $user + $sys }")}" "$status"
}
export -f one

summary=$(printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'one "$@"' _ {} "$secs" "$bin")
echo "--- fuzz summary"
echo "$summary"
! grep -q 'FOUND$' <<<"$summary"
