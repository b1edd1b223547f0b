#!/bin/sh
# Refresh the vendored hls.js from its npm release.
# Usage: crates/arcly-server/assets/refresh-hlsjs.sh [VERSION]   (default: latest)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-latest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack "hls.js@$version" >/dev/null
tar xzf hls.js-*.tgz
cp package/dist/hls.min.js "$here/hls.min.js"
cp package/LICENSE "$here/hls.js.LICENSE"
v=$(node -p 'require("./package/package.json").version')
sed -i "s/^hls.js version: .*/hls.js version: $v/" "$here/README.md"
sed -i "s/^sha256: .*/sha256: $(sha256sum "$here/hls.min.js" | cut -d' ' -f1)/" "$here/README.md"
echo "hls.js $v vendored into $here"
