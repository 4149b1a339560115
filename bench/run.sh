#!/usr/bin/env bash
# Side-by-side benchmarks: coronet vs Go vs tokio vs may vs std threads vs a hand-written
# epoll loop. One command: installs what is missing, builds everything, runs, prints tables
# with ratios to Go. See docs/benchmarks.md for what each number means.
#
# Usage: bench/run.sh [--quick] [--nice] [--only micro|echo|echo2] [--reps N] [--out FILE]
#
#   --quick      small N, one repetition, short windows: a smoke run of a minute or two
#   --only X,..  run some parts: micro (runtime core), echo (one worker), echo2 (two workers)
#                sync (channels and locks, docs/benchmarks.md section 3)
#   --reps N     repetitions of every cell (default 5 micro / 3 echo, 1 with --quick);
#                cells show the median and the half-spread
#   --out FILE   raw results (default bench/results/run-DATE.tsv); FILE.md gets the tables
#   --nice       run every measured process at nice -20 (root), so a busy shared machine
#                disturbs the numbers less; the load average is recorded either way
#
# It needs root (or sudo) for two things only: apt-get install golang-go when `go` is missing,
# and raising vm.max_map_count for the million-coroutine test (restored on exit). The library
# never touches sysctls; this benchmark does because 1M stacks with guard pages need 2M maps.
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
        *) echo "usage: $0 [--quick] [--nice] [--only micro|echo|echo2] [--reps N] [--out FILE]" >&2; exit 2 ;;
    esac
    shift
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
GOBIN=$CARGO_TARGET_DIR/go
mkdir -p "$ROOT/bench/results" "$GOBIN"
OUT=${OUT:-$ROOT/bench/results/run-$(date +%Y%m%d-%H%M%S).tsv}
LOGS=$(mktemp -d /tmp/coronet-bench.XXXXXX)
: >"$OUT"

if [ "$QUICK" = 1 ]; then
    MICRO_REPS=${REPS:-1} ECHO_REPS=${REPS:-1}
    N_SPAWN=100000 N_SPAWN_STD=5000 N_PING=100000 N_PING_STD=10000 N_IDLE=100000
    WARMUP=0.5 DURATION=1
    CONNS="1 100 1000 9000" CONNS2="1000"
else
    MICRO_REPS=${REPS:-5} ECHO_REPS=${REPS:-3}
    N_SPAWN=1000000 N_SPAWN_STD=20000 N_PING=1000000 N_PING_STD=50000 N_IDLE=1000000
    WARMUP=1 DURATION=3
    CONNS="1 100 1000 9000" CONNS2="100 1000"
fi

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
say() { echo "== $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- what we need -----------------------------------------------------------------------

if ! command -v go >/dev/null; then
    say "installing Go (Debian's golang-go)"
    as_root apt-get update -qq && as_root apt-get install -y -qq golang-go >/dev/null
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }

SAVED_MAP_COUNT=""
SERVER_PID="" # the one echo server running, if any
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -9 "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$SAVED_MAP_COUNT" ]; then
        as_root sysctl -qw vm.max_map_count="$SAVED_MAP_COUNT" || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two cores: the server gets core 0, the load client core 1. On one core they share it.
if [ "$(nproc)" -ge 2 ]; then SRV_CPU=0 CLI_CPU=1; else SRV_CPU=0 CLI_CPU=0; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

say "building (cargo --release, go build)"
HAVE_CORONET=1
if ! (cd "$ROOT" && cargo build -q --release -p coronet-bench --features coronet); then
    say "coronet does not build: running the other contenders only"
    HAVE_CORONET=0
    (cd "$ROOT" && cargo build -q --release -p coronet-bench)
fi
(cd "$ROOT/bench/go" && go build -o "$GOBIN/go_rt" ./rt && go build -o "$GOBIN/go_echo" ./echo)

# --- running one measurement ------------------------------------------------------------

# The command line of a contender's binary for one part (core or echo) and worker count.
cmd_of() { # part contender workers
    local part=$1 c=$2 w=$3
    case "$c" in
        go) if [ "$part" = core ]; then echo "env GOMAXPROCS=$w $GOBIN/go_rt"; else echo "env GOMAXPROCS=$w $GOBIN/go_echo"; fi ;;
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

# Starts an echo server on SRV_CPUS with W workers, drives it with loadgen on CLI_CPUS.
echo_run() { # table group contender workers conns srv_cpus cli_cpus
    local table=$1 group=$2 c=$3 w=$4 conns=$5 srv=$6 cli=$7
    available "$table" "$group" "$c" || return 0
    local addr log=$LOGS/$table-$c-$conns.srv pid="" res="" why=""
    # A port someone else holds makes the server exit at once: try the next one.
    for _ in 1 2 3; do
        PORT=$((PORT + 1))
        addr=127.0.0.1:$PORT
        # taskset, nice and env exec, so $! is the server process itself (loadgen reads its
        # CPU time from /proc/$!/stat).
        # shellcheck disable=SC2046,SC2086
        $PRIO taskset -c "$srv" $(cmd_of echo "$c" "$w") "$addr" "$w" >"$log" 2>&1 &
        pid=$!
        SERVER_PID=$pid
        for _ in $(seq 300); do # up to 30 s: a loaded machine starts 9,000 threads slowly
            grep -q '^ready' "$log" 2>/dev/null && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        grep -q '^ready' "$log" 2>/dev/null && break
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        grep -q 'AddrInUse\|address already in use' "$log" || break
    done
    if grep -q '^ready' "$log" 2>/dev/null; then
        # shellcheck disable=SC2086 # PRIO is empty or "nice -n -20"
        res=$(timeout 120 $PRIO taskset -c "$cli" "$BIN/loadgen" echo "$addr" --conns "$conns" \
            --warmup "$WARMUP" --duration "$DURATION" --server-pid "$pid" 2>"$log.client" |
            grep '^RESULT' | tail -1) || true
        [ -n "$res" ] || why=$(tail -1 "$log.client" | tr '\t' ' ' | cut -c1-80)
    else
        why="server did not start: $(tail -1 "$log" | tr '\t' ' ' | cut -c1-60)"
    fi
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    SERVER_PID=""
    if [ -n "$res" ]; then
        printf 'R\t%s\t%s\t%s\t%s\n' "$table" "$group" "$c" "$res" >>"$OUT"
        echo "   $group $c: ${res#RESULT }" >&2
    else
        why=${why:-no result}
        printf 'F\t%s\t%s\t%s\t%s\n' "$table" "$group" "$c" "$why" >>"$OUT"
        echo "   $group $c: FAILED: $why" >&2
    fi
}

# --- the runs ---------------------------------------------------------------------------

{
    printf '# %s\n' "$(date -u +%FT%TZ) $(uname -r) nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
    printf '# %s | %s | tokio %s | may %s\n' "$(rustc --version)" "$(go version)" \
        "$(grep -A1 '^name = "tokio"$' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')" \
        "$(grep -A1 '^name = "may"$' "$ROOT/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p')"
    printf '# load average at the start: %s; priority: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "${PRIO:-normal}"
} >>"$OUT"

CORE_CONTENDERS="coronet go tokio may std"
if want micro; then
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
    # Each parked coroutine takes 2 mappings (stack + guard) in coronet and may.
    need=$((2 * N_IDLE + 65536))
    cur=$(cat /proc/sys/vm/max_map_count)
    if [ "$cur" -lt "$need" ]; then
        if as_root sysctl -qw vm.max_map_count="$need"; then SAVED_MAP_COUNT=$cur; fi
    fi
    say "$N_IDLE parked coroutines (one run each)"
    for c in coronet go tokio may; do
        micro micro "$N_IDLE parked (sleeping)" "$c" 300 idle "$N_IDLE" --sleep 3600
    done
    printf 'F\tmicro\t%s\tstd\t%s\n' "$N_IDLE parked (sleeping)" "n/a (OS threads)" >>"$OUT"
fi

ECHO_CONTENDERS="coronet go tokio may std epoll"
if want echo; then
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

if want echo2 && [ "$(nproc)" -ge 2 ]; then
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
if want sync; then
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
        printf 'T\tsync2\t%s\n' "Contended mutex: two workers on cores 0-1; ns per op, lower is better; median of $SYNC_REPS (ratio = value / Go)" >>"$OUT"
        say "contended mutex, two workers ($SYNC_REPS runs each)"
        for rep in $(seq "$SYNC_REPS"); do
            for c in $SYNC_CONTENDERS; do
                for k in 4 100; do
                    sync_run sync2 "mutex lock+unlock, $k contenders" "$c" 2 0,1 mutexK "$((10 * N_SYNC))" --contenders "$k"
                done
            done
        done
    fi
fi
# --- end of sync ------------------------------------------------------------------------

printf '# load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"

# --- the tables ---------------------------------------------------------------------------

{ grep '^# ' "$OUT" | sed 's/^# /    /'; "$BIN/report" "$OUT"; } | tee "$OUT.md"
echo >&2
say "raw results: $OUT; tables: $OUT.md"
