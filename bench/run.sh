#!/usr/bin/env bash
# Side-by-side benchmarks: coronet vs Go vs tokio vs may vs std threads vs a hand-written
# epoll loop. One command: installs what is missing, builds everything, runs, prints tables
# with ratios to Go. See docs/benchmarks.md for what each number means.
#
# Usage: bench/run.sh [--quick] [--nice] [--reps N] [--out FILE]
#                     [--only micro|echo|ab|echo2|stream|churn|conns|kv|http|sync]
#
#   --quick      small N, one repetition, short windows: a smoke run of 3-5 minutes
#   --only X,..  run some parts: micro (runtime core), echo (one worker), ab (echo, coronet and
#                one other server on the server core at the same time), echo2 (two workers)
#                also stream (bulk echo), churn (connect, echo, close), conns (RSS per idle
#                connection), kv (redis-benchmark), http (wrk), sync (channels and locks)
#   --reps N     repetitions of every cell (default 5 micro / 3 echo, 1 with --quick);
#                cells show the median and the half-spread
#   --out FILE   raw results (default bench/results/run-DATE.tsv); FILE.md gets the tables
#   --nice       run every measured process at nice -20 (root), so a busy shared machine
#                disturbs the numbers less; the load average is recorded either way
#
# AB_OTHERS (environment, default "epoll tokio"): the servers part ab sets beside coronet
# (any of go tokio may std epoll epoll-ownbuf, the last being the loop with a read buffer per
# connection as every other server has; each side gets a CPU cgroup of equal weight, so Go's
# extra threads do not take a bigger share of the core).
# A path counts too: any echo server taking ADDR WORKERS and printing "ready" once it
# listens, such as a copy of target/perf/echo_coronet built from another commit, so
#   cp target/perf/echo_coronet /tmp/echo_before   # ...change, then:
#   AB_OTHERS=/tmp/echo_before bench/run.sh --nice --only ab
# measures a change to the runtime against its parent to about ±1 %.
# ECHO_EPOLL_SPIN_NS=N (environment) makes the epoll loop burn N ns of pure CPU per request,
# to calibrate what coronet's extra cost per request is worth (docs/benchmarks.md, section 2).
#
# It needs root (or sudo) for two things only: apt-get install of what is missing (golang-go,
# wrk, redis-tools, redis-server), and raising vm.max_map_count for the million-coroutine test
# (restored on exit). The library never touches sysctls; this benchmark does because 1M stacks
# with guard pages need 2M maps on kernels before 6.13 (about 32,000 with guard markers).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0 ONLY="" REPS="" OUT="" PRIO=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --nice) PRIO="nice -n -20" ;;
        --only) ONLY=$2; shift ;;
        --reps) REPS=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--quick] [--nice] [--reps N] [--out FILE] [--only PART,...]; parts: micro echo ab stream churn conns kv http echo2 sync" >&2; exit 2 ;;
    esac
    shift
done
PARTS="micro echo ab stream churn conns kv http echo2 sync" # in run order
for p in ${ONLY//,/ }; do
    [[ " $PARTS " == *" $p "* ]] || { echo "$0: --only: unknown part '$p' (parts: $PARTS)" >&2; exit 2; }
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/perf # Cargo.toml's `perf` profile: release + fat LTO
GOBIN=$CARGO_TARGET_DIR/go
mkdir -p "$ROOT/bench/results" "$GOBIN"
OUT=${OUT:-$ROOT/bench/results/run-$(date +%Y%m%d-%H%M%S).tsv}
LOGS=$(mktemp -d /tmp/coronet-bench.XXXXXX)
: >"$OUT"

if [ "$QUICK" = 1 ]; then
    MICRO_REPS=${REPS:-1} ECHO_REPS=${REPS:-1} AB_REPS=${REPS:-2}
    N_SPAWN=100000 N_SPAWN_STD=5000 N_PING=100000 N_PING_STD=10000 N_IDLE=100000
    WARMUP=0.5 DURATION=1
    CONNS="1 100 1000 9000" CONNS2="1000"
    STREAM_MIB=256 N_REDIS=20000 IDLE_CONNS=9000
else
    # Sized to finish in under 20 minutes on 2 cores (estimated from --quick part times: ~18
    # min plus the build under heavy load); each part's wall time goes into the results header.
    MICRO_REPS=${REPS:-5} ECHO_REPS=${REPS:-3} AB_REPS=${REPS:-4}
    N_SPAWN=1000000 N_SPAWN_STD=20000 N_PING=1000000 N_PING_STD=50000 N_IDLE=1000000
    WARMUP=1 DURATION=3
    CONNS="1 100 1000 9000" CONNS2="100 1000"
    STREAM_MIB=512 N_REDIS=150000 IDLE_CONNS=9000
fi

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
# Like want, and starts timing the part (ending the previous one's timing): each part's
# wall time goes into the results header, to size --quick against the full run.
PART="" PART_T0=0
part() {
    want "$1" || return 1
    part_end
    PART=$1 PART_T0=$SECONDS
}
part_end() {
    if [ -n "$PART" ]; then printf '# part %s took %d s\n' "$PART" $((SECONDS - PART_T0)) >>"$OUT"; fi
    PART=""
}
say() { echo "== $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- what we need -----------------------------------------------------------------------

MISSING=""
command -v go >/dev/null || MISSING="$MISSING golang-go"
command -v wrk >/dev/null || MISSING="$MISSING wrk"
command -v redis-benchmark >/dev/null || MISSING="$MISSING redis-tools"
command -v redis-server >/dev/null || MISSING="$MISSING redis-server"
if [ -n "$MISSING" ]; then
    say "installing (Debian packages):$MISSING"
    # shellcheck disable=SC2086 # one word per package
    as_root apt-get update -qq && as_root apt-get install -y -qq $MISSING >/dev/null
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }

SAVED_MAP_COUNT=""
SERVER_PID="" # the one echo server running, if any
AB_PID=""     # the first of two servers run side by side (part ab), while the second starts
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -9 "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$AB_PID" ]; then kill -9 "$AB_PID" 2>/dev/null || true; fi
    ab_cgroup_rm
    if [ -n "$SAVED_MAP_COUNT" ]; then
        as_root sysctl -qw vm.max_map_count="$SAVED_MAP_COUNT" || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two cores: the server gets core 0, the load client core 1. On one core they share it.
if [ "$(nproc)" -ge 2 ]; then SRV_CPU=0 CLI_CPU=1; else SRV_CPU=0 CLI_CPU=0; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

say "building (cargo --profile perf, go build)"
BUILD_T0=$SECONDS
HAVE_CORONET=1
if ! (cd "$ROOT" && cargo build -q --profile perf -p coronet-bench --features coronet); then
    say "coronet does not build: running the other contenders only"
    HAVE_CORONET=0
    (cd "$ROOT" && cargo build -q --profile perf -p coronet-bench)
fi
# The coronet side of the kv and http cases is the examples themselves.
(cd "$ROOT" && cargo build -q --profile perf --examples) || HAVE_CORONET=0
(cd "$ROOT/bench/go" && go build -o "$GOBIN/go_rt" ./rt && go build -o "$GOBIN/go_echo" ./echo &&
    go build -o "$GOBIN/go_kv" ./kv && go build -o "$GOBIN/go_http" ./http)

# --- running one measurement ------------------------------------------------------------

# The command line of a contender's binary for one part (core or echo) and worker count.
cmd_of() { # part contender workers
    local part=$1 c=$2 w=$3
    case "$c" in
        go) if [ "$part" = core ]; then echo "env GOMAXPROCS=$w $GOBIN/go_rt"; else echo "env GOMAXPROCS=$w $GOBIN/go_echo"; fi ;;
        epoll-ownbuf) echo "env ECHO_EPOLL_OWN_BUF=1 $BIN/${part}_epoll" ;; # a buffer per connection
        */*) echo "$c" ;; # a binary of one's own (AB_OTHERS)
        *) echo "$BIN/${part}_$c" ;;
    esac
}

# Records "F" for a contender that cannot run at all; returns 1 so callers skip it.
available() { # table group contender
    if [ "$3" = coronet ] && [ "$HAVE_CORONET" = 0 ]; then
        printf 'F\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "does not build" >>"$OUT"
        return 1
    fi
}

# Runs a core benchmark pinned to the server core; appends its RESULT line or a failure.
micro() { # table group contender timeout args...
    local table=$1 group=$2 c=$3 limit=$4; shift 4
    available "$table" "$group" "$c" || return 0
    local log=$LOGS/$table-$c.err res
    # shellcheck disable=SC2046 # cmd_of's words are meant to split
    res=$(timeout "$limit" $PRIO taskset -c "$SRV_CPU" $(cmd_of core "$c" 1) "$@" 2>"$log" | grep '^RESULT' | tail -1) || true
    if [ -n "$res" ]; then
        printf 'R\t%s\t%s\t%s\t%s\n' "$table" "$group" "$c" "$res" >>"$OUT"
        echo "   $group $c: ${res#RESULT }" >&2
    else
        local why; why=$(tail -1 "$log" | tr '\t' ' ' | cut -c1-80); why=${why:-no result (timeout $limit s?)}
        printf 'F\t%s\t%s\t%s\t%s\n' "$table" "$group" "$c" "$why" >>"$OUT"
        echo "   $group $c: FAILED: $why" >&2
    fi
}

# Below the ephemeral range (32768+ by default), where client sockets would collide.
PORT=$((10000 + RANDOM % 15000))

# Starts a server pinned to SRV_CPUS and waits until it says it listens. The command's words
# may contain @PORT@, replaced by a fresh port (the next one is tried when the port is taken).
# Sets SERVER_PID and SERVER_ADDR, or returns 1 with the reason in START_WHY.
start_server() { # log srv_cpus command...
    local log=$1 srv=$2; shift 2
    local pid="" cmd
    START_WHY=""
    # A port someone else holds makes the server exit at once: try the next one.
    for _ in 1 2 3; do
        PORT=$((PORT + 1))
        cmd=("${@//@PORT@/$PORT}")
        # taskset, nice and env exec, so $! is the server process itself (loadgen reads its
        # CPU time from /proc/$!/stat).
        # shellcheck disable=SC2086 # PRIO is empty or "nice -n -20"
        $PRIO taskset -c "$srv" "${cmd[@]}" >"$log" 2>&1 &
        pid=$!
        SERVER_PID=$pid
        for _ in $(seq 300); do # up to 30 s: a loaded machine starts 9,000 threads slowly
            grep -qE "$READY" "$log" 2>/dev/null && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if grep -qE "$READY" "$log" 2>/dev/null; then
            SERVER_ADDR=127.0.0.1:$PORT
            return 0
        fi
        # Say how it failed, so that a failure with nothing in the log still tells something.
        local how st=0
        if kill -0 "$pid" 2>/dev/null; then
            how="no ready line in 30 s"
            stop_server
        else
            wait "$pid" 2>/dev/null || st=$?
            SERVER_PID=""
            if [ "$st" -gt 128 ]; then how="killed by signal $((st - 128))"; else how="exit status $st"; fi
        fi
        grep -qi 'AddrInUse\|address already in use' "$log" || break
    done
    START_WHY="server did not start ($how): $(tail -1 "$log" | tr '\t' ' ' | cut -c1-60)"
    return 1
}
# What the servers print once listening: ours "ready", the examples "listening on",
# redis-server "Ready to accept connections".
READY='^ready|listening on|Ready to accept'

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# Appends one run's RESULT line, or a failure with its reason, to the results file.
record() { # table group contender result why
    if [ -n "$4" ]; then
        printf 'R\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$OUT"
        echo "   $2 $3: ${4#RESULT }" >&2
    else
        printf 'F\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${5:-no result}" >>"$OUT"
        echo "   $2 $3: FAILED: ${5:-no result}" >&2
    fi
}

# One measurement against a fresh server: starts it on SRV_CPUS, runs the client command on
# CLI_CPUS (a function below, which finds the server in CL_ADDR and CL_PID and prints a
# RESULT line), stops the server and records the result.
measure() { # table group contender srv_cpus cli_cpus client-words -- server command...
    local table=$1 group=$2 c=$3 srv=$4 cli=$5 client=$6
    shift 7 # ... and the "--"
    available "$table" "$group" "$c" || return 0
    local log res="" why=""
    log=$LOGS/$table-$c-$(echo "$group" | tr -c 'a-zA-Z0-9_\n' _).srv
    if start_server "$log" "$srv" "$@"; then
        CL_ADDR=$SERVER_ADDR CL_PID=$SERVER_PID CL_CPUS=$cli
        # shellcheck disable=SC2086 # the client's words are meant to split
        res=$($client 2>"$log.client" | grep '^RESULT' | tail -1) || true
        [ -n "$res" ] || why=$(tail -1 "$log.client" | tr '\t' ' ' | cut -c1-80)
    else
        why=$START_WHY
    fi
    stop_server
    record "$table" "$group" "$c" "$res" "$why"
}

# The clients. Each runs pinned to CL_CPUS against CL_ADDR and prints one RESULT line.
lg() { # loadgen MODE ARGS...
    # shellcheck disable=SC2086 # PRIO is empty or "nice -n -20"
    timeout 180 $PRIO taskset -c "$CL_CPUS" "$BIN/loadgen" "$1" "$CL_ADDR" "${@:2}" --server-pid "$CL_PID"
}

# CPU time (utime + stime) of process $1 in microseconds, from /proc/PID/stat.
cpu_us() {
    sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($12 + $13) * 1e6 / hz }'
}

# wrk, one thread, keep-alive connections; latency percentiles from --latency, server CPU
# per request from /proc over the whole run.
wrk_client() { # connections
    local c0 c1 out
    c0=$(cpu_us "$CL_PID")
    # shellcheck disable=SC2086 # PRIO is empty or "nice -n -20"
    out=$(timeout 60 $PRIO taskset -c "$CL_CPUS" wrk -t1 -c"$1" -d"${DURATION}s" --latency "http://$CL_ADDR/") || return 1
    c1=$(cpu_us "$CL_PID")
    echo "$out" >&2
    echo "$out" | awk -v cpu=$((c1 - c0)) '
        function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1e3; if (v ~ /s$/) return v * 1e6; return v }
        $1 == "50%" { p50 = us($2) } $1 == "99%" { p99 = us($2) }
        / requests in / { n = $1 } /^Requests\/sec:/ { rps = $2 }
        /Non-2xx|Socket errors/ { bad = 1 }
        END { if (n > 0 && !bad) printf "RESULT req/s=%s p50_us=%.1f p99_us=%.1f srv_cpu_us/req=%.3f\n", rps, p50, p99, cpu / n }'
}

# redis-benchmark, one test, 50 connections; --csv gives rps and latency percentiles (ms).
redis_client() { # test requests [pipeline]
    local c0 c1 out
    c0=$(cpu_us "$CL_PID")
    # shellcheck disable=SC2086 # PRIO is empty or "nice -n -20"
    out=$(timeout 60 $PRIO taskset -c "$CL_CPUS" redis-benchmark -h 127.0.0.1 -p "${CL_ADDR##*:}" \
        -c 50 -n "$2" -P "${3:-1}" -t "$1" --csv) || return 1
    c1=$(cpu_us "$CL_PID")
    echo "$out" >&2
    echo "$out" | tr -d '"' | awk -F, -v cpu=$((c1 - c0)) -v n="$2" '
        NR > 1 && $2 > 0 { printf "RESULT req/s=%s p50_us=%.1f p99_us=%.1f srv_cpu_us/req=%.3f\n", $2, $5 * 1e3, $7 * 1e3, cpu / n }'
}

# Starts an echo server on SRV_CPUS with W workers, drives it with loadgen on CLI_CPUS.
echo_run() { # table group contender workers conns srv_cpus cli_cpus
    # shellcheck disable=SC2046 # cmd_of's words are meant to split
    measure "$1" "$2" "$3" "$6" "$7" "lg echo --conns $5 --warmup $WARMUP --duration $DURATION" \
        -- $(cmd_of echo "$3" "$4") 127.0.0.1:@PORT@ "$4"
}

# --- the runs ---------------------------------------------------------------------------

{
    printf '# %s\n' "$(date -u +%FT%TZ) $(uname -r) nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
    printf '# %s | %s | tokio %s | may %s\n' "$(rustc --version)" "$(go version)" \
        "$(grep -A1 '^name = "tokio"$' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')" \
        "$(grep -A1 '^name = "may"$' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
    printf '# load average at the start: %s; priority: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "${PRIO:-normal}"
    printf '# build took %d s\n' $((SECONDS - BUILD_T0))
} >>"$OUT"

CORE_CONTENDERS="coronet go tokio may std"
if part micro; then
    printf 'T\tmicro\t%s\n' "Runtime core: one core (taskset -c $SRV_CPU), one worker; median of $MICRO_REPS (ratio = value / Go)" >>"$OUT"
    say "microbenchmarks: spawn+join, park/unpark ping-pong ($MICRO_REPS runs each)"
    for rep in $(seq "$MICRO_REPS"); do
        for c in $CORE_CONTENDERS; do
            n=$N_SPAWN; [ "$c" = std ] && n=$N_SPAWN_STD
            micro micro "spawn+join (lower is better)" "$c" 120 spawn "$n"
        done
        for c in $CORE_CONTENDERS; do
            n=$N_PING; [ "$c" = std ] && n=$N_PING_STD
            micro micro "ping-pong round trip (lower is better)" "$c" 120 pingpong "$n"
        done
    done
    # Each parked coroutine takes 2 mappings (stack + guard) in may, and in coronet on kernels
    # before 6.13 (since then coronet maps its stacks in batches of up to 64, one mapping each).
    need=$((2 * N_IDLE + 65536))
    cur=$(cat /proc/sys/vm/max_map_count)
    if [ "$cur" -lt "$need" ]; then
        if as_root sysctl -qw vm.max_map_count="$need"; then SAVED_MAP_COUNT=$cur; fi
    fi
    say "$N_IDLE parked coroutines (one run each, after one not recorded)"
    for c in coronet go tokio may; do
        # Setting up is mostly page faults on gigabytes of fresh memory, and a guest that
        # hands freed memory back to its host (free page reporting, as on the Firecracker
        # guests of docs/benchmarks.md) pays the host's faults too on memory idle for a
        # few seconds: touching 4 GiB took 1.4-1.8 s right after another such run and
        # 3.4-3.6 s after 30 s idle there. So each contender first runs once unrecorded,
        # and the recorded run reuses the memory that one just freed.
        if [ "$c" != coronet ] || [ "$HAVE_CORONET" != 0 ]; then
            # shellcheck disable=SC2046 # cmd_of's words are meant to split
            timeout 300 $PRIO taskset -c "$SRV_CPU" $(cmd_of core "$c" 1) idle "$N_IDLE" --sleep 3600 >/dev/null 2>&1 || true
        fi
        micro micro "$N_IDLE parked (sleeping)" "$c" 300 idle "$N_IDLE" --sleep 3600
    done
    printf 'F\tmicro\t%s\tstd\t%s\n' "$N_IDLE parked (sleeping)" "n/a (OS threads)" >>"$OUT"
fi

ECHO_CONTENDERS="coronet go tokio may std epoll"
if part echo; then
    printf 'T\techo1\t%s\n' "Echo, 64-byte ping-pong, server on core $SRV_CPU with one worker, loadgen on core $CLI_CPU; median of $ECHO_REPS x ${DURATION}s (ratio = value / Go)" >>"$OUT"
    say "echo matrix, one worker ($ECHO_REPS runs of ${DURATION}s each)"
    for conns in $CONNS; do
        for rep in $(seq "$ECHO_REPS"); do
            for c in $ECHO_CONTENDERS; do
                echo_run echo1 "$conns conns" "$c" 1 "$conns" "$SRV_CPU" "$CLI_CPU"
            done
        done
    done
fi


# Side by side: two echo servers pinned to the server core at once, each driven by its own
# loadgen on the client core, both loadgens running at the same time. The machine's drift
# (±20-30 % between runs a few seconds apart on a shared VM) then hits both servers alike,
# so the ratio of their CPU per request is stable to about ±1 % (coronet against itself
# reads 0.99-1.01). Each server gets about half the core and the two evict each other's
# caches at every switch, a harsher regime than running alone, so the absolute numbers are
# higher than in the echo table; the ratio is what this part is for. It needs both servers
# saturated. The scheduler shares the core per runnable thread, and Go's runtime (spinning
# threads beside the one running goroutines) took six times coronet's share in a trial
# without groups, leaving coronet half idle, which changes what a request costs it. So each
# side runs in a CPU cgroup of its own with equal weight (cgroup v1's cpu controller, or v2
# with cpu enabled; root): the core is then shared per server, whatever its thread count,
# and Go can be served side by side too (AB_OTHERS=go). Without cgroups only servers of
# one thread each (the loop, tokio's current_thread, coronet) compare fairly.
AB_CG="" # the directory holding the two groups, if this machine has them
ab_cgroups() {
    local root
    for root in /sys/fs/cgroup/cpu /sys/fs/cgroup; do
        if [ -f "$root/cgroup.procs" ] && { [ -f "$root/cpu.shares" ] ||
            grep -qw cpu "$root/cgroup.subtree_control" 2>/dev/null; }; then
            if as_root mkdir -p "$root/coronet-ab/a" "$root/coronet-ab/b" 2>/dev/null; then
                AB_CG=$root/coronet-ab
                return 0
            fi
        fi
    done
    return 1
}
ab_cgroup_rm() { # after the kills: a group with a process in it cannot be removed
    if [ -n "$AB_CG" ]; then
        sleep 0.2
        as_root rmdir "$AB_CG/a" "$AB_CG/b" "$AB_CG" 2>/dev/null || true
    fi
}
ab_join() { # side pid: moves every thread of pid into the side's group
    if [ -n "$AB_CG" ]; then echo "$2" | as_root tee "$AB_CG/$1/cgroup.procs" >/dev/null; fi
}
ab_run() { # table group contender-a contender-b conns (a path is recorded by its file name)
    local table=$1 group=$2 a=$3 b=$4 conns=$5 pa addr_a pb addr_b
    local log=$LOGS/$(echo "$table-$group" | tr -c 'a-zA-Z0-9_\n' _)
    available "$table" "$group" "$a" && available "$table" "$group" "$b" || return 0
    # shellcheck disable=SC2046 # cmd_of's words are meant to split
    if ! start_server "$log-a.srv" "$SRV_CPU" $(cmd_of echo "$a" 1) 127.0.0.1:@PORT@ 1; then
        record "$table" "$group" "${a##*/}" "" "$START_WHY"
        record "$table" "$group" "${b##*/}" "" "not run: ${a##*/} did not start"
        return 0
    fi
    pa=$SERVER_PID addr_a=$SERVER_ADDR AB_PID=$SERVER_PID SERVER_PID=""
    ab_join a "$pa"
    # shellcheck disable=SC2046
    if ! start_server "$log-b.srv" "$SRV_CPU" $(cmd_of echo "$b" 1) 127.0.0.1:@PORT@ 1; then
        kill -9 "$pa" 2>/dev/null || true; wait "$pa" 2>/dev/null || true; AB_PID=""
        record "$table" "$group" "${a##*/}" "" "not run: ${b##*/} did not start"
        record "$table" "$group" "${b##*/}" "" "$START_WHY"
        return 0
    fi
    pb=$SERVER_PID addr_b=$SERVER_ADDR
    ab_join b "$pb"
    local client="lg echo --conns $conns --warmup $WARMUP --duration $DURATION"
    # shellcheck disable=SC2086 # the client's words are meant to split
    (CL_ADDR=$addr_a CL_PID=$pa CL_CPUS=$CLI_CPU; $client) >"$log-a.out" 2>&1 &
    local la=$!
    # shellcheck disable=SC2086
    (CL_ADDR=$addr_b CL_PID=$pb CL_CPUS=$CLI_CPU; $client) >"$log-b.out" 2>&1 &
    local lb=$!
    wait "$la" "$lb" || true
    stop_server
    kill -9 "$pa" 2>/dev/null || true; wait "$pa" 2>/dev/null || true; AB_PID=""
    local side c
    for side in a b; do
        local res why=""
        if [ $side = a ]; then c=$a; else c=$b; fi
        res=$(grep '^RESULT' "$log-$side.out" | tail -1) || true
        [ -n "$res" ] || why=$(tail -1 "$log-$side.out" | tr '\t' ' ' | cut -c1-80)
        record "$table" "$group" "${c##*/}" "$res" "$why"
    done
}

if part ab; then
    say "echo side by side: coronet and one other server on core $SRV_CPU at once ($AB_REPS runs of ${DURATION}s each)"
    if ab_cgroups; then
        AB_SHARE="each in a CPU cgroup of its own with equal weight"
    else
        AB_SHARE="no CPU cgroups here: shared per thread"
        say "no CPU cgroup to put each server in: servers of more than one thread get more than half the core"
    fi
    for other in ${AB_OTHERS:-epoll tokio}; do
        if [[ "$other" == */* && ! -x "$other" ]]; then
            say "AB_OTHERS: $other is not an executable file; skipped"
            continue
        fi
        printf 'T\tab-%s\t%s\n' "${other##*/}" "Echo side by side: coronet and ${other##*/} served at the same time, both on core $SRV_CPU (one worker each; $AB_SHARE), one loadgen each on core $CLI_CPU; median of $AB_REPS x ${DURATION}s" >>"$OUT"
        for conns in 100 1000 9000; do
            for rep in $(seq "$AB_REPS"); do
                # Who starts first alternates, so neither side always gets the head start.
                if [ $((rep % 2)) = 1 ]; then
                    ab_run "ab-${other##*/}" "$conns conns" coronet "$other" "$conns"
                else
                    ab_run "ab-${other##*/}" "$conns conns" "$other" coronet "$conns"
                fi
            done
        done
    done
fi

# The application cases, one worker: server pinned to core SRV_CPU, client to CLI_CPU.
# (Kept next to the echo blocks on purpose; new parts of other people go after echo2.)
if part stream; then
    printf 'T\tstream\t%s\n' "Stream: one connection echoing $STREAM_MIB MiB in 64 KiB writes, server on core $SRV_CPU (one worker), loadgen on core $CLI_CPU; median of $ECHO_REPS (ratio = value / Go)" >>"$OUT"
    say "stream throughput ($ECHO_REPS runs of $STREAM_MIB MiB)"
    for rep in $(seq "$ECHO_REPS"); do
        for c in $ECHO_CONTENDERS; do
            # shellcheck disable=SC2046 # cmd_of's words are meant to split
            measure stream "1 conn, $STREAM_MIB MiB" "$c" "$SRV_CPU" "$CLI_CPU" \
                "lg stream --bytes $((STREAM_MIB << 20))" -- $(cmd_of echo "$c" 1) 127.0.0.1:@PORT@ 1
        done
    done
fi

if part churn; then
    printf 'T\tchurn\t%s\n' "Connection churn: 64 slots, each connect, one 64-byte echo, close; same pinning; median of $ECHO_REPS x ${DURATION}s (ratio = value / Go)" >>"$OUT"
    say "connection churn ($ECHO_REPS runs of ${DURATION}s)"
    for rep in $(seq "$ECHO_REPS"); do
        for c in $ECHO_CONTENDERS; do
            # shellcheck disable=SC2046 # cmd_of's words are meant to split
            measure churn "64 in flight" "$c" "$SRV_CPU" "$CLI_CPU" \
                "lg churn --concurrency 64 --warmup $WARMUP --duration $DURATION" -- $(cmd_of echo "$c" 1) 127.0.0.1:@PORT@ 1
        done
    done
fi

if part conns; then
    printf 'T\tconns\t%s\n' "Idle connections: server RSS growth per connection with $IDLE_CONNS open connections after one 64-byte echo each (a 32 KiB read buffer per connection in every server but epoll, which shares one); one run (ratio = value / Go)" >>"$OUT"
    say "RSS per idle connection at $IDLE_CONNS connections"
    for c in $ECHO_CONTENDERS; do
        # shellcheck disable=SC2046 # cmd_of's words are meant to split
        measure conns "$IDLE_CONNS conns" "$c" "$SRV_CPU" "$CLI_CPU" \
            "lg idle --conns $IDLE_CONNS --settle 1" -- $(cmd_of echo "$c" 1) 127.0.0.1:@PORT@ 1
    done
fi

# The kv and http servers: coronet's are the examples (one worker: the runtime takes its
# worker count from the CPU affinity, i.e. 1 under taskset), Go's and tokio's are ours in
# bench/, and redis-server is the real thing.
app_cmd() { # kv|http contender: the command line, address included
    case "$2" in
        coronet) if [ "$1" = kv ]; then echo "$BIN/examples/kv"; else echo "$BIN/examples/http_hello"; fi ;;
        go) echo "env GOMAXPROCS=1 $GOBIN/go_$1" ;;
        tokio) echo "$BIN/$1_tokio" ;;
        # No persistence; the (single-word) empty-string form of "save" is '' in its parser.
        redis) echo "redis-server --port @PORT@ --bind 127.0.0.1 --save '' --appendonly no --daemonize no --protected-mode no"; return ;;
    esac
    echo "127.0.0.1:@PORT@"
}

if part kv; then
    printf 'T\tkv\t%s\n' "redis-benchmark (50 connections, $N_REDIS requests per test) against examples/kv.rs, its Go and tokio counterparts and redis-server; server on core $SRV_CPU, redis-benchmark on core $CLI_CPU; median of $ECHO_REPS (ratio = value / Go)" >>"$OUT"
    say "redis-benchmark ($ECHO_REPS runs)"
    for rep in $(seq "$ECHO_REPS"); do
        for c in coronet go tokio redis; do
            for t in ping_mbulk set get; do
                # shellcheck disable=SC2046 # app_cmd's words are meant to split
                measure kv "$t" "$c" "$SRV_CPU" "$CLI_CPU" "redis_client $t $N_REDIS" -- $(app_cmd kv "$c")
            done
            # shellcheck disable=SC2046
            measure kv "get, 16 pipelined" "$c" "$SRV_CPU" "$CLI_CPU" "redis_client get $((N_REDIS * 4)) 16" -- $(app_cmd kv "$c")
        done
    done
fi

if part http; then
    printf 'T\thttp\t%s\n' "wrk (one thread, keep-alive, ${DURATION}s) against examples/http_hello.rs and its Go and tokio counterparts; server on core $SRV_CPU, wrk on core $CLI_CPU; median of $ECHO_REPS (ratio = value / Go)" >>"$OUT"
    say "wrk ($ECHO_REPS runs of ${DURATION}s)"
    for conns in 100 1000; do
        for rep in $(seq "$ECHO_REPS"); do
            for c in coronet go tokio; do
                # shellcheck disable=SC2046 # app_cmd's words are meant to split
                measure http "$conns conns" "$c" "$SRV_CPU" "$CLI_CPU" "wrk_client $conns" -- $(app_cmd http "$c")
            done
        done
    done
fi

if part echo2 && [ "$(nproc)" -ge 2 ]; then
    printf 'T\techo2\t%s\n' "Echo, 64-byte ping-pong, two workers: server and loadgen share cores 0-1; median of $ECHO_REPS x ${DURATION}s (ratio = value / Go)" >>"$OUT"
    say "echo, two workers ($ECHO_REPS runs of ${DURATION}s each)"
    for conns in $CONNS2; do
        for rep in $(seq "$ECHO_REPS"); do
            for c in coronet go tokio may; do
                echo_run echo2 "$conns conns" "$c" 2 "$conns" 0,1 0,1
            done
        done
    done
fi

# --- sync: channels and locks (docs/benchmarks.md, section 3) ---------------------------
# One self-contained block: its own Go binary, its own runner (the worker count and cores
# vary per row, unlike micro()), two tables.
if part sync; then
    (cd "$ROOT/bench/go" && go build -o "$GOBIN/go_sync" ./sync)
    if [ "$QUICK" = 1 ]; then
        SYNC_REPS=${REPS:-1} N_SYNC=200000 N_SYNC_MAY_SELECT=20000
    else
        SYNC_REPS=${REPS:-5} N_SYNC=1000000 N_SYNC_MAY_SELECT=100000
    fi
    # Runs one sync benchmark with W workers on CPUS; appends its RESULT line or a failure.
    sync_run() { # table group contender workers cpus args...
        local table=$1 group=$2 c=$3 w=$4 cpus=$5; shift 5
        available "$table" "$group" "$c" || return 0
        local log=$LOGS/$table-$c.err res cmd
        if [ "$c" = go ]; then cmd="env GOMAXPROCS=$w $GOBIN/go_sync"; else cmd=$BIN/sync_$c; fi
        # shellcheck disable=SC2086 # PRIO and cmd are meant to split
        res=$(timeout 120 $PRIO taskset -c "$cpus" $cmd "$@" --workers "$w" 2>"$log" | grep '^RESULT' | tail -1) || true
        if [ -n "$res" ]; then
            printf 'R\t%s\t%s\t%s\t%s\n' "$table" "$group" "$c" "$res" >>"$OUT"
            echo "   $group $c: ${res#RESULT }" >&2
        else
            local why; why=$(tail -1 "$log" | tr '\t' ' ' | cut -c1-80); why=${why:-no result (timeout 120 s?)}
            printf 'F\t%s\t%s\t%s\t%s\n' "$table" "$group" "$c" "$why" >>"$OUT"
            echo "   $group $c: FAILED: $why" >&2
        fi
    }
    SYNC_CONTENDERS="coronet go may"
    printf 'T\tsync1\t%s\n' "Channels and locks: one core (taskset -c $SRV_CPU), one worker; ns per op, lower is better; median of $SYNC_REPS (ratio = value / Go)" >>"$OUT"
    say "channels and locks, one worker ($SYNC_REPS runs each)"
    for rep in $(seq "$SYNC_REPS"); do
        for c in $SYNC_CONTENDERS; do
            sync_run sync1 "unbuffered ping-pong round trip" "$c" 1 "$SRV_CPU" pingpong "$N_SYNC"
            sync_run sync1 "buffered (cap 128), 1 producer" "$c" 1 "$SRV_CPU" chan1 "$N_SYNC"
            sync_run sync1 "buffered (cap 128), 4 producers" "$c" 1 "$SRV_CPU" chan4 "$N_SYNC"
            n=$N_SYNC; [ "$c" = may ] && n=$N_SYNC_MAY_SELECT
            sync_run sync1 "select over 4 unbuffered channels, 4 producers" "$c" 1 "$SRV_CPU" select4 "$n"
            sync_run sync1 "mutex lock+unlock, uncontended" "$c" 1 "$SRV_CPU" mutex "$((10 * N_SYNC))"
        done
    done
    if [ "$(nproc)" -ge 2 ]; then
        printf 'T\tsync2\t%s\n' "Two workers on cores 0-1: contended mutex; ping-pong with coronet's pair split over the two workers, and kept on one (same_worker); ns per op, lower is better; median of $SYNC_REPS (ratio = value / Go)" >>"$OUT"
        say "contended mutex and ping-pong, two workers ($SYNC_REPS runs each)"
        for rep in $(seq "$SYNC_REPS"); do
            for c in $SYNC_CONTENDERS; do
                for k in 4 100; do
                    sync_run sync2 "mutex lock+unlock, $k contenders" "$c" 2 0,1 mutexK "$((10 * N_SYNC))" --contenders "$k"
                done
                # coronet never moves a started coroutine, so `pingpong2` puts the pair on
                # two workers and every hop wakes the other thread; Go and may run theirs
                # wherever their schedulers put them (Go: both on one P, after a hop or two).
                pp=pingpong; [ "$c" = coronet ] && pp=pingpong2
                sync_run sync2 "unbuffered ping-pong round trip, two workers" "$c" 2 0,1 "$pp" "$N_SYNC"
                # and the remedy: the echo spawned `Spawn::same_worker` (`pingpong1`)
                pp=pingpong; [ "$c" = coronet ] && pp=pingpong1
                sync_run sync2 "the same, coronet's pair spawned same_worker" "$c" 2 0,1 "$pp" "$N_SYNC"
            done
        done
    fi
fi
# --- end of sync ------------------------------------------------------------------------

part_end
printf '# total %d s; load average at the end: %s\n' "$SECONDS" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"

# --- the tables ---------------------------------------------------------------------------

{ grep '^# ' "$OUT" | sed 's/^# /    /'; "$BIN/report" "$OUT"; } | tee "$OUT.md"
echo >&2
say "raw results: $OUT; tables: $OUT.md"
