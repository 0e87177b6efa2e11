#!/usr/bin/env bash
# Install headless Chromium (Debian package `chromium`) for Keel's browser check of
# `keel report` pages (crates/keel-eval/tests/report_browser.rs).
#
# Idempotent: does nothing when a Chromium binary is already present. Set KEEL_CHROMIUM to
# use a binary elsewhere (the test reads the same variable).
# Needs root (or sudo) and Debian/Ubuntu apt; on other systems install Chromium yourself and
# point KEEL_CHROMIUM at it.
set -euo pipefail

for c in "${KEEL_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [[ -n "$c" && -x "$c" ]]; then
        echo "fetch_chromium: $c already present ($("$c" --version 2>/dev/null || echo 'version unknown'))"
        exit 0
    fi
done

command -v apt-get >/dev/null || { echo "fetch_chromium: apt-get not found; install Chromium and set KEEL_CHROMIUM" >&2; exit 1; }
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || { echo "fetch_chromium: need root or sudo for apt-get" >&2; exit 1; }
    SUDO="sudo"
fi

echo "fetch_chromium: installing Debian package chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Fonts so chart labels render with real glyphs; --no-install-recommends keeps it small.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
[[ -x /usr/bin/chromium ]] || { echo "fetch_chromium: /usr/bin/chromium missing after install" >&2; exit 1; }
echo "fetch_chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
