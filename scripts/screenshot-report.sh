#!/usr/bin/env bash
# Render an onnxpipe HTML report (or the batch index.html) in headless Chromium and save
# a full-page PNG screenshot, to check by eye that the page reads well.
#
#   scripts/screenshot-report.sh REPORT.html [OUT.png] [WIDTH]
#
# OUT.png defaults to REPORT.png beside the report; WIDTH (CSS pixels) to 1280. The page
# height is measured first (Chromium's --dump-dom on a copy of the page with a one-line
# script that records document height), then the screenshot is taken with a window that
# tall, so the whole page is in the image. Needs Debian's `chromium` package
# (apt-get install chromium); without it the script says so and exits 0 (skipped).
# CHROMIUM=/path/to/chrome picks another binary.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
	echo "usage: $0 REPORT.html [OUT.png] [WIDTH]" >&2
	exit 2
fi
html=$1
out=${2:-${html%.html}.png}
width=${3:-1280}
if [ ! -f "$html" ]; then
	echo "$0: $html: no such file" >&2
	exit 1
fi

chrome=${CHROMIUM:-}
if [ -z "$chrome" ]; then
	for c in chromium chromium-browser google-chrome; do
		if command -v "$c" >/dev/null 2>&1; then
			chrome=$(command -v "$c")
			break
		fi
	done
fi
if [ -z "$chrome" ]; then
	echo "screenshot-report: SKIPPED: no chromium found (apt-get install chromium, or set CHROMIUM=/path/to/chrome)"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
# The measuring copy sits beside the original so that relative links resolve the same.
probe=$(dirname "$abs")/.screenshot-probe-$$.html
trap 'rm -rf "$tmp" "$probe"' EXIT
{
	cat "$abs"
	echo '<script>document.documentElement.setAttribute("data-page-height", Math.ceil(document.documentElement.getBoundingClientRect().height));</script>'
} >"$probe"

flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run
	--disable-extensions --user-data-dir="$tmp/profile" --force-device-scale-factor=1)
height=$("$chrome" "${flags[@]}" --window-size="$width,800" --virtual-time-budget=2000 \
	--dump-dom "file://$probe" 2>/dev/null | sed -n 's/.*data-page-height="\([0-9]*\)".*/\1/p' | head -1)
if [ -z "$height" ]; then
	echo "$0: could not measure the page height; using 4000" >&2
	height=4000
fi
height=$((height + 16))
"$chrome" "${flags[@]}" --window-size="$width,$height" --virtual-time-budget=2000 \
	--screenshot="$out" "file://$abs" >/dev/null 2>"$tmp/chrome.log" || {
	cat "$tmp/chrome.log" >&2
	exit 1
}
if [ ! -s "$out" ]; then
	echo "$0: chromium wrote no screenshot" >&2
	cat "$tmp/chrome.log" >&2
	exit 1
fi
echo "screenshot: $out (${width}x${height})"
