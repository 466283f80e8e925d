#!/usr/bin/env bash
# Builds the documentation site with the toolchain's own `docc` (no
# swift-docc-plugin package), for static hosting, and fails on anything a
# reader would trip over:
#
#   - a public symbol without a doc comment of its own (the list is printed,
#     file:line first, by scripts/check-doc-coverage.py);
#   - any docc warning: a broken ``Symbol`` or <doc:Article> link, an
#     unresolved topic, a malformed directive (docc --warnings-as-errors);
#   - a page of the site that links to a page the site does not have.
#
# Usage: scripts/build-docs.sh [MODULE...]
#        (default: SocketServer SocketServerTLS, the whole site, as CI builds it)
#
# Each MODULE is a library target of the package; its catalog, if it has
# one, is Sources/MODULE/MODULE.docc. With more than one module, each is
# converted on its own and the archives are merged (docc merge) into one
# site. The two modules link to each other, so one of them alone fails on
# those links: build them together.
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
[ ${#modules[@]} -gt 0 ] || modules=(SocketServer SocketServerTLS)
work=.build-docs
output=${DOCS_OUTPUT:-$work/site}
base=${DOCS_BASE_PATH:-SocketServer}
scratch=${DOCS_SCRATCH:-$work/build}
command -v docc >/dev/null || { echo "error: docc not found (it comes with the Swift toolchain)" >&2; exit 1; }

# 1. Symbol graphs of every module of the package, public symbols only.
#    dump-symbol-graph extracts them from the built modules on every run
#    (an emit-symbol-graph build would skip a module that is up to date).
rm -rf "$work/graphs" "$work/archives" "$work/links"
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

# 3. docc convert, warnings as errors. Modules link to each other both
#    ways (``/SocketServer/Socket`` in SocketServerTLS, ``/SocketServerTLS``
#    in SocketServer's articles: an absolute path, the other module's name
#    first; without the slash docc looks in the module's own extensions of
#    SocketServer's types and fails, which is the form for those:
#    ``SocketServer/BaseServer/enableTLS(_:serverNames:)``, the page of
#    SocketServerTLS's extension). docc resolves them with its external
#    link support, experimental in this docc: every other module's archive
#    as a --dependency. An archive to depend on must exist first, so with
#    more than one module each is first converted on its own, its warnings
#    ignored (its links to the others cannot resolve yet), only for the
#    link metadata of its pages; then each is converted again against the
#    others, warnings as errors, and that is the one merged.
convert() {  # convert MODULE OUTPUT [DOCC OPTION...]
    local module=$1 target=$2 lower
    shift 2
    local catalog=Sources/$module/$module.docc args=()
    [ -d "$catalog" ] && args+=("$catalog")
    lower=$(tr '[:upper:]' '[:lower:]' <<<"$module")
    rm -rf "$target"
    mkdir -p "$(dirname "$target")"
    docc convert "${args[@]}" "$@" \
        --enable-experimental-external-link-support \
        --additional-symbol-graph-dir "$work/graphs/$module" \
        --output-path "$target" \
        --fallback-display-name "$module" \
        --fallback-bundle-identifier "org.socketserver.$lower" \
        --transform-for-static-hosting --hosting-base-path "$base"
}

if [ ${#modules[@]} -gt 1 ]; then
    for module in "${modules[@]}"; do
        echo "== docc convert $module (link metadata for the other modules)"
        convert "$module" "$work/links/$module.doccarchive" >"$work/docc-links-$module.log" 2>&1 \
            || { cat "$work/docc-links-$module.log" >&2; echo "error: docc convert $module failed" >&2; exit 1; }
    done
fi
for module in "${modules[@]}"; do
    echo "== docc convert $module"
    dependencies=()
    for other in "${modules[@]}"; do
        [ "$other" = "$module" ] || dependencies+=(--dependency "$work/links/$other.doccarchive")
    done
    if [ ${#modules[@]} -eq 1 ]; then target=$output; else target=$work/archives/$module.doccarchive; fi
    if ! convert "$module" "$target" "${dependencies[@]}" --warnings-as-errors >"$work/docc-$module.log" 2>&1; then
        cat "$work/docc-$module.log" >&2
        echo "error: docc convert $module failed (broken links or other warnings above)" >&2
        status=1
    elif grep -qiE "^(warning|error)" "$work/docc-$module.log"; then
        cat "$work/docc-$module.log" >&2
        echo "error: docc reported problems for $module" >&2
        status=1
    fi
done

if [ ${#modules[@]} -gt 1 ] && [ $status -eq 0 ]; then
    echo "== docc merge ${modules[*]}"
    rm -rf "$output"
    docc merge "$work/archives/"*.doccarchive --output-path "$output" \
        --synthesized-landing-page-name SocketServer >"$work/merge.log" 2>&1 \
        || { cat "$work/merge.log" >&2; echo "error: docc merge failed" >&2; status=1; }
fi

# The site's root is docc's app shell, which has no page for "/" and
# shows "not found" there: make it send the reader to the landing page.
if [ $status -eq 0 ]; then
    landing=${base:+/$base}/documentation/
    [ ${#modules[@]} -gt 1 ] || landing=${base:+/$base}/documentation/$(tr '[:upper:]' '[:lower:]' <<<"${modules[0]}")/
    cat >"$output/index.html" <<HTML
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SocketServer documentation</title>
<meta http-equiv="refresh" content="0; url=$landing">
<link rel="canonical" href="$landing">
</head>
<body><p><a href="$landing">SocketServer documentation</a></p></body>
</html>
HTML
fi

# 4. Every page a page of the site links to is in the site. docc checked
#    the links it was given, but not what it adds itself or what merging
#    changes: a breadcrumb to an extended-module page that docc left out
#    (when all of a module's extensions are curated elsewhere), a link
#    to a module that was not built.
if [ $status -eq 0 ]; then
    echo "== links between the pages of the site"
    python3 - "$output" <<'PY' || status=1
import glob, json, os, sys
site = sys.argv[1]
data = os.path.join(site, "data")
broken = set()
pages = glob.glob(os.path.join(data, "**", "*.json"), recursive=True)
for page in pages:
    with open(page, encoding="utf-8") as f:
        references = json.load(f).get("references", {})
    for reference in references.values():
        url = reference.get("url", "")
        if reference.get("type") != "topic" or not url.startswith("/documentation/"):
            continue
        path = url.split("#")[0].rstrip("/")
        if not os.path.exists(data + path + ".json"):
            broken.add((os.path.relpath(page, data), path))
if broken:
    print(f"error: {len(broken)} link(s) to pages the site does not have:", file=sys.stderr)
    for page, path in sorted(broken):
        print(f"  {page} -> {path}", file=sys.stderr)
    sys.exit(1)
print(f"site links: {len(pages)} pages, every page they link to is there")
PY
fi

if [ $status -ne 0 ]; then
    echo "FAIL: documentation has problems (see above)" >&2
    exit 1
fi
echo "documentation site: $output (serve it under /$base/); the modules' pages:"
for module in "${modules[@]}"; do
    echo "  /$base/documentation/$(tr '[:upper:]' '[:lower:]' <<<"$module")/"
done
