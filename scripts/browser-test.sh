#!/usr/bin/env bash
# Browser test of the web dashboard: installs Debian's chromium if it is missing, then runs the
# ignored test `web_browser`, which starts a KMS host and its dashboard in-process, activates
# clients through the real protocol and checks every page in headless Chromium, saving a
# screenshot of each under target/screenshots/. Exits 0 with a message when Chromium cannot be
# had (no root, no apt-get, no registry).
set -euo pipefail
cd "$(dirname "$0")/.."

find_chromium() {
    local c
    for c in chromium chromium-browser google-chrome; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if ! CHROMIUM="$(find_chromium)"; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "== installing Debian's chromium"
        if ! { timeout 600 apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
                chromium fonts-dejavu-core >/dev/null; }; then
            echo "note: apt-get could not install chromium"
        fi
    fi
    if ! CHROMIUM="$(find_chromium)"; then
        echo "browser test skipped: chromium is not installed and could not be installed (apt-get install chromium)"
        exit 0
    fi
fi
export CHROMIUM
echo "== browser test with $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
timeout 1200 cargo test --locked -p rkms --test web_browser -- --ignored --nocapture
echo "screenshots: $(ls target/screenshots/*.png | tr '\n' ' ')"
