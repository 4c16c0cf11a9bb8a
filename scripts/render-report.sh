#!/bin/sh
# Render a cutover dossier (HTML) to a PNG in headless Chromium, e.g. for the README or a
# slide: scripts/render-report.sh dossier.html dossier.png [WIDTH] [HEIGHT]
# Installs Debian's `chromium` package with apt-get if it is missing. The dossier is one
# self-contained file, so Chromium runs offline (no network needed or used).
set -eu

html=${1:?usage: render-report.sh DOSSIER.html OUT.png [WIDTH] [HEIGHT]}
png=${2:?usage: render-report.sh DOSSIER.html OUT.png [WIDTH] [HEIGHT]}
width=${3:-1200}
height=${4:-2400}

if ! command -v chromium >/dev/null 2>&1; then
    echo "chromium not found: installing Debian's chromium package" >&2
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
mkdir -p "$(dirname "$png")"
abs_png=$(cd "$(dirname "$png")" && pwd)/$(basename "$png")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

# --no-sandbox: root in a container has no user namespaces for the sandbox.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$profile" --no-first-run --disable-extensions \
    --window-size="$width,$height" --screenshot="$abs_png" "file://$abs_html" 2>/dev/null
test -s "$abs_png"
echo "$abs_png"
