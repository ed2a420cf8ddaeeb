#!/usr/bin/env bash
# Reproduces the README's benchmark table: rkms serve (--db none, and with its SQLite database,
# every answer sent after its record is committed) against the canned-reply null server, V6
# over NDR32, the servers on CPU 0 and the load generator on CPU 1.
# rkms runs with its default logging (one info line per activation), written to a rotated log
# file (at most 3 x 20 MB per server).
# Each row also gives the CPU use of the server (from /proc/PID/stat) and of the load generator
# (its own report), in % of one core, so that it shows which side was the limit.
# After each SQLite run the script waits until that server is idle again (it indexes the run's
# new clients for search in the background) and shows how long that took.
# New connections are closed with RST (`--close reset`) so that the load generator's kernel
# does not spend its time searching free ports among TIME_WAIT sockets; one row repeats
# 16 connections with orderly (FIN) closes for comparison.
# Usage: scripts/bench.sh [SECONDS per run, default 5]
# RKMS_BIN=path runs the servers from another build (e.g. an older one, for a before/after
# comparison) and BENCH_BIN=path the load generator; both default to a fresh release build.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
if [ -z "${RKMS_BIN:-}" ] || [ -z "${BENCH_BIN:-}" ]; then
    cargo build --release --locked -p rkms >/dev/null
fi
bin=${RKMS_BIN:-target/release/rkms}
load=${BENCH_BIN:-target/release/rkms}
ulimit -n 20000 2>/dev/null || true
tmp=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
pids=()
trap cleanup EXIT

start() { # name port args...
    local name=$1 port=$2; shift 2
    taskset -c 0 "$bin" "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    echo $! >"$tmp/$name.pid"
    for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return; sleep 0.05; done
    echo "$name did not start" >&2; exit 1
}
logs() { echo --log-file "$tmp/$1.out" --log-max-size 20000000 --log-keep 2; }
start null 21690 null-server --listen 127.0.0.1:21690
start rkms 21691 serve --listen 127.0.0.1:21691 --db none $(logs rkms) --max-connections 5000 --max-connections-per-address 5000 --max-calls-per-connection 100000000
start rkmsdb 21692 serve --listen 127.0.0.1:21692 --db "$tmp/clients.db" $(logs rkmsdb) --max-connections 5000 --max-connections-per-address 5000 --max-calls-per-connection 100000000

ticks() { awk '{print $14 + $15}' /proc/"$(cat "$tmp/$1.pid")"/stat; }
run() { # name port mode close conns extra... -> JSON summary with server_cpu (% of a core) added
    local name=$1 port=$2 mode=$3 close=$4 conns=$5; shift 5
    local before after out
    before=$(ticks "$name")
    out=$(taskset -c 1 "$load" bench "127.0.0.1:$port" --mode "$mode" --close "$close" -c "$conns" -d "$secs" --json "$@" || true)
    after=$(ticks "$name")
    python3 -c 'import json,sys,os; o=json.loads(sys.argv[1]); o["server_cpu"]=(int(sys.argv[2])/os.sysconf("SC_CLK_TCK"))/o["seconds"]*100; print(json.dumps(o))' \
        "$out" "$((after - before))"
}
# Waits until server NAME has been idle (under 2 ticks of CPU in 0.5 s) and prints the seconds
# that took: the SQLite host indexes the clients of a run for search in the background once the
# run is over (schema 7), on the servers' CPU, which would otherwise count against the next run.
quiet() {
    local name=$1 waited=0 a b
    a=$(ticks "$name")
    while :; do
        sleep 0.5
        b=$(ticks "$name")
        if [ $((b - a)) -lt 2 ] || [ "$waited" -ge 240 ]; then break; fi
        a=$b
        waited=$((waited + 1))
    done
    echo "$((waited / 2))"
}
row() { # label mode close conns
    local label=$1 mode=$2 close=$3 conns=$4
    n=$(run null 21690 "$mode" "$close" "$conns" --no-verify)
    r=$(run rkms 21691 "$mode" "$close" "$conns")
    d=$(run rkmsdb 21692 "$mode" "$close" "$conns")
    q=$(quiet rkmsdb)
    python3 - "$label" "$conns" "$n" "$r" "$d" "$q" <<'PY'
import json, sys
label, conns = sys.argv[1], sys.argv[2]
n, r, d = (json.loads(x) for x in sys.argv[3:6])
catch_up = sys.argv[6]
def cpu(o):
    return f"{o['server_cpu']:.0f} / {100 * (o.get('load_cpu_cores') or 0):.0f}"
def ratio(o):
    return o['per_second'] / max(n['per_second'], 1)
print(f"| {label} | {conns} | {n['per_second']:.0f} | {cpu(n)} | "
      f"{r['per_second']:.0f} | {ratio(r):.2f} | {r['p50_ms']:.2f} / {r['p99_ms']:.2f} | {cpu(r)} | "
      f"{d['per_second']:.0f} | {ratio(d):.2f} | {d['p50_ms']:.2f} / {d['p99_ms']:.2f} | {cpu(d)} | "
      f"{catch_up} | {r['errors']} / {d['errors']} |")
PY
}
echo "| mode | connections | null server /s | null CPU % server / load | rkms --db none /s | ratio | p50 / p99 ms | CPU % server / load | rkms SQLite /s | ratio | p50 / p99 ms | CPU % server / load | SQLite busy after, s | errors none / SQLite |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for conns in 16 256 1000; do row new-connection new-connection reset "$conns"; done
for conns in 16 256 1000; do row keep-alive keep-alive fin "$conns"; done
row "new-connection, FIN close" new-connection fin 16
echo
for name in null rkms rkmsdb; do
    pid=$(cat "$tmp/$name.pid")
    echo "peak RSS $name: $(awk '/VmHWM/ {print $2 " " $3}' /proc/"$pid"/status)"
done
