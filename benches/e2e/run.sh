#!/usr/bin/env bash
# End-to-end loopback benchmark: the release `arcly` server side by side with
# nginx + libnginx-mod-rtmp, both fed the same 2.5 Mb/s H.264+AAC stream by
# ffmpeg, both played by N RTMP players from one load-generator process
# (benches/e2e/loadgen.rs, built on arcly_rtmp::client::RtmpClient).
#
# Run through `cargo xtask bench e2e [options]`, or directly:
#   benches/e2e/run.sh [--steps 100,500,1000,2000] [--servers arcly,nginx]
# (the full ramp with the HTTP-FLV series takes about 10 minutes on 2 cores;
# steps under 500 players and the 0-player baseline measure over 3 windows)
#                      [--flv | --no-flv] [--settle S] [--window S] [--rate R]
#                      [--workers W] [--perf] [--protos rtmp,flv]
# --protos (E2E_PROTOS) picks the series: rtmp (every server), flv (arcly's
# HTTP-FLV series); default both. --no-flv is --protos rtmp.
# --perf (E2E_PERF=1) adds a `perf record -g` of the server after each
# measurement window (target/e2e/perf-<timestamp>/LABEL-PROTO-N.perf.data).
# Environment equivalents: E2E_STEPS, E2E_SERVERS, E2E_FLV (1/0), E2E_SETTLE,
# E2E_WINDOW, E2E_RATE, E2E_WORKERS. E2E_ARCLY_BIN overrides the arcly binary
# (e.g. a fallback server), E2E_ARCLY_ARGS adds flags to it.
#
# For each server and each N it reports server CPU (% of one core, utime+stime
# of the server process over a fixed window after the ramp settled), RSS, RSS
# per player above the 0-player baseline, players behind real time (> 2 s),
# failed players, and the median/p99 time from connect to first keyframe;
# then the arcly/nginx ratios against the project's targets.
# Results: target/e2e/results-<timestamp>.tsv (+ a copy at target/e2e/latest.tsv);
# server and publisher logs in target/e2e/logs-<timestamp>/.
# Everything listens on 127.0.0.1 and every process started here is stopped on
# exit (trap). Each load-generator run is bounded by `timeout`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STEPS=${E2E_STEPS:-100,500,1000,2000}
SERVERS=${E2E_SERVERS:-arcly,nginx}
FLV=${E2E_FLV:-1}
SETTLE=${E2E_SETTLE:-5}
WINDOW=${E2E_WINDOW:-10}
RATE=${E2E_RATE:-200}
WORKERS=${E2E_WORKERS:-2}
PERF=${E2E_PERF:-0}
PROTOS=${E2E_PROTOS:-rtmp,flv}
# The machine may be busy with other work: as root, the servers, the
# publisher and the load generator run at nice -10, and so does this
# session's scheduler autogroup (Linux shares CPU between sessions first when
# sched_autogroup is on, whatever the nice values inside them; restored on
# exit), so a single-threaded server (nginx) is not starved by unrelated
# jobs more than a multi-threaded one. E2E_NICE=0 turns this off.
NICE=${E2E_NICE:--10}

while [ $# -gt 0 ]; do
    case "$1" in
        --steps) STEPS=$2; shift 2 ;;
        --servers) SERVERS=$2; shift 2 ;;
        --flv) FLV=1; shift ;;
        --no-flv) FLV=0; shift ;;
        --settle) SETTLE=$2; shift 2 ;;
        --window) WINDOW=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --perf) PERF=1; shift ;;
        --protos) PROTOS=$2; shift 2 ;;
        e2e) shift ;; # passed through by `cargo xtask bench e2e`
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if command -v cargo-retry >/dev/null 2>&1; then CARGO=cargo-retry; else CARGO=${CARGO:-cargo}; fi
OUT=$ROOT/target/e2e
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/arcly-e2e.XXXXXX)
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$OUT/results-$STAMP.tsv
PERFDIR=$OUT/perf-$STAMP
LOGS=$OUT/logs-$STAMP
mkdir -p "$LOGS"
PIDS=()

log() { echo "[e2e $(date +%H:%M:%S)] $*" >&2; }

cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    sleep 0.5
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
    if [ -n "${AUTOGROUP_NICE:-}" ]; then echo "$AUTOGROUP_NICE" >"/proc/$$/autogroup" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() { # stop one process we started, by pid
    local p=$1
    kill "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
}

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 10000))
        if ! ss -Hltn "sport = :$p" | grep -q .; then echo "$p"; return; fi
    done
    echo "no free port" >&2; exit 1
}

wait_port() { # port, pid, what
    for _ in $(seq 150); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        kill -0 "$2" 2>/dev/null || { log "$3 exited at start; see its log"; return 1; }
        sleep 0.1
    done
    log "$3 did not listen on :$1 within 15 s"; return 1
}

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
RUN=()
AUTOGROUP_NICE=""
if [ "$(id -u)" = 0 ] && [ "$NICE" != 0 ]; then
    RUN=(nice -n "$NICE")
    if [ -w "/proc/$$/autogroup" ] && [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
        AUTOGROUP_NICE=$(sed -n 's/.* nice //p' "/proc/$$/autogroup")
        echo "$NICE" >"/proc/$$/autogroup" || AUTOGROUP_NICE=""
    fi
fi
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- builds
log "building the load generator (release)"
$CARGO build --release -q -p arcly-benches --example e2e-loadgen
LOADGEN=$ROOT/target/release/examples/e2e-loadgen

ARCLY=${E2E_ARCLY_BIN:-}
if [[ ",$SERVERS," == *",arcly,"* ]] && [ -z "$ARCLY" ]; then
    log "building the arcly server (release)"
    if $CARGO build --release -q -p arcly-server --bin arcly; then
        ARCLY=$ROOT/target/release/arcly
    else
        log "arcly-server does not build: skipping arcly (set E2E_ARCLY_BIN to use another server)"
        SERVERS=${SERVERS//arcly/}
    fi
fi

if [[ ",$SERVERS," == *",nginx,"* ]]; then
    NGINX_MOD=/usr/lib/nginx/modules/ngx_rtmp_module.so
    if ! command -v nginx >/dev/null 2>&1 || [ ! -f "$NGINX_MOD" ]; then
        log "installing nginx and libnginx-mod-rtmp"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q nginx libnginx-mod-rtmp >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q nginx libnginx-mod-rtmp >/dev/null; }
    fi
fi

# ---------------------------------------------------------------- the clip
# 30 s of 1280x720 30 fps testsrc2 + a sine, x264 ultrafast/zerolatency at
# 2.5 Mb/s (GOP 60 = 2 s) + AAC, encoded once; published with -c copy so
# encoding CPU does not compete with the servers during the measurement.
CLIP=$OUT/clip-720p30-2500k.flv
if [ ! -s "$CLIP" ]; then
    log "encoding the 30 s publish clip once: $CLIP"
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -t 30 -c:v libx264 -preset ultrafast -tune zerolatency -b:v 2500k -maxrate 2500k -bufsize 2500k \
        -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
        -c:a aac -b:a 128k -ar 48000 -ac 2 -f flv "$CLIP.tmp"
    mv "$CLIP.tmp" "$CLIP"
fi

publish() { # url -> pid of ffmpeg
    "${RUN[@]}" ffmpeg -nostdin -hide_banner -loglevel error -re -stream_loop -1 -i "$CLIP" \
        -c copy -f flv "$1" >"$LOGS/ffmpeg-$2.log" 2>&1 &
    echo $!
}

# Longest a load-generator run may take.
budget() {
    local total=$((60 + WINDOW * 3)) prev=0 n
    IFS=, read -ra ns <<<"$STEPS"
    for n in "${ns[@]}"; do
        total=$((total + (n - prev) / RATE + 60 + SETTLE + WINDOW * (3 + PERF)))
        prev=$n
    done
    echo "$total"
}

# run_series label proto server-pid url
run_series() {
    local label=$1 proto=$2 spid=$3 url=$4 perfargs=()
    if [ "$PERF" = 1 ]; then mkdir -p "$PERFDIR"; perfargs=(--perf "$PERFDIR"); fi
    log "$label/$proto: publisher settling ${SETTLE}s before the 0-player baseline"
    sleep "$SETTLE"
    kill -0 "$spid" || { log "$label exited"; return 1; }
    timeout --kill-after=10 "$(budget)" "${RUN[@]}" "$LOADGEN" ramp --label "$label" --proto "$proto" \
        --url "$url" --pid "$spid" --steps "$STEPS" --settle "$SETTLE" --window "$WINDOW" \
        --rate "$RATE" --workers "$WORKERS" --clk-tck "$CLK_TCK" --out "$RESULTS" "${perfargs[@]}" ||
        log "$label/$proto: load generator failed or timed out"
}

# ---------------------------------------------------------------- arcly
arcly_series() { # proto
    local proto=$1 rport hport spid ppid args=()
    rport=$(free_port); hport=$(free_port)
    local help; help=$("$ARCLY" --help 2>&1 || true)
    if [ "$proto" = flv ] && [[ $help != *--http-listen* ]]; then
        log "arcly/flv: $ARCLY has no HTTP side (--http-listen): skipping HTTP-FLV"
        return 0
    fi
    args+=(--rtmp-listen "127.0.0.1:$rport")
    [[ $help == *--http-listen* ]] && args+=(--http-listen "127.0.0.1:$hport")
    # Only what nginx-rtmp does too: no HLS packaging, no recording.
    [[ $help == *"--hls "* || $help == *"--hls["* || $help == *"--hls <"* ]] && args+=(--hls false)
    [[ $help == *--max-connections-per-ip* ]] && args+=(--max-connections-per-ip 60000)
    [[ $help == *"--max-connections "* || $help == *"--max-connections <"* ]] && args+=(--max-connections 60000)
    [[ $help == *--log-level* ]] && args+=(--log-level warn)
    # shellcheck disable=SC2206
    args+=(${E2E_ARCLY_ARGS:-})
    log "arcly/$proto: $ARCLY ${args[*]}"
    "${RUN[@]}" "$ARCLY" "${args[@]}" >"$LOGS/arcly-$proto.log" 2>&1 &
    spid=$!; PIDS+=("$spid")
    wait_port "$rport" "$spid" arcly || { cat "$LOGS/arcly-$proto.log" >&2; return 1; }
    ppid=$(publish "rtmp://127.0.0.1:$rport/live/bench" "arcly-$proto"); PIDS+=("$ppid")
    if [ "$proto" = rtmp ]; then
        run_series arcly rtmp "$spid" "rtmp://127.0.0.1:$rport/live/bench"
    else
        run_series arcly flv "$spid" "http://127.0.0.1:$hport/live/bench.flv"
    fi
    kill -0 "$ppid" 2>/dev/null || { log "publisher died:"; cat "$LOGS/ffmpeg-arcly-$proto.log" >&2; }
    stop "$ppid"; stop "$spid"
    tail -n 20 "$LOGS/arcly-$proto.log" | grep -iE 'error|panic' >&2 || true
}

# ---------------------------------------------------------------- nginx-rtmp
nginx_series() {
    local port dir spid master ppid
    port=$(free_port)
    dir=$WORK/nginx; mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
load_module $NGINX_MOD;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $LOGS/nginx-error.log warn;
events { worker_connections 65536; }
rtmp {
    server {
        listen 127.0.0.1:$port;
        chunk_size 4096;
        application live { live on; }
    }
}
EOF
    log "nginx-rtmp: nginx -p $dir -c $dir/nginx.conf ($(nginx -v 2>&1 | sed 's/.*: //'), 1 worker)"
    "${RUN[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -e "$LOGS/nginx-error.log" &
    master=$!; PIDS+=("$master")
    wait_port "$port" "$master" nginx || { cat "$LOGS/nginx-error.log" >&2; return 1; }
    spid=""
    for _ in $(seq 50); do spid=$(pgrep -P "$master" | head -n1 || true); [ -n "$spid" ] && break; sleep 0.1; done
    [ -n "$spid" ] || { log "no nginx worker"; return 1; }
    PIDS+=("$spid")
    ppid=$(publish "rtmp://127.0.0.1:$port/live/bench" nginx); PIDS+=("$ppid")
    run_series nginx rtmp "$spid" "rtmp://127.0.0.1:$port/live/bench"
    kill -0 "$ppid" 2>/dev/null || { log "publisher died:"; cat "$LOGS/ffmpeg-nginx.log" >&2; }
    stop "$ppid"; stop "$master"
}

log "steps $STEPS, servers ${SERVERS}, settle ${SETTLE}s, window ${WINDOW}s, ramp ${RATE}/s, loadgen workers $WORKERS, $(nproc) cores, ${RUN[*]:-no nice}$([ -n "$AUTOGROUP_NICE" ] && echo ", autogroup nice $NICE"), load average $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -ra servers <<<"$SERVERS"
if [[ ",$PROTOS," == *",rtmp,"* ]]; then
    for s in "${servers[@]}"; do
        case "$s" in
            arcly) arcly_series rtmp ;;
            nginx) nginx_series ;;
            "") ;;
            *) log "unknown server $s" ;;
        esac
    done
fi
if [[ ",$SERVERS," == *",arcly,"* ]] && [ "$FLV" = 1 ] && [[ ",$PROTOS," == *",flv,"* ]]; then
    arcly_series flv
fi

if [ -s "$RESULTS" ]; then
    cp "$RESULTS" "$OUT/latest.tsv"
    "$LOADGEN" report "$RESULTS"
    log "results: $RESULTS"
else
    log "no results"; exit 1
fi
