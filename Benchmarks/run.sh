#!/usr/bin/env bash
# Builds everything in release mode and runs the echo-server comparison.
# The markdown table goes to stdout, progress to stderr.
#
#   Benchmarks/run.sh [--quick] [--servers a,b] [--workloads rr,churn,...] [--reps N]
#                     [--duration S] [--out FILE] [--json FILE] [--no-build] [--help]
#
# Every option except --no-build is passed on to run.py (see `run.sh --help`).
# Environment: BENCH_QUICK=1, BENCH_SERVERS, BENCH_WORKLOADS, BENCH_REPS,
# BENCH_DURATION, BENCH_WARMUP, BENCH_IDLE_CONNS, BENCH_OUT (defaults for the
# options), BENCH_NO_BUILD=1 (same as --no-build), BENCH_SKIP_NIO=1 (do not
# build SwiftNIO nor SwiftNIO + NIOSSL, whose BoringSSL takes minutes),
# BENCH_BUILD_JOBS=N (passed to swift build as -j N), CC (C compiler, default cc).
#
# The TLS programs (c/tls_echo_server.c, c/tls_loadgen.c) need OpenSSL 3's
# headers (libssl-dev, found with pkg-config); without them the TLS servers
# are skipped.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$BENCH_DIR")"
C_BIN_DIR="$BENCH_DIR/.build-c"
CC="${CC:-cc}"

build=1
[[ "${BENCH_NO_BUILD:-0}" == 1 ]] && build=0
args=()
for a in "$@"; do
    case "$a" in
        --no-build) build=0 ;;
        -h|--help) exec python3 "$BENCH_DIR/run.py" --help ;;
        *) args+=("$a") ;;
    esac
done

say() { echo "run.sh: $*" >&2; }

jobs=()
[[ -n "${BENCH_BUILD_JOBS:-}" ]] && jobs=(-j "$BENCH_BUILD_JOBS")

echo_server_bin=""
nio_bin=""
nio_tls_bin=""
if (( build )); then
    say "building C programs"
    mkdir -p "$C_BIN_DIR"
    "$CC" -O2 -pthread -o "$C_BIN_DIR/loadgen" "$BENCH_DIR/c/loadgen.c"
    "$CC" -O2 -pthread -o "$C_BIN_DIR/echo_server" "$BENCH_DIR/c/echo_server.c"
    rm -f "$C_BIN_DIR/tls_loadgen" "$C_BIN_DIR/tls_echo_server"
    if openssl_flags="$(pkg-config --cflags --libs openssl 2>/dev/null)"; then
        # shellcheck disable=SC2086 # the flags are words
        "$CC" -O2 -pthread -o "$C_BIN_DIR/tls_loadgen" "$BENCH_DIR/c/tls_loadgen.c" $openssl_flags
        # shellcheck disable=SC2086
        "$CC" -O2 -pthread -o "$C_BIN_DIR/tls_echo_server" "$BENCH_DIR/c/tls_echo_server.c" $openssl_flags
    else
        say "no OpenSSL headers (pkg-config openssl): the TLS programs are not built; TLS servers will be skipped"
    fi

    if [[ "${BENCH_SKIP_NIO:-0}" == 1 ]]; then
        say "BENCH_SKIP_NIO=1: nio-echo-server and nio-tls-echo-server not built; they will be skipped"
    else
    say "building nio-echo-server (release)"
    if swift build -c release "${jobs[@]}" --package-path "$BENCH_DIR" --product nio-echo-server >&2; then
        nio_bin="$(swift build -c release --package-path "$BENCH_DIR" --show-bin-path)/nio-echo-server"
    else
        say "nio-echo-server did not build; it will be skipped"
    fi
    # Only when a TLS server is to run (NIOSSL compiles BoringSSL: minutes).
    if python3 "$BENCH_DIR/run.py" --wants-nio-tls ${args[@]+"${args[@]}"}; then
        say "building nio-tls-echo-server (release; the first build compiles BoringSSL)"
        if swift build -c release "${jobs[@]}" --package-path "$BENCH_DIR" --product nio-tls-echo-server >&2; then
            nio_tls_bin="$(swift build -c release --package-path "$BENCH_DIR" --show-bin-path)/nio-tls-echo-server"
        else
            say "nio-tls-echo-server did not build; it will be skipped"
        fi
    fi
    fi

    say "building echo-server (release) in $ROOT_DIR"
    if [[ ! -f "$ROOT_DIR/Package.swift" ]]; then
        say "no $ROOT_DIR/Package.swift; echo-server will be skipped"
    elif swift build -c release "${jobs[@]}" --package-path "$ROOT_DIR" --product echo-server >&2; then
        echo_server_bin="$(swift build -c release --package-path "$ROOT_DIR" --show-bin-path)/echo-server"
    else
        say "echo-server did not build; it will be skipped"
    fi
else
    # Use whatever was built before.
    nio_bin="$(swift build -c release --package-path "$BENCH_DIR" --show-bin-path 2>/dev/null)/nio-echo-server" || nio_bin=""
    [[ -n "$nio_bin" ]] && nio_tls_bin="${nio_bin%/*}/nio-tls-echo-server"
    if [[ -f "$ROOT_DIR/Package.swift" ]]; then
        echo_server_bin="$(swift build -c release --package-path "$ROOT_DIR" --show-bin-path 2>/dev/null)/echo-server" || echo_server_bin=""
    fi
fi

# 10,000 idle connections need more than 10,000 descriptors on each side.
hard="$(ulimit -Hn)"
if [[ "$hard" == unlimited ]] || (( hard > 25000 )); then
    ulimit -n 25000
else
    ulimit -n "$hard"
fi

exec python3 "$BENCH_DIR/run.py" \
    --c-bin-dir "$C_BIN_DIR" \
    --nio-bin "$nio_bin" \
    --nio-tls-bin "$nio_tls_bin" \
    --echo-server-bin "$echo_server_bin" \
    ${args[@]+"${args[@]}"}
