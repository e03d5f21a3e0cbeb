#!/usr/bin/env bash
# relgate's speed and memory goals, measured side by side on this machine.
#
#   bash benches/bench.sh            # all goals, ~3-4 minutes, needs ~4 GiB free in /tmp
#   ROUNDS=9 bash benches/bench.sh   # more rounds per measurement (best of ROUNDS is kept)
#   GOALS="6 7" bash benches/bench.sh  # only some goals (GOALS=8: the report of a 10,000-line
#                                      # record alone, ~2 min)
#
# Every timing is the best of ROUNDS runs, the reference and relgate interleaved, so that
# other load on a shared machine hurts both sides alike. The page cache is warmed first.
# Nothing here is an assertion in the test suite: the table at the end is the result.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
SIZE_MIB=${SIZE_MIB:-1024}
LOG_LINES=${LOG_LINES:-200000}
GATES=${GATES:-50}
REPORT_LINES=${REPORT_LINES:-10000}
GOALS=" ${GOALS:-1 2 3 4 5 6 7 8} "
want() { [[ "$GOALS" == *" $1 "* ]]; }

need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing ($2)" >&2; exit 2; }; }
need openssl "apt-get install openssl"
need ssh-keygen "apt-get install openssh-client"
need taskset "apt-get install util-linux"
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

echo "bench: building (release)" >&2
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
HELPER=$(cargo bench --no-run --quiet --manifest-path "$ROOT/Cargo.toml" --bench relgate_bench \
    --message-format=json | grep -o '"executable":"[^"]*/relgate_bench-[^"]*"' | tail -1 | cut -d'"' -f4)
RELGATE="$ROOT/target/release/relgate"
[ -x "$HELPER" ] && [ -x "$RELGATE" ] || { echo "bench: build products not found" >&2; exit 2; }

T=$(mktemp -d /tmp/relgate-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
# Real runs remember their newest checkpoint outside the record: here, not in the user's state.
export RELGATE_PIN_DIR="$T/pins"

now() { date +%s.%N; }
# secs CMD...: wall seconds of one run of CMD (its output discarded).
secs() { local a b; a=$(now); "$@" >/dev/null 2>"$T/last.err" || { echo "bench: failed: $*" >&2; cat "$T/last.err" >&2; exit 1; }; b=$(now); echo "$a $b" | awk '{printf "%.3f", $2-$1}'; }
min() { printf '%s\n' "$@" | sort -g | head -1; }
calc() { awk "BEGIN{printf \"%.2f\", $1}"; }
ge() { awk "BEGIN{exit !($1 >= $2)}"; }
verdict() { if ge "$1" "$2"; then echo PASS; else echo FAIL; fi; }
ROWS=()
row() { ROWS+=("$(printf '%-4s | %-52s | %-22s | %s' "$1" "$2" "$3" "$4")"); }

# A project folder: keys, allowed_signers, and a pipeline with GATES_YAML and a sign gate.
project() { # DIR GATES_YAML
    local d=$1
    mkdir -p "$d/dist" "$d/keys"
    ssh-keygen -q -t ed25519 -N "" -C release -f "$d/keys/release"
    echo "release@bench.test $(cut -d' ' -f1,2 "$d/keys/release.pub")" >"$d/keys/allowed_signers"
    cat >"$d/pipeline.yaml" <<EOF
version: 1
project: bench
artefacts:
  - dist/*
signers: keys/allowed_signers
gates:
$2
  sign:
    kind: sign
    key: keys/release
    signer: release@bench.test
EOF
}

grep -q -m1 sha_ni /proc/cpuinfo && SHANI=yes || SHANI="no (compared anyway)"
echo "bench: $(nproc) cores, SHA-NI: $SHANI, rounds: $ROUNDS" >&2

# The ${SIZE_MIB} MiB file goals 1-3 share, made once.
big_file() {
    [ -f "$T/one/big.bin" ] && return
    mkdir -p "$T/one"
    head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$T/one/big.bin"
    cat "$T/one/big.bin" >/dev/null
}

# --- 1. one big file: staging vs openssl merely hashing it -------------------------------
if want 1; then
    echo "bench: 1. writing a ${SIZE_MIB} MiB file" >&2
    big_file
    o=(); s=()
    for _ in $(seq "$ROUNDS"); do
        o+=("$(secs openssl dgst -sha256 "$T/one/big.bin")")
        rm -f "$T/one/copy"
        s+=("$(secs "$HELPER" stage-one "$T/one/big.bin" "$T/one/copy")")
    done
    cmp -s "$T/one/big.bin" "$T/one/copy" || { echo "bench: the staged copy differs" >&2; exit 1; }
    rm -f "$T/one/copy"
    O=$(min "${o[@]}"); S=$(min "${s[@]}"); R1=$(calc "$O / $S")
    row 1 "stage ${SIZE_MIB} MiB vs openssl dgst -sha256 (${O}s)" "${S}s = ${R1}x" ">= 0.80x  $(verdict "$R1" 0.8)"
fi

# --- 2. several files on both cores vs one core --------------------------------------------
if want 2; then
    echo "bench: 2. several files, one core vs both" >&2
    big_file
    mkdir -p "$T/many"
    split -b $((SIZE_MIB * 1048576 / 8)) "$T/one/big.bin" "$T/many/part-"
    cat "$T/many"/part-* >/dev/null
    # The same split for openssl (one process over all files vs one process per half) says how
    # much parallelism the machine gives right now: on a shared machine it can be well below 2.
    P=("$T/many"/part-*); H=$((${#P[@]} / 2))
    two_openssl() { openssl dgst -sha256 "${P[@]:0:H}" & openssl dgst -sha256 "${P[@]:H}" & wait; }
    one=(); both=(); ref1=(); ref2=()
    for _ in $(seq "$ROUNDS"); do
        ref1+=("$(secs openssl dgst -sha256 "${P[@]}")")
        ref2+=("$(secs two_openssl)")
        rm -rf "$T/many-out"
        one+=("$(secs taskset -c 0 "$HELPER" stage-dir "$T/many" "$T/many-out" 1)")
        rm -rf "$T/many-out"
        both+=("$(secs "$HELPER" stage-dir "$T/many" "$T/many-out" "$(nproc)")")
    done
    rm -rf "$T/many-out" "$T/many"
    ONE=$(min "${one[@]}"); BOTH=$(min "${both[@]}"); R2=$(calc "$ONE / $BOTH")
    REF=$(calc "$(min "${ref1[@]}") / $(min "${ref2[@]}")")
    row 2 "stage 8 files: one core (${ONE}s) vs $(nproc) (openssl: ${REF}x)" "${BOTH}s = ${R2}x" ">= 1.60x  $(verdict "$R2" 1.6)"
fi

# --- 3. peak memory of a dry run with the big artefact and a sign gate -----------------------
if want 3; then
    echo "bench: 3. peak memory of a dry run" >&2
    project "$T/mem" ""
    big_file
    mv "$T/one/big.bin" "$T/mem/dist/big.bin"
    (cd "$T/mem" && /usr/bin/time -v "$RELGATE" run 1.0.0 --dry-run >"$T/mem.out" 2>"$T/mem.err") || {
        cat "$T/mem.out" "$T/mem.err" >&2; exit 1; }
    RSS_KB=$(grep "Maximum resident set size" "$T/mem.err" | awk '{print $NF}')
    RSS=$(calc "$RSS_KB / 1024")
    rm -rf "$T/mem"
    row 3 "peak RSS, dry run, ${SIZE_MIB} MiB artefact + sign gate" "${RSS} MiB" "< 64 MiB  $(verdict 64 "$RSS")"
fi

# --- 4. 50 trivial gates ----------------------------------------------------------------------
if want 4; then
    echo "bench: 4. $GATES trivial gates" >&2
    G=""
    for i in $(seq "$GATES"); do
        G+="  g$i:"$'\n'"    kind: regression"$'\n'"    run: \"true\""$'\n'
        # Every fifth gate starts a chain of four: g1 <- g2 <- g3 <- g4, g6 <- g7 ...
        if [ $((i % 5)) -ne 1 ]; then G+="    needs: [g$((i - 1))]"$'\n'; fi
    done
    project "$T/gates" "$G"
    echo small >"$T/gates/dist/a.txt"
    w=(); sh=()
    for _ in $(seq "$ROUNDS"); do
        w+=("$(cd "$T/gates" && secs "$RELGATE" run 1.0.0 --dry-run)")
        sh+=("$(secs bash -c "for i in \$(seq $GATES); do sh -c true; done")")
    done
    (cd "$T/gates" && "$RELGATE" run 1.0.0 --dry-run >/dev/null 2>&1) || { echo "bench: the $GATES-gate dry run failed" >&2; exit 1; }
    W=$(min "${w[@]}"); SH=$(min "${sh[@]}"); OVER=$(calc "$W - $SH")
    row 4 "$GATES true gates: dry run wall (spawning $GATES sh: ${SH}s)" "${W}s, overhead ${OVER}s" "< 1 s      $(verdict 1 "$OVER")"
fi

# --- 5. replay of a large log -------------------------------------------------------------------
if want 5; then
    echo "bench: 5. replay of a $LOG_LINES-line log" >&2
    project "$T/replay" "  tests:"$'\n'"    kind: regression"$'\n'"    run: \"true\""
    echo small >"$T/replay/dist/a.txt"
    (cd "$T/replay" && "$RELGATE" run 1.0.0 --dry-run >/dev/null 2>&1) || { echo "bench: the replay dry run failed" >&2; exit 1; }
    REC=$(ls -d "$T"/replay/.relgate/dry-runs/1.0.0/*/)
    "$HELPER" extend-log "$REC" "$T/replay/keys/release" "$LOG_LINES" >/dev/null
    LINES=$(wc -l <"$REC/log.jsonl")
    rp=()
    TRUST=(--signers "$T/replay/keys/allowed_signers" --signer release@bench.test)
    for _ in $(seq "$ROUNDS"); do rp+=("$(secs "$RELGATE" replay "$REC" "${TRUST[@]}")"); done
    "$RELGATE" replay "$REC" "${TRUST[@]}" >/dev/null 2>&1 || { echo "bench: replay rejected the extended log" >&2; "$RELGATE" replay "$REC" "${TRUST[@]}" >&2; exit 1; }
    RP=$(min "${rp[@]}"); RATE=$(calc "$LINES / $RP")
    READ=$("$HELPER" read-log "$REC/log.jsonl" "$ROUNDS" | sed 's/.*lines_per_s=//')
    row 5 "relgate replay, $LINES lines (read_log alone: $READ/s)" "$RATE lines/s" ">= 100000  $(verdict "$RATE" 100000)"
fi

# --- 8. the release report of a record of REPORT_LINES log lines ------------------------------
# A real record, grown by real runs: GATES true gates and one red gate, run with --rerun until
# the log holds REPORT_LINES lines (each run: its start, every gate started and judged, the sign
# gate blocked, its end). The report replays the record first, so its time includes replay.
report_goal() {
    echo "bench: 8. the report of a ${REPORT_LINES}-line record (growing it by real runs)" >&2
    local G="" i
    for i in $(seq "$GATES"); do G+="  g$i:"$'\n'"    kind: regression"$'\n'"    run: \"true\""$'\n'; done
    G+="  red:"$'\n'"    kind: regression"$'\n'"    run: \"false\""$'\n'
    project "$T/report" "$G"
    echo small >"$T/report/dist/a.txt"
    local rec="$T/report/.relgate/releases/1.0.0"
    while [ ! -f "$rec/log.jsonl" ] || [ "$(wc -l <"$rec/log.jsonl")" -lt "$REPORT_LINES" ]; do
        (cd "$T/report" && "$RELGATE" run 1.0.0 --rerun >/dev/null 2>&1) && {
            echo "bench: a run with a red gate passed" >&2; exit 1; }
    done
    local lines; lines=$(wc -l <"$rec/log.jsonl")
    local trust=(--signers "$T/report/keys/allowed_signers" --signer release@bench.test)
    "$RELGATE" report "$rec" "${trust[@]}" -o "$T/report.html" || {
        echo "bench: the report of the grown record does not verify" >&2; exit 1; }
    local h=() m=()
    for _ in $(seq "$ROUNDS"); do
        h+=("$(secs "$RELGATE" report "$rec" "${trust[@]}" -o "$T/report.html")")
        m+=("$(secs "$RELGATE" report "$rec" "${trust[@]}" --format markdown -o "$T/report.md")")
    done
    local H M OWN
    H=$(min "${h[@]}"); M=$(min "${m[@]}")
    OWN=$("$HELPER" render-report "$rec" "$ROUNDS")
    echo "bench: 8. $OWN; report.html $(wc -c <"$T/report.html") bytes" >&2
    row 8 "relgate report, $lines lines, html (markdown: ${M}s)" "${H}s" "< 1 s      $(verdict 1 "$H")"
}

# --- 6, 7. a release of two files: verify vs openssl, run vs a dry run ----------------------
if want 6 || want 7; then
    SMALL_MIB=$((SIZE_MIB / 4))
    echo "bench: 6-7. a release of ${SIZE_MIB} MiB + ${SMALL_MIB} MiB" >&2
    R="$T/rel"
    project "$R" "  tests:"$'\n'"    kind: regression"$'\n'"    run: \"true\""
    printf 'publish:\n  to: published/{project}/{version}\n' >>"$R/pipeline.yaml"
    head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$R/dist/big.bin"
    head -c $((SMALL_MIB * 1048576)) /dev/urandom >"$R/dist/small.bin"
    cat "$R/dist"/* >/dev/null
    TRUST=(--signers "$R/keys/allowed_signers" --signer release@bench.test)
    REL="$R/published/bench/1.0.0"
    # rss CMD...: peak resident set (MiB) of one run of CMD in $R.
    rss() {
        (cd "$R" && /usr/bin/time -f %M -o "$T/rss" "$@" >/dev/null 2>"$T/last.err") || {
            echo "bench: failed: $*" >&2; cat "$T/last.err" >&2; exit 1; }
        calc "$(cat "$T/rss") / 1024"
    }
    # The release verify reads, published by a first run (which also warms everything up).
    RUN_RSS=$(rss "$RELGATE" run 1.0.0)
    VERIFY_RSS=$(rss "$RELGATE" verify "$REL" "${TRUST[@]}")
    both() { if [ "$1" = PASS ] && [ "$2" = PASS ]; then echo PASS; else echo FAIL; fi; }

    if want 6; then
        # openssl over both files at once, one process each: what the machine can hash.
        cat "$REL"/*.bin >/dev/null
        two_dgst() { openssl dgst -sha256 "$REL/big.bin" & openssl dgst -sha256 "$REL/small.bin" & wait; }
        o=(); v=()
        for _ in $(seq "$ROUNDS"); do
            o+=("$(secs two_dgst)")
            v+=("$(cd "$T" && secs "$RELGATE" verify "$REL" "${TRUST[@]}")")
        done
        O=$(min "${o[@]}"); V=$(min "${v[@]}"); R6=$(calc "$O / $V")
        row 6 "verify ${SIZE_MIB}+${SMALL_MIB} MiB vs 2 openssl dgst at once (${O}s)" "${V}s = ${R6}x, ${VERIFY_RSS} MiB" \
            ">= 0.90x, < 64 MiB $(both "$(verdict "$R6" 0.9)" "$(verdict 64 "$VERIFY_RSS")")"
    fi

    if want 7; then
        # A dry run stages (copy and hash), runs the gates and signs; a real run does the same
        # and then publishes. Each round publishes a new version, removed again after it.
        dry=(); run=()
        for i in $(seq "$ROUNDS"); do
            dry+=("$(cd "$R" && secs "$RELGATE" run "2.0.$i" --dry-run)")
            rm -rf "$R/.relgate/dry-runs"
            run+=("$(cd "$R" && secs "$RELGATE" run "1.0.$i")")
            rm -rf "$R/published/bench/1.0.$i" "$R/.relgate/releases/1.0.$i"
        done
        D=$(min "${dry[@]}"); U=$(min "${run[@]}"); R7=$(calc "$U / $D")
        row 7 "run of that release vs its dry run (${D}s)" "${U}s = ${R7}x, ${RUN_RSS} MiB" \
            "<= 1.30x, < 64 MiB $(both "$(verdict 1.3 "$R7")" "$(verdict 64 "$RUN_RSS")")"
    fi
    rm -rf "$R"
fi

if want 8; then report_goal; fi

echo
printf '%-4s | %-52s | %-22s | %s\n' goal "measure" "measured" "target"
printf -- '-----+------------------------------------------------------+------------------------+----------------\n'
printf '%s\n' "${ROWS[@]}"
if printf '%s\n' "${ROWS[@]}" | grep -q FAIL; then exit 1; fi
