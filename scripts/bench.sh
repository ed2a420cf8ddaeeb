#!/usr/bin/env bash
# Reproduces the README's benchmark table: rkms serve (--db none, and with its SQLite database)
# against the canned-reply null server, V6 over NDR32, server on CPU 0 and load on CPU 1.
# New connections are closed with RST (`--close reset`) so that the load generator's kernel
# does not spend its time searching free ports among TIME_WAIT sockets; one row repeats
# 16 connections with orderly (FIN) closes for comparison.
# Usage: scripts/bench.sh [SECONDS per run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cargo build --release --locked -p rkms >/dev/null
bin=target/release/rkms
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
start null 21690 null-server --listen 127.0.0.1:21690
start rkms 21691 serve --listen 127.0.0.1:21691 --db none --log-level warn --max-connections 5000 --max-connections-per-address 5000 --max-calls-per-connection 100000000
start rkmsdb 21692 serve --listen 127.0.0.1:21692 --db "$tmp/clients.db" --log-level warn --max-connections 5000 --max-connections-per-address 5000 --max-calls-per-connection 100000000

run() { # port mode close conns extra...
    local port=$1 mode=$2 close=$3 conns=$4; shift 4
    taskset -c 1 "$bin" bench "127.0.0.1:$port" --mode "$mode" --close "$close" -c "$conns" -d "$secs" --json "$@"
}
row() { # label mode close conns
    local label=$1 mode=$2 close=$3 conns=$4
    n=$(run 21690 "$mode" "$close" "$conns" --no-verify)
    r=$(run 21691 "$mode" "$close" "$conns")
    d=$(run 21692 "$mode" "$close" "$conns")
    python3 - "$label" "$conns" "$n" "$r" "$d" <<'PY'
import json, sys
label, conns = sys.argv[1], sys.argv[2]
n, r, d = (json.loads(x) for x in sys.argv[3:6])
print(f"| {label} | {conns} | {n['per_second']:.0f} | {r['per_second']:.0f} | {r['per_second']/max(n['per_second'],1):.2f} | "
      f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} | {r['errors']} | {d['per_second']:.0f} | {d['p99_ms']:.2f} | {d['errors']} |")
PY
}
echo "| mode | connections | null server /s | rkms /s | ratio | rkms p50 / p99 ms | rkms errors | rkms+SQLite /s | rkms+SQLite p99 ms | rkms+SQLite errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for conns in 16 256 1000; do row new-connection new-connection reset "$conns"; done
for conns in 16 256 1000; do row keep-alive keep-alive fin "$conns"; done
row "new-connection, FIN close" new-connection fin 16
echo
for name in null rkms rkmsdb; do
    pid=$(cat "$tmp/$name.pid")
    echo "peak RSS $name: $(awk '/VmHWM/ {print $2 " " $3}' /proc/"$pid"/status)"
done
