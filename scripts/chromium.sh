#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright: install it when missing
# (as root, or through sudo). VOLCAST_CHROMIUM points the tests at another Chromium binary.
set -euo pipefail
browser=${VOLCAST_CHROMIUM:-/usr/bin/chromium}
[ -x "$browser" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian's chromium for the browser tests..."
$sudo apt-get install -y -qq chromium >/dev/null 2>&1 || {
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq chromium >/dev/null
}
