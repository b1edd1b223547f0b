#!/usr/bin/env bash
# Whole-process remux: `remux IN OUT` (this crate's example: read, demux,
# mux, write) against `ffmpeg -c copy -f mpegts` on the same large input,
# alternating runs in the same invocation. Prints the median wall-clock and
# CPU (user+sys) seconds of each and the ratios.
#
#   crates/arcly-mpegts/benches/remux_vs_ffmpeg.sh [LOOPS] [RUNS]
#
# LOOPS (default 400): how many times fixtures/media/h264-aac.ts is looped
# into the input (400 = 155 MB, 40 min). RUNS (default 7). Files go to
# $BENCH_DIR (default /dev/shm, so the disk does not dominate); each output
# is deleted before its run so neither side pays for truncating the last one.
set -euo pipefail
here=$(cd "$(dirname "$0")/../../.." && pwd)
loops=${1:-400}
runs=${2:-7}
dir=${BENCH_DIR:-/dev/shm}
ff=${FFMPEG:-ffmpeg}
timebin=/usr/bin/time
[ -x "$timebin" ] || { echo "needs GNU time at $timebin" >&2; exit 1; }
command -v "$ff" >/dev/null || { echo "needs ffmpeg on PATH (or FFMPEG=)" >&2; exit 1; }

cd "$here"
cargo_bin=${CARGO:-cargo}
command -v cargo-retry >/dev/null && cargo_bin=cargo-retry
"$cargo_bin" build --release -q -p arcly-mpegts --example remux
remux="${CARGO_TARGET_DIR:-$here/target}/release/examples/remux"

in="$dir/arcly-remux-bench-$$.ts"
ours="$dir/arcly-remux-bench-$$.ours.ts"
theirs="$dir/arcly-remux-bench-$$.ffmpeg.ts"
trap 'rm -f "$in" "$ours" "$theirs"' EXIT
"$ff" -hide_banner -v error -y -stream_loop $((loops - 1)) -i fixtures/media/h264-aac.ts \
    -map 0 -c copy -f mpegts "$in"
size=$(stat -c %s "$in")

# one run: prints "wall cpu"
measure() {
    local out=$1; shift
    rm -f "$out"
    "$timebin" -f "%e %U %S" -o "$dir/arcly-remux-bench-$$.time" "$@" >/dev/null 2>&1
    awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$dir/arcly-remux-bench-$$.time"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: >"$dir/arcly-remux-bench-$$.ours"
: >"$dir/arcly-remux-bench-$$.ff"
for _ in $(seq "$runs"); do
    measure "$ours" "$remux" "$in" "$ours" >>"$dir/arcly-remux-bench-$$.ours"
    measure "$theirs" "$ff" -hide_banner -v error -y -i "$in" -map 0 -c copy -f mpegts "$theirs" \
        >>"$dir/arcly-remux-bench-$$.ff"
done
ow=$(cut -d' ' -f1 "$dir/arcly-remux-bench-$$.ours" | median)
oc=$(cut -d' ' -f2 "$dir/arcly-remux-bench-$$.ours" | median)
fw=$(cut -d' ' -f1 "$dir/arcly-remux-bench-$$.ff" | median)
fc=$(cut -d' ' -f2 "$dir/arcly-remux-bench-$$.ff" | median)
rm -f "$dir/arcly-remux-bench-$$".{ours,ff,time}
echo "input: $size bytes ($loops x h264-aac.ts), $runs runs each, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "arcly remux  : wall $ow s, cpu $oc s, out $(stat -c %s "$ours") bytes"
echo "ffmpeg -c copy: wall $fw s, cpu $fc s, out $(stat -c %s "$theirs") bytes"
awk -v ow="$ow" -v oc="$oc" -v fw="$fw" -v fc="$fc" -v size="$size" 'BEGIN {
    printf "ratio (ffmpeg / arcly): wall %.2fx, cpu %.2fx; arcly %.0f MB/s wall\n",
        fw / ow, fc / oc, size / ow / 1e6 }'
