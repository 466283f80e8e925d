#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer and AddressSanitizer and runs each
# for a bounded time, starting from the seed corpus in Fuzz/corpus/TARGET.
# Exits non-zero if a target finds a crash (or fails to build). See Fuzz/README.md.
#
#   Fuzz/run.sh                       # every target, 60 s each
#   FUZZ_SECONDS=600 Fuzz/run.sh readline
#   Fuzz/run.sh file-request -- -jobs=2 -workers=2   # extra libFuzzer options after --
#
# Environment:
#   FUZZ_SECONDS     time per target (default 60)
#   FUZZ_MAX_LEN     the largest input libFuzzer makes (default 8192 for readline, 2048 else)
#   FUZZ_SCRATCH     SwiftPM scratch path for the fuzz build (default .build-fuzz)
#   FUZZ_JOBS        build jobs (default 2)
#   FUZZ_WORK        where the working corpora go (default: a new temporary
#                    directory, removed afterwards); give one to keep what a
#                    run found, and to start the next run from it
#   FUZZ_ARTIFACTS   where crashing inputs go (default FUZZ_SCRATCH/crashes/TARGET)
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(readline file-request proxy-header)
targets=()
extra=()
while (($#)); do
    case "$1" in
        --) shift; extra=("$@"); break ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    [[ -d "Fuzz/corpus/$t" ]] || { echo "error: no fuzz target $t (have: ${all_targets[*]})" >&2; exit 2; }
done

seconds="${FUZZ_SECONDS:-60}"
scratch="${FUZZ_SCRATCH:-.build-fuzz}"
jobs="${FUZZ_JOBS:-2}"
build=(swift build -j "$jobs" -c debug --scratch-path "$scratch"
       -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING)

if [[ -n "${FUZZ_WORK:-}" ]]; then
    work="$FUZZ_WORK"
    mkdir -p "$work"
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/socketserver-fuzz.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
fi

status=0
summary=()
for t in "${targets[@]}"; do
    printf '\n==> building fuzz-%s (libFuzzer + ASan)\n' "$t"
    # gold warns about every ASan helper symbol it cannot export: noise.
    if ! "${build[@]}" --product "fuzz-$t" 2>&1 | sed '/Cannot export local symbol/d'; then
        echo "error: the build of fuzz-$t failed" >&2
        exit 1
    fi
    bin="$("${build[@]}" --show-bin-path)/fuzz-$t"

    corpus="$work/$t"
    artifacts="${FUZZ_ARTIFACTS:-$scratch/crashes/$t}"
    mkdir -p "$corpus" "$artifacts"
    cp -n "Fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true

    printf '\n==> fuzz-%s for %ss (corpus %s, crashes to %s)\n' "$t" "$seconds" "$corpus" "$artifacts"
    # Longer inputs only slow the runs down: lines are at most 300 bytes,
    # headers 1024; the reader's buffer starts at 2 KiB and grows beyond.
    case "$t" in readline) max_len="${FUZZ_MAX_LEN:-8192}" ;; *) max_len="${FUZZ_MAX_LEN:-2048}" ;; esac
    log="$work/$t.log"
    set +e
    # SWIFT_BACKTRACE off: the Swift backtracer and ASan's report get in each
    # other's way. A small ASan quarantine: 90 MB of memory rather than 600.
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="quarantine_size_mb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
        "$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${extra[@]}" "$corpus" > "$log" 2>&1
    rc=$?
    set -e
    # The progress lines are many: show the start, the end and the stats.
    grep -E '^(INFO|#[0-9]+[[:space:]]+(INITED|DONE)|stat::|Done )' "$log" || true
    if ((rc != 0)); then
        echo "FAILED: fuzz-$t exited $rc; the input is in $artifacts (replay: $bin INPUT)" >&2
        tail -n 40 "$log" >&2
        status=1
        summary+=("fuzz-$t: FAILED (exit $rc)")
    else
        runs="$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo '?')"
        cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1 || true)"
        summary+=("fuzz-$t: ok, $runs runs in ${seconds}s, $cov")
    fi
done

printf '\n==> summary\n'
printf '%s\n' "${summary[@]}"
exit "$status"
