#!/usr/bin/env bash
# benches/proxy_bench.sh — tracer against nginx and against no proxy at all.
#
# One run measures, on 127.0.0.1 only:
#   1. small keep-alive GETs (wrk): the upstream direct, nginx proxy_pass to it,
#      and tracer (capture on, SQLite) to it — req/s, p50, p99, peak RSS;
#   2. a large PUT (1 GiB by default) direct, through nginx and through tracer —
#      MiB/s and peak RSS — and checks that tracer stored the body's size and
#      SHA-256.
# Prints a Markdown report and writes it to benches/results/latest.md.
# Every knob is an environment variable; see benches/README.md or --help.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    cat <<'EOF'
usage: benches/proxy_bench.sh            (knobs are environment variables)

  THREADS=2 CONNS=32 DURATION=10s   wrk -t/-c/-d, the same for every target
  WARMUP=3s                         one unmeasured wrk run per target first
  REPS=3                            measured runs per target (median reported)
  UPLOAD_BYTES=1G                   size of the PUT (bytes, or K/M/G suffix)
  UPLOAD_REPS=$REPS                 uploads per target (median reported)
  UPLOAD_MODE=length                length (Content-Length) | chunked
  UPLOAD_NGINX=1                    also upload through nginx (0: skip)
  UPLOAD_FRESH_TRACER=1             restart tracer before the uploads (0: reuse)
  TARGETS="direct nginx tracer"     drop one to skip it
  NGINX_WORKERS=$(nproc)            nginx worker_processes
  UPSTREAM_THREADS=                 upstream tokio worker threads (default: cores)
  TRACER_MAX_BODY_BYTES=            [storage].max_body_bytes (default: tracer's)
  SKIP_INSTALL=0 SKIP_BUILD=0       skip apt-get / cargo build
  TRACER_BIN=target/release/tracer  the tracer binary to measure (benches/ab.sh: two of them)
  KEEP_TMP=0                        keep the temp dir (logs, configs, bench.db)
  OUT=benches/results/latest.md     where the report goes (also printed)
EOF
}
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    usage
    exit 0
fi

# ---------------------------------------------------------------- knobs
seconds() { # "10s" | "10" -> 10
    local v=${1%s}
    [[ $v =~ ^[0-9]+$ ]] || { echo "bad duration: $1" >&2; exit 2; }
    echo "$v"
}
bytes() { # "1G" | "256M" | "1073741824" -> bytes
    local v=$1 n
    case $v in
        *[Gg]) n=$((${v%?} * 1024 * 1024 * 1024)) ;;
        *[Mm]) n=$((${v%?} * 1024 * 1024)) ;;
        *[Kk]) n=$((${v%?} * 1024)) ;;
        *) n=$v ;;
    esac
    [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || { echo "bad size: $1" >&2; exit 2; }
    echo "$n"
}

THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
DURATION=$(seconds "${DURATION:-10s}")
WARMUP=$(seconds "${WARMUP:-3s}")
REPS=${REPS:-3}
UPLOAD_BYTES=$(bytes "${UPLOAD_BYTES:-1G}")
UPLOAD_REPS=${UPLOAD_REPS:-$REPS}
UPLOAD_MODE=${UPLOAD_MODE:-length}
UPLOAD_NGINX=${UPLOAD_NGINX:-1}
UPLOAD_FRESH_TRACER=${UPLOAD_FRESH_TRACER:-1}
TARGETS=${TARGETS:-direct nginx tracer}
NGINX_WORKERS=${NGINX_WORKERS:-$(nproc)}
UPSTREAM_THREADS=${UPSTREAM_THREADS:-}
TRACER_MAX_BODY_BYTES=${TRACER_MAX_BODY_BYTES:-}
SKIP_INSTALL=${SKIP_INSTALL:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP_TMP=${KEEP_TMP:-0}
OUT=${OUT:-$ROOT/benches/results/latest.md}

[[ $UPLOAD_MODE == length || $UPLOAD_MODE == chunked ]] || { echo "UPLOAD_MODE: length or chunked" >&2; exit 2; }
for n in THREADS CONNS REPS UPLOAD_REPS NGINX_WORKERS; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || { echo "$n must be a positive integer" >&2; exit 2; }
done
has_target() { [[ " $TARGETS " == *" $1 "* ]]; }
has_target direct || { echo "TARGETS must include direct (it is the baseline)" >&2; exit 2; }

# Upper bounds so that nothing can loop or hang forever.
WRK_GRACE=30                                         # s beyond -d before wrk is killed
UPLOAD_TIMEOUT=$((120 + UPLOAD_BYTES * 2 / (1024 * 1024))) # s per upload (>= 0.5 MiB/s)
READY_SECS=20                                        # s for a server to start listening

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# ---------------------------------------------------------------- cleanup
# Every process this script starts is recorded here (name=pid) and stopped on
# exit, whatever the exit path (error, Ctrl-C, SIGTERM).
declare -A PROCS=()
TMP=""
POLICY_CREATED=""

stop_pid() { # stop_pid PID SIGNAL SECONDS: signal, wait (bounded), then SIGKILL
    local pid=$1 sig=$2 secs=$3 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$pid did not stop after ${secs}s of SIG$sig; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local name
    for name in "${!PROCS[@]}"; do
        stop_pid "${PROCS[$name]}" TERM 20
    done
    [[ -n $POLICY_CREATED ]] && rm -f "$POLICY_CREATED"
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ $KEEP_TMP == 1 || $rc -ne 0 ]]; then
            log "temp dir kept: $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------- install
install_deps() {
    local need=()
    command -v wrk >/dev/null || need+=(wrk)
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
    command -v curl >/dev/null || need+=(curl)
    command -v jq >/dev/null || need+=(jq)
    ((${#need[@]})) || return 0
    [[ $SKIP_INSTALL == 1 ]] && die "missing: ${need[*]} (and SKIP_INSTALL=1)"
    [[ $(id -u) == 0 ]] || die "missing: ${need[*]}; run as root or install them"
    command -v apt-get >/dev/null || die "missing: ${need[*]}; no apt-get to install them"
    # The nginx package would start the system nginx on :80; we only want the
    # binary. policy-rc.d answering 101 tells the package not to start it.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        POLICY_CREATED=/usr/sbin/policy-rc.d
    fi
    log "installing ${need[*]}"
    apt-get update -qq
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; then
        # Some releases only have the full nginx package.
        need=("${need[@]/nginx-light/nginx}")
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if [[ -n $POLICY_CREATED ]]; then
        rm -f "$POLICY_CREATED"
        POLICY_CREATED=""
    fi
}
install_deps
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

# ---------------------------------------------------------------- build
if [[ $SKIP_BUILD != 1 ]]; then
    if [[ -n ${TRACER_BIN:-} ]]; then
        log "cargo build --release (the upstream example; tracer is $TRACER_BIN)"
        (cd "$ROOT" && cargo build --release --quiet --example bench_upstream)
    else
        log "cargo build --release (tracer and the upstream example)"
        (cd "$ROOT" && cargo build --release --quiet --bin tracer --example bench_upstream)
    fi
fi
TRACER_BIN=${TRACER_BIN:-$ROOT/target/release/tracer}
UPSTREAM_BIN=$ROOT/target/release/examples/bench_upstream
[[ -x $UPSTREAM_BIN ]] || die "$UPSTREAM_BIN missing (run without SKIP_BUILD)"
has_target tracer && { [[ -x $TRACER_BIN ]] || die "$TRACER_BIN missing (run without SKIP_BUILD)"; }

TMP=$(mktemp -d /tmp/tracer-bench.XXXXXX)
log "temp dir $TMP"

# ---------------------------------------------------------------- helpers
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

CHOSEN_PORTS=" "
free_port() { # a port nobody listens on (and not handed out already)
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 30000))
        [[ $CHOSEN_PORTS == *" $p "* ]] && continue
        port_open "$p" && continue
        CHOSEN_PORTS+="$p "
        echo "$p"
        return 0
    done
    die "no free port found"
}

# start NAME LOGFILE CMD...: runs CMD in the background, records its pid.
start() {
    local name=$1 logf=$2
    shift 2
    "$@" >"$logf" 2>&1 &
    PROCS[$name]=$!
}

# bounded NAME SECONDS OUT CMD...: runs CMD under `timeout` with stdout to OUT
# and stderr to OUT.err, and returns its status. It runs in the background and
# is waited for, so that Ctrl-C is acted on at once (bash runs a trap only
# after a foreground command ends); `timeout` makes its own process group and
# passes a signal on to all of it, so stopping it stops a whole pipeline.
bounded() {
    local name=$1 secs=$2 out=$3 rc=0
    shift 3
    timeout --kill-after=5 "$secs" "$@" >"$out" 2>"$out.err" &
    PROCS[$name]=$!
    wait "$!" || rc=$?
    unset "PROCS[$name]"
    return "$rc"
}

wait_port() { # wait_port NAME PORT: until PORT accepts, NAME must stay alive
    local name=$1 port=$2 i
    for ((i = 0; i < READY_SECS * 10; i++)); do
        port_open "$port" && return 0
        kill -0 "${PROCS[$name]}" 2>/dev/null || {
            tail -n 20 "$TMP/$name.log" >&2 || true
            die "$name exited before listening on $port"
        }
        sleep 0.1
    done
    tail -n 20 "$TMP/$name.log" >&2 || true
    die "$name not listening on $port after ${READY_SECS}s"
}

# The processes whose memory counts for a target: nginx is a master plus
# workers; the others are one process.
server_pids() {
    local pid=${PROCS[$1]} c
    echo "$pid"
    for c in /proc/"$pid"/task/*/children; do
        [[ -r $c ]] && cat "$c"
    done
    return 0
}
target_proc() { case $1 in direct) echo upstream ;; *) echo "$1" ;; esac; }

# Peak RSS: VmHWM is reset (clear_refs 5) before each measured run and read
# after it, so it is the peak of that run alone. Summed over processes (an
# upper bound for nginx: shared pages count once per worker).
HWM_RESET=1
reset_hwm() {
    local p
    for p in $(server_pids "$(target_proc "$1")"); do
        echo 5 2>/dev/null >"/proc/$p/clear_refs" || HWM_RESET=0
    done
}
status_kib() { # status_kib TARGET FIELD: sum of FIELD (kB) over the target's processes
    local p sum=0 v
    for p in $(server_pids "$(target_proc "$1")"); do
        v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || true)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# CPU time (user + system, clock ticks) the target's processes have used so
# far, every thread included: per request it is steadier than req/s on a
# shared machine, since it does not depend on what else gets the cores.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
    local p sum=0 v
    for p in $(server_pids "$(target_proc "$1")"); do
        v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf f, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.3f", a / b }'; }
verdict() { # verdict VALUE OP LIMIT -> met / NOT met
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
        if (v == "nan") { print "n/a"; exit }
        ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0)
        print ok ? "met" : "**NOT met**" }'
}

# ---------------------------------------------------------------- upstream
UP_PORT=$(free_port)
UP_ARGS=("127.0.0.1:$UP_PORT")
[[ -n $UPSTREAM_THREADS ]] && UP_ARGS+=("$UPSTREAM_THREADS")
start upstream "$TMP/upstream.log" "$UPSTREAM_BIN" "${UP_ARGS[@]}"
wait_port upstream "$UP_PORT"
log "upstream on 127.0.0.1:$UP_PORT (pid ${PROCS[upstream]})"
declare -A PORT=([direct]=$UP_PORT)

# ---------------------------------------------------------------- nginx
if has_target nginx; then
    NGX=$TMP/nginx
    mkdir -p "$NGX/tmp"
    PORT[nginx]=$(free_port)
    # A fair reverse proxy: HTTP/1.1 with keep-alive to the upstream, one
    # worker per core, no logging, bodies streamed both ways, no size limit.
    cat >"$NGX/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream bench_upstream {
        server 127.0.0.1:$UP_PORT;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]};
        client_max_body_size 0;
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
        }
    }
}
EOF
    "$NGINX_BIN" -t -q -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" ||
        die "nginx rejects $NGX/nginx.conf"
    start nginx "$TMP/nginx.log" "$NGINX_BIN" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log"
    wait_port nginx "${PORT[nginx]}"
    log "nginx on 127.0.0.1:${PORT[nginx]} ($NGINX_WORKERS workers, pid ${PROCS[nginx]})"
fi

# ---------------------------------------------------------------- tracer
if has_target tracer; then
    PORT[tracer]=$(free_port)
    ADMIN_PORT=$(free_port)
    DB_URL="sqlite://$TMP/bench.db"
    {
        echo "[storage]"
        echo "url = \"$DB_URL\""
        [[ -n $TRACER_MAX_BODY_BYTES ]] && echo "max_body_bytes = $TRACER_MAX_BODY_BYTES"
        echo
        echo "[admin]"
        echo "listen = \"127.0.0.1:$ADMIN_PORT\""
        echo
        echo "[[service]]"
        echo "name = \"bench\""
        echo "listen = \"127.0.0.1:${PORT[tracer]}\""
        echo "upstream = \"http://127.0.0.1:$UP_PORT\""
    } >"$TMP/tracer.toml"
fi
ADMIN=http://127.0.0.1:${ADMIN_PORT:-0}

start_tracer() {
    start tracer "$TMP/tracer.log" "$TRACER_BIN" --config "$TMP/tracer.toml" serve
    wait_port tracer "${PORT[tracer]}"
    wait_port tracer "$ADMIN_PORT"
    TRACER_RSS_START=${TRACER_RSS_START:-$(status_kib tracer VmRSS)} # the first start's
    log "tracer on 127.0.0.1:${PORT[tracer]}, admin :$ADMIN_PORT (pid ${PROCS[tracer]})"
}

# stop_tracer: asks the daemon what its writer did (after a flush), then stops
# it the way a user would (SIGTERM: finish, flush, exit 0). The writer's
# counters are added up over every daemon of the run.
Q_STORED=0 Q_LOST=0 Q_ERRORS=0 Q_QUEUED=0 TRACER_STOPS="" TRACER_RSS_START=""
stop_tracer() {
    local stats k v pid=${PROCS[tracer]} t0 code=timeout i
    curl -fsS --max-time 60 -X POST "$ADMIN/api/flush" >"$TMP/flush.json" 2>&1 ||
        log "POST /api/flush failed: $(cat "$TMP/flush.json")"
    stats=$(curl -fsS --max-time 10 "$ADMIN/api/stats") || stats='{}'
    # add VAR FIELD: VAR += .queue.FIELD ("n/a" once any daemon did not say)
    add() {
        v=$(jq -r ".queue.$2 // \"n/a\"" <<<"$stats")
        printf -v "$1" '%s' "$(awk -v a="${!1}" -v b="$v" \
            'BEGIN { print (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/) ? a + b : "n/a" }')"
    }
    add Q_STORED stored
    add Q_LOST lost
    add Q_ERRORS write_errors
    add Q_QUEUED queued
    TRACER_RSS_END=$(status_kib tracer VmRSS)
    t0=$(date +%s.%N)
    kill -TERM "$pid"
    for ((i = 0; i < 600; i++)); do # at most 60 s
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        code=0
        wait "$pid" || code=$?
        unset 'PROCS[tracer]'
    fi
    TRACER_STOPS+="${TRACER_STOPS:+; }exit $code after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s"
    [[ $code == 0 ]] || die "tracer did not stop cleanly on SIGTERM ($code)"
}
has_target tracer && start_tracer

# ---------------------------------------------------------------- sanity
# One request per target: same body everywhere, and tracer stamps its headers.
EXPECTED_BODY=$(curl -fsS --max-time 10 "http://127.0.0.1:$UP_PORT/")
SENT_TO_TRACER=0
for t in $TARGETS; do
    body=$(curl -fsS --max-time 10 -D "$TMP/sanity-$t.headers" "http://127.0.0.1:${PORT[$t]}/") ||
        die "$t: GET / failed"
    [[ $body == "$EXPECTED_BODY" ]] || die "$t answers a different body: $body"
done
if has_target tracer; then
    SENT_TO_TRACER=1
    grep -qi '^X-Requestshook-Request-Id:' "$TMP/sanity-tracer.headers" ||
        die "tracer's response has no X-Requestshook-Request-Id"
fi

# ---------------------------------------------------------------- wrk
# run_wrk TARGET SECONDS: sets W_REQ W_RPS W_P50 W_P99 (ms) W_ERR
run_wrk() {
    local t=$1 secs=$2 out=$TMP/wrk-$1.out line
    bounded wrk $((secs + WRK_GRACE)) "$out" \
        wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency -s "$ROOT/benches/wrk_report.lua" \
        "http://127.0.0.1:${PORT[$t]}/" || die "wrk against $t failed: $(tail -n 3 "$out" "$out.err")"
    line=$(grep '^WRK_RESULT ' "$out") || die "no WRK_RESULT from wrk against $t"
    local -A r=()
    local kv
    for kv in ${line#WRK_RESULT }; do r[${kv%%=*}]=${kv#*=}; done
    W_REQ=${r[requests]}
    W_RPS=$(awk -v n="${r[requests]}" -v us="${r[duration_us]}" 'BEGIN { printf "%.1f", n * 1e6 / us }')
    W_P50=$(awk -v us="${r[p50_us]}" 'BEGIN { printf "%.3f", us / 1000 }')
    W_P99=$(awk -v us="${r[p99_us]}" 'BEGIN { printf "%.3f", us / 1000 }')
    W_ERR=$((r[err_connect] + r[err_read] + r[err_write] + r[err_status] + r[err_timeout]))
}

declare -A RPS=() P50=() P99=() RSS=() CPU=() ERRS=() TRACER_RSS_AFTER=()
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

log "warm-up: ${WARMUP}s per target"
for t in $TARGETS; do
    run_wrk "$t" "$WARMUP"
    [[ $t == tracer ]] && SENT_TO_TRACER=$((SENT_TO_TRACER + W_REQ))
done

# Targets are interleaved within each repetition so that a change in the
# machine's load hits all of them alike.
for ((rep = 1; rep <= REPS; rep++)); do
    for t in $TARGETS; do
        reset_hwm "$t"
        ticks=$(cpu_ticks "$t")
        run_wrk "$t" "$DURATION"
        ticks=$(($(cpu_ticks "$t") - ticks))
        rss=$(status_kib "$t" VmHWM)
        cpu=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="$W_REQ" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
        CPU[$t]+="$cpu "
        RPS[$t]+="$W_RPS "
        P50[$t]+="$W_P50 "
        P99[$t]+="$W_P99 "
        RSS[$t]+="$rss "
        ERRS[$t]=$((${ERRS[$t]:-0} + W_ERR))
        if [[ $t == tracer ]]; then
            SENT_TO_TRACER=$((SENT_TO_TRACER + W_REQ))
            TRACER_RSS_AFTER[$rep]=$(status_kib tracer VmRSS)
        fi
        log "rep $rep $t: $W_RPS req/s p50 ${W_P50}ms p99 ${W_P99}ms peak RSS $((rss / 1024)) MiB CPU $cpu µs/req errors $W_ERR"
    done
done

# ---------------------------------------------------------------- upload
UPLOAD_TARGETS=direct
[[ $UPLOAD_NGINX == 1 ]] && has_target nginx && UPLOAD_TARGETS+=" nginx"
has_target tracer && UPLOAD_TARGETS+=" tracer"

# A daemon that has just served the small-request runs keeps what its
# allocator and SQLite grew to; the upload's own memory is measured on a
# fresh one (same database) unless UPLOAD_FRESH_TRACER=0.
if has_target tracer; then
    TRACER_RSS_LOADED=$(status_kib tracer VmRSS)
    if [[ $UPLOAD_FRESH_TRACER == 1 ]]; then
        log "restarting tracer for the upload"
        stop_tracer
        start_tracer
    fi
fi

UPLOAD_FILE=$TMP/upload.bin
truncate -s "$UPLOAD_BYTES" "$UPLOAD_FILE" # sparse: no disk, reads as zeros
log "sha256 of the $UPLOAD_BYTES-byte upload"
UPLOAD_SHA=$(sha256sum "$UPLOAD_FILE" | cut -d' ' -f1)

# upload TARGET: sets U_SECS; fails unless the upstream got every byte.
upload() {
    local t=$1 url=http://127.0.0.1:${PORT[$1]}/upload resp=$TMP/upload-$1.resp
    local w=$TMP/upload-$1.out out
    local -a curl_args=(-sS -o "$resp" -w '%{http_code} %{time_total}' -H 'Expect:')
    if [[ $UPLOAD_MODE == length ]]; then
        bounded upload "$UPLOAD_TIMEOUT" "$w" curl "${curl_args[@]}" -T "$UPLOAD_FILE" "$url" ||
            die "upload to $t failed: $(cat "$w.err")"
    else
        # shellcheck disable=SC2016 # $1 and $@ belong to the inner bash
        bounded upload "$UPLOAD_TIMEOUT" "$w" bash -c 'head -c "$1" /dev/zero | curl "${@:2}"' \
            _ "$UPLOAD_BYTES" "${curl_args[@]}" -T - "$url" || die "upload to $t failed: $(cat "$w.err")"
    fi
    out=$(cat "$w")
    [[ ${out%% *} == 201 ]] || die "upload to $t: HTTP ${out%% *}: $(head -c 300 "$resp")"
    local got
    got=$(jq -r .received "$resp")
    [[ $got == "$UPLOAD_BYTES" ]] || die "upload to $t: upstream received $got of $UPLOAD_BYTES bytes"
    U_SECS=${out#* }
}

declare -A U_MIBS=() U_RSS=() U_RSS_BEFORE=()
for ((rep = 1; rep <= UPLOAD_REPS; rep++)); do
    for t in $UPLOAD_TARGETS; do
        reset_hwm "$t"
        U_RSS_BEFORE[$t]+="$(status_kib "$t" VmRSS) "
        upload "$t"
        rss=$(status_kib "$t" VmHWM)
        mibs=$(awk -v b="$UPLOAD_BYTES" -v s="$U_SECS" 'BEGIN { printf "%.1f", b / 1048576 / s }')
        U_MIBS[$t]+="$mibs "
        U_RSS[$t]+="$rss "
        [[ $t == tracer ]] && SENT_TO_TRACER=$((SENT_TO_TRACER + 1))
        log "upload $rep $t: ${U_SECS}s = $mibs MiB/s, peak RSS $((rss / 1024)) MiB"
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- tracer's record
# Stop the daemon and read the database it left.
if has_target tracer; then
    stop_tracer

    # Rows in the database: sqlite3 if it is there, else `tracer list`.
    DB_FILE=$TMP/bench.db
    DB_ROWS=n/a DB_ERRORS=""
    if command -v sqlite3 >/dev/null; then
        DB_ROWS=$(sqlite3 "$DB_FILE" "SELECT count(*) FROM exchanges" 2>/dev/null) || DB_ROWS=n/a
        # Exchanges stored with an error (e.g. cut off when wrk stopped), by error.
        DB_ERRORS=$(sqlite3 -separator ' × ' "$DB_FILE" "SELECT count(*), error FROM exchanges
            WHERE error IS NOT NULL GROUP BY error ORDER BY 1 DESC LIMIT 5" 2>/dev/null | paste -sd ';' -) || true
    fi
    if [[ $DB_ROWS == n/a ]]; then
        DB_ROWS=$("$TRACER_BIN" --db "$DB_URL" list --all --json --limit 100000000 | wc -l) || DB_ROWS=n/a
    fi
    DB_MIB=$(du -cm "$DB_FILE"* 2>/dev/null | tail -n 1 | cut -f1)

    # The uploads' stored request bodies: size and SHA-256 as sent.
    UPLOAD_CHECK="no PUT exchange found"
    ids=$("$TRACER_BIN" --db "$DB_URL" list --all --method PUT --json --limit "$UPLOAD_REPS" 2>"$TMP/list.err" |
        jq -r '.id' 2>/dev/null) || ids=""
    ok=0 bad=0 detail=""
    for id in $ids; do
        shown=$("$TRACER_BIN" --db "$DB_URL" show "$id" --json 2>>"$TMP/list.err") || { bad=$((bad + 1)); continue; }
        size=$(jq -r '.request.body.size' <<<"$shown")
        sha=$(jq -r '.request.body.sha256' <<<"$shown")
        if [[ $size == "$UPLOAD_BYTES" && $sha == "$UPLOAD_SHA" ]]; then
            ok=$((ok + 1))
        else
            bad=$((bad + 1))
            detail="; exchange $id has size $size, sha256 $sha"
        fi
    done
    [[ -n $ids ]] && UPLOAD_CHECK="$ok of $((ok + bad)) stored PUT bodies have size $UPLOAD_BYTES and the input's SHA-256$detail"
    [[ -s $TMP/list.err ]] && UPLOAD_CHECK+=" (tracer list/show said: $(head -c 200 "$TMP/list.err" | tr '\n' ' '))"
fi

# ---------------------------------------------------------------- report
declare -A LABEL=([direct]="direct (upstream)" [nginx]="nginx proxy_pass" [tracer]="tracer, capture on")
declare -A M_RPS=() M_P50=() M_P99=() M_RSS=() M_CPU=() M_UP=() M_URSS=()
for t in $TARGETS; do
    # shellcheck disable=SC2086 # word splitting of the space-separated lists is wanted
    M_RPS[$t]=$(median ${RPS[$t]})
    # shellcheck disable=SC2086
    M_P50[$t]=$(median ${P50[$t]})
    # shellcheck disable=SC2086
    M_P99[$t]=$(median ${P99[$t]})
    # shellcheck disable=SC2086
    M_RSS[$t]=$(maxof ${RSS[$t]})
    # shellcheck disable=SC2086
    M_CPU[$t]=$(median ${CPU[$t]})
done
for t in $UPLOAD_TARGETS; do
    # shellcheck disable=SC2086
    M_UP[$t]=$(median ${U_MIBS[$t]})
    # shellcheck disable=SC2086
    M_URSS[$t]=$(maxof ${U_RSS[$t]})
done
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

mkdir -p "$(dirname "$OUT")"
{
    echo "# tracer proxy benchmark"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); tracer $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
    echo "- machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
    echo "- load average (1/5/15 min) at start: $LOAD_START; at end: $LOAD_END"
    echo "- wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, ${WARMUP}s warm-up per target, then $REPS measured run(s) per target, interleaved; medians (peak RSS: the highest run)"
    echo "- upstream: benches' bench_upstream (tokio + httparse), ${#EXPECTED_BODY}-byte JSON body; nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///'), $NGINX_WORKERS workers"
    echo
    echo "## Small requests"
    echo
    echo "| target | req/s | p50 (ms) | p99 (ms) | peak RSS (MiB) | CPU µs/request | wrk errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for t in $TARGETS; do
        echo "| ${LABEL[$t]} | $(fmt "${M_RPS[$t]}" %.0f) | $(fmt "${M_P50[$t]}" %.3f) | $(fmt "${M_P99[$t]}" %.3f) | $(mib "${M_RSS[$t]}") | $(fmt "${M_CPU[$t]}" %.1f) | ${ERRS[$t]} |"
    done
    echo
    if has_target nginx; then
        echo "- nginx / direct req/s: **$(ratio "${M_RPS[nginx]}" "${M_RPS[direct]}")**"
    fi
    if has_target tracer; then
        echo "- tracer / direct req/s: **$(ratio "${M_RPS[tracer]}" "${M_RPS[direct]}")**"
    fi
    if has_target tracer && has_target nginx; then
        q=$(ratio "${M_RPS[tracer]}" "${M_RPS[nginx]}")
        echo "- tracer / nginx req/s: **$q** — target ≥ 0.8: $(verdict "$q" '>=' 0.8); goal ≥ 1.0: $(verdict "$q" '>=' 1.0)"
        echo "- tracer / nginx p50: $(ratio "${M_P50[tracer]}" "${M_P50[nginx]}"), p99: $(ratio "${M_P99[tracer]}" "${M_P99[nginx]}"), CPU per request: $(ratio "${M_CPU[tracer]}" "${M_CPU[nginx]}") (lower is better)"
    fi
    echo
    echo "## $(awk -v b="$UPLOAD_BYTES" 'BEGIN { printf "%g MiB", b / 1048576 }') upload (PUT, $UPLOAD_MODE framing)"
    echo
    echo "| path | MiB/s | peak RSS (MiB) |"
    echo "| --- | ---: | ---: |"
    for t in $UPLOAD_TARGETS; do
        echo "| ${LABEL[$t]} | $(fmt "${M_UP[$t]}" %.1f) | $(mib "${M_URSS[$t]}") |"
    done
    echo
    if has_target tracer; then
        q=$(ratio "${M_UP[tracer]}" "${M_UP[direct]}")
        rss_mib=$(mib "${M_URSS[tracer]}")
        echo "- tracer / direct throughput: **$q** — target ≥ 0.8: $(verdict "$q" '>=' 0.8)"
        fresh="a daemon started for the uploads"
        [[ $UPLOAD_FRESH_TRACER == 1 ]] || fresh="the daemon that served the small requests"
        # shellcheck disable=SC2086
        echo "- tracer peak RSS during the upload: **$rss_mib MiB** — target ≤ 32 MiB: $(verdict "$rss_mib" '<=' 32) ($fresh; RSS just before: $(mib "$(maxof ${U_RSS_BEFORE[tracer]})") MiB)"
        echo "- stored body check: $UPLOAD_CHECK"
    fi
    [[ $UPLOAD_NGINX == 1 ]] && has_target nginx &&
        echo "- nginx / direct throughput: $(ratio "${M_UP[nginx]}" "${M_UP[direct]}")"
    if has_target tracer; then
        echo
        echo "## tracer's record"
        echo
        echo "- exchanges sent through tracer and answered: $SENT_TO_TRACER (wrk counts answered requests only; up to $CONNS per wrk run may be cut off in flight when it stops, and tracer may store those too)"
        echo "- writer after flush: stored $Q_STORED, lost $Q_LOST, write errors $Q_ERRORS, queued in all $Q_QUEUED"
        echo "- rows in the database after shutdown: $DB_ROWS ($DB_MIB MiB on disk)"
        echo "- stored with an error: ${DB_ERRORS:-none}"
        echo "- shutdown on SIGTERM: $TRACER_STOPS"
        echo "- tracer RSS (MiB) after each small-request run: $(for k in $(printf '%s\n' "${!TRACER_RSS_AFTER[@]}" | sort -n); do printf '%s ' "$(mib "${TRACER_RSS_AFTER[$k]}")"; done)(right after start: $(mib "$TRACER_RSS_START"); at the end of that phase: $(mib "$TRACER_RSS_LOADED")); after the uploads: $(mib "$TRACER_RSS_END")"
    fi
    echo
    echo "<details><summary>every run</summary>"
    echo
    echo "| target | req/s | p50 (ms) | p99 (ms) | peak RSS (MiB) | CPU µs/request |"
    echo "| --- | --- | --- | --- | --- | --- |"
    for t in $TARGETS; do
        echo "| $t | ${RPS[$t]}| ${P50[$t]}| ${P99[$t]}| $(for k in ${RSS[$t]}; do printf '%s ' "$(mib "$k")"; done)| ${CPU[$t]}|"
    done
    for t in $UPLOAD_TARGETS; do
        echo "| upload $t (MiB/s; RSS before → peak) | ${U_MIBS[$t]}| | | $(paste -d' ' <(tr ' ' '\n' <<<"${U_RSS_BEFORE[$t]}") <(tr ' ' '\n' <<<"${U_RSS[$t]}") |
            awk 'NF == 2 { printf "%.1f→%.1f ", $1 / 1024, $2 / 1024 }')|"
    done
    echo
    echo "</details>"
    [[ $HWM_RESET == 1 ]] || { echo; echo "Note: /proc/PID/clear_refs was not writable: peak RSS is since process start."; }
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "report written to $OUT"
