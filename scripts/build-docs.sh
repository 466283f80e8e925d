#!/usr/bin/env bash
# Builds the documentation site with the toolchain's own `docc` (no
# swift-docc-plugin package), for static hosting, and fails on anything a
# reader would trip over:
#
#   - a public symbol without a doc comment of its own (the list is printed,
#     file:line first, by scripts/check-doc-coverage.py);
#   - any docc warning: a broken ``Symbol`` or <doc:Article> link, an
#     unresolved topic, a malformed directive (docc --warnings-as-errors).
#
# Usage: scripts/build-docs.sh [MODULE...]     (default: SocketServer)
#
# Each MODULE is a library target of the package; its catalog, if it has
# one, is Sources/MODULE/MODULE.docc. With more than one module, each is
# converted on its own and the archives are merged (docc merge) into one site.
#
# Environment:
#   DOCS_OUTPUT     where the site goes (default .build-docs/site)
#   DOCS_BASE_PATH  the path the site is served under (default SocketServer:
#                   https://HOST/SocketServer/documentation/socketserver/)
#   DOCS_SCRATCH    the build folder for the symbol graphs (default
#                   .build-docs/build, apart from .build so that the flags
#                   of a normal build are not disturbed)
set -euo pipefail
cd "$(dirname "$0")/.."

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(SocketServer)
work=.build-docs
output=${DOCS_OUTPUT:-$work/site}
base=${DOCS_BASE_PATH:-SocketServer}
scratch=${DOCS_SCRATCH:-$work/build}
command -v docc >/dev/null || { echo "error: docc not found (it comes with the Swift toolchain)" >&2; exit 1; }

# 1. Symbol graphs of every module of the package, public symbols only.
#    dump-symbol-graph extracts them from the built modules on every run
#    (an emit-symbol-graph build would skip a module that is up to date).
rm -rf "$work/graphs" "$work/archives"
find "$scratch" -maxdepth 3 -type d -name symbolgraph -exec rm -rf {} + 2>/dev/null || true
echo "== symbol graphs (swift package dump-symbol-graph)"
#    Its exit status is not used: it also tries the test targets' modules,
#    which it cannot load, and fails for them; a module of ours whose graph
#    is missing below is the failure that counts (the log is printed then).
mkdir -p "$work"
swift package --scratch-path "$scratch" dump-symbol-graph \
    --minimum-access-level public --emit-extension-block-symbols >"$work/dump.log" 2>&1 || true
graphs=$(find "$scratch" -maxdepth 3 -type d -name symbolgraph | head -n 1)
[ -n "$graphs" ] || { cat "$work/dump.log" >&2; echo "error: no symbol graphs under $scratch" >&2; exit 1; }

status=0
for module in "${modules[@]}"; do
    mkdir -p "$work/graphs/$module"
    if ! compgen -G "$graphs/$module.symbols.json" >/dev/null; then
        cat "$work/dump.log" >&2
        echo "error: no symbol graph for $module (not a library target of this package, or it did not build)" >&2
        exit 1
    fi
    cp "$graphs/$module.symbols.json" "$work/graphs/$module/"
    for extension in "$graphs/$module@"*.symbols.json; do
        [ -e "$extension" ] && cp "$extension" "$work/graphs/$module/"
    done
done

# 2. Every public symbol documented (all modules checked before failing).
echo "== documentation coverage"
python3 scripts/check-doc-coverage.py "$work/graphs" "${modules[@]}" || status=1

# 3. docc convert, warnings as errors. Modules are converted in the order
#    given, each able to link to the ones before it (``SocketServer/BaseServer``
#    from SocketServerTLS): docc's external link support, experimental in
#    this docc, with every earlier archive as a --dependency.
dependencies=()
for module in "${modules[@]}"; do
    echo "== docc convert $module"
    catalog=Sources/$module/$module.docc
    args=()
    [ -d "$catalog" ] && args+=("$catalog")
    lower=$(tr '[:upper:]' '[:lower:]' <<<"$module")
    if [ ${#modules[@]} -eq 1 ]; then target=$output; else target=$work/archives/$module.doccarchive; fi
    rm -rf "$target"
    mkdir -p "$(dirname "$target")"
    if ! docc convert "${args[@]}" "${dependencies[@]}" \
        --enable-experimental-external-link-support \
        --additional-symbol-graph-dir "$work/graphs/$module" \
        --output-path "$target" \
        --fallback-display-name "$module" \
        --fallback-bundle-identifier "org.socketserver.$lower" \
        --transform-for-static-hosting --hosting-base-path "$base" \
        --warnings-as-errors >"$work/docc-$module.log" 2>&1; then
        cat "$work/docc-$module.log" >&2
        echo "error: docc convert $module failed (broken links or other warnings above)" >&2
        status=1
    elif grep -qiE "^(warning|error)" "$work/docc-$module.log"; then
        cat "$work/docc-$module.log" >&2
        echo "error: docc reported problems for $module" >&2
        status=1
    fi
    dependencies+=(--dependency "$target")
done

if [ ${#modules[@]} -gt 1 ] && [ $status -eq 0 ]; then
    echo "== docc merge ${modules[*]}"
    rm -rf "$output"
    docc merge "$work/archives/"*.doccarchive --output-path "$output" \
        --synthesized-landing-page-name SocketServer >"$work/merge.log" 2>&1 \
        || { cat "$work/merge.log" >&2; echo "error: docc merge failed" >&2; status=1; }
fi

if [ $status -ne 0 ]; then
    echo "FAIL: documentation has problems (see above)" >&2
    exit 1
fi
echo "documentation site: $output (serve it under /$base/; pages at /$base/documentation/$(tr '[:upper:]' '[:lower:]' <<<"${modules[0]}")/)"
