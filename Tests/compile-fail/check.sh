#!/usr/bin/env bash
# Checks what the compiler must refuse: adopting both ThreadingMixIn and
# ForkingMixIn. Also checks that the one-line mix-in form compiles, so a
# failure of the first check is the refusal and not a broken setup.
# Needs a debug build (`swift build`) for the module.
set -euo pipefail
cd "$(dirname "$0")/../.."
modules=.build/debug/Modules
[ -d "$modules" ] || modules=.build/debug
check() {
    swiftc -swift-version 6 -typecheck -I "$modules" \
        -Xcc -fmodule-map-file=.build/debug/CSocketServer.build/module.modulemap \
        -Xcc -I -Xcc Sources/CSocketServer/include "$@"
}

check Tests/compile-fail/one-mixin.swift
if out=$(check Tests/compile-fail/both-mixins.swift 2>&1); then
    echo "FAIL: a server adopting both mix-ins compiled" >&2
    exit 1
fi
if ! grep -qE "does not conform to protocol 'ConcurrencyMixIn'|'ThreadPerRequest' and 'ProcessPerRequest' be equivalent" <<<"$out"; then
    echo "FAIL: both mix-ins were refused, but not for the expected reason:" >&2
    echo "$out" >&2
    exit 1
fi
# The compiler cannot take a message of ours; it shows the source line of
# the requirement it names, and that line's comment says what to do.
if ! grep -qF "Keep one: no stub can satisfy both." <<<"$out"; then
    echo "FAIL: the refusal does not show the hint on ConcurrencyModel's line (Servers/MixIns.swift):" >&2
    echo "$out" >&2
    exit 1
fi
# Following the compiler's "add stubs for conformance" still fails.
if out=$(check Tests/compile-fail/both-mixins-stub.swift 2>&1); then
    echo "FAIL: both mix-ins with a ConcurrencyModel stub compiled" >&2
    exit 1
fi
if ! grep -qE "'ThreadPerRequest'\)? and 'ProcessPerRequest' be equivalent" <<<"$out"; then
    echo "FAIL: the stubbed class was refused, but not for the expected reason:" >&2
    echo "$out" >&2
    exit 1
fi
echo "compile-fail: 3 passed, 0 failed"
