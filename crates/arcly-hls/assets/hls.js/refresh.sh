#!/bin/sh
# Re-fetch hls.js from its npm release into this folder (used by the
# headless-Chromium playback tests). Usage: ./refresh.sh [version]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-latest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack "hls.js@$version" >/dev/null
tar xzf hls.js-*.tgz
cp package/dist/hls.min.js package/LICENSE "$here/"
node -p 'require("./package/package.json").version' > "$here/VERSION"
echo "hls.js $(cat "$here/VERSION") vendored into $here"
