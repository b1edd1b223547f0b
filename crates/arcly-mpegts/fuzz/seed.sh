#!/usr/bin/env bash
# Seed the demux fuzz corpus with slices of the TS fixtures (the first byte
# of an input is where the target splits it in two pushes). Without seeds
# libFuzzer rarely builds a valid PAT/PMT and stays near the sync layer.
#   cd crates/arcly-mpegts/fuzz && ./seed.sh && RUSTC_BOOTSTRAP=1 cargo fuzz run demux
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/demux
for name in h264-aac.ts h264-mp3.ts; do
    for skip in 0 200 1000; do
        { printf '\x30'; dd if="../../../fixtures/media/$name" bs=188 skip=$skip count=21 status=none; } \
            >"corpus/demux/seed-$name-$skip"
    done
done
