#!/usr/bin/env bash
# Serves the built documentation site on loopback and loads pages in
# headless Chromium, checking that each renders its title: DocC pages are
# drawn by JavaScript, so the check reads the DOM after the scripts ran
# (--dump-dom with a virtual time budget), not the HTML files.
#
# Usage: scripts/check-docs.sh [SITE]     (default: .build-docs/site,
#        as scripts/build-docs.sh makes it; run that first: the pages
#        checked are of both modules, SocketServer and SocketServerTLS)
#
# Needs python3 and Chromium (Debian: apt-get install -y chromium). Writes
# screenshots of the checked pages to .build-docs/screenshots/.
# Environment: DOCS_BASE_PATH as for build-docs.sh (default SocketServer).
set -euo pipefail
cd "$(dirname "$0")/.."

site=${1:-.build-docs/site}
base=${DOCS_BASE_PATH:-SocketServer}
shots=.build-docs/screenshots
[ -f "$site/index.html" ] || { echo "error: no site at $site (run scripts/build-docs.sh first)" >&2; exit 1; }
browser=""
for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null; then browser=$candidate; break; fi
done
[ -n "$browser" ] || { echo "error: no Chromium found (apt-get install -y chromium)" >&2; exit 1; }

tmp=$(mktemp -d)
server_pid=""
cleanup() {
    local status=$?
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT

# The site expects to be served under /$base/: serve a folder holding it
# under that name. Port 0: the kernel picks a free one, which the server
# prints; wait for that line (deadline 10 s).
mkdir -p "$tmp/root" "$shots"
ln -s "$(cd "$site" && pwd)" "$tmp/root/$base"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$tmp/root" >"$tmp/http.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*port \([0-9][0-9]*\).*/\1/p' "$tmp/http.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1  # deadline: 100 polls of the server's first line
done
[ -n "$port" ] || { cat "$tmp/http.log" >&2; echo "error: the HTTP server did not start" >&2; exit 1; }
root="http://127.0.0.1:$port/$base/documentation"
echo "serving $site at http://127.0.0.1:$port/$base/ ($browser)"

chrome() {
    timeout 90 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-dev-shm-usage --user-data-dir="$tmp/profile" \
        --virtual-time-budget=15000 --window-size=1280,900 "$@" 2>>"$tmp/chromium.log"
}

failures=0
# check PATH TITLE NAME: the page at PATH renders an <h1> reading TITLE.
check() {
    local url="$root/$1" want=$2 name=$3
    local dom="$tmp/$name.html"
    if ! chrome --dump-dom "$url" >"$dom"; then
        echo "FAIL $url: chromium failed (log: $(tail -n 3 "$tmp/chromium.log"))" >&2
        failures=$((failures + 1)); return
    fi
    local got
    got=$(python3 - "$dom" <<'PY'
import html, re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
# DocC's rendered title; the <noscript> fallback h1 has another class.
m = re.search(r'<h1[^>]*class="(?:[^"]*\s)?title(?:\s[^"]*)?"[^>]*>(.*?)</h1>', text, re.S)
print(html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip() if m else "")
PY
)
    if [ "$got" != "$want" ]; then
        echo "FAIL $url: title '${got:-<none: not rendered>}', expected '$want'" >&2
        failures=$((failures + 1)); return
    fi
    if ! chrome --screenshot="$shots/$name.png" "$url" >/dev/null || [ ! -s "$shots/$name.png" ]; then
        echo "FAIL $url: no screenshot" >&2
        failures=$((failures + 1)); return
    fi
    echo "ok   $url renders '$got' (screenshot $shots/$name.png)"
}

# The site is both modules merged (scripts/build-docs.sh's default).
pages=0
page() { pages=$((pages + 1)); check "$@"; }
page ../ SocketServer site-root  # the site's root leads to the landing page
page socketserver/ SocketServer landing
page socketserver/baseserver BaseServer baseserver
page socketserver/gettingstarted "Getting started" gettingstarted
page socketservertls/ SocketServerTLS tls-landing
page socketservertls/tlscontext TLSContext tls-context

if [ "$failures" -ne 0 ]; then
    echo "FAIL: $failures of $pages documentation page(s) did not render" >&2
    exit 1
fi
echo "docs: $pages pages rendered"
