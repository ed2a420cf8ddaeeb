#!/usr/bin/env bash
# CI check of the build the release archives ship (scripts/release.sh: the `release-small`
# profile, the standard library built for size): the x86_64 lean build (`--no-default-features
# --features sqlite`, what small devices run) is built with that recipe (scripts/build-static.sh)
# and then
#   - it is static (`file`) and runs in an empty root directory (no libc at all);
#   - `rkms serve` (its SQLite store) answers a verified activation from it, V4, V5 and V6;
#   - it is no larger than SIZE_BUDGET bytes: the size this commit's README gives for it, plus
#     1% (a regression guard), and never more than the issue's target, 2,500,000 bytes;
#   - after `rkms bench -n 10000 -c 16` against it, its own memory (RssAnon) is at most
#     ANON_BUDGET kB (1,600: what the issue's 4 MB resident leaves beside the binary's pages;
#     1,152-1,208 measured with musl's allocator, 2,108-3,188 with Zig's, see
#     build-static.sh); its peak (VmHWM) is reported against the issue's 4,096 kB.
# A build tool that cannot be installed (Zig, rust-src) is reported and the check skipped
# (exit 0), never a failure.
#
#   scripts/size-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# shellcheck source=scripts/check-lib.sh
. scripts/check-lib.sh
started=$SECONDS

target=x86_64-unknown-linux-musl
# The lean release-small binary's size in README ("Lean and full builds"), plus 1%.
measured=2458376
budget="${SIZE_BUDGET:-$((measured + measured / 100))}"
goal=2500000

have file || apt_install file || true
have file || {
    echo "file(1) unavailable: size check skipped"
    exit 0
}

echo "== $target: scripts/build-static.sh $target lean release-small"
static_build "$target" lean release-small "the size check is"
bin="$BUILT"
size="$(stat -c %s "$bin")"
echo "built $bin: $size bytes in $((SECONDS - started)) s"
assert_static "$bin" "lean release-small"
run_without_libc "$bin"

echo "== its rkms serve (SQLite), its own rkms activate"
port="$(free_port)"
"$bin" serve --listen "127.0.0.1:$port" --db "$WORK/clients.db" >"$WORK/serve.log" 2>&1 &
pid=$!
PIDS+=("$pid")
wait_port "$port" 30 "$pid" || fail "rkms serve did not listen on 127.0.0.1:$port"
for v in 4 5 6; do
    activate "lean release-small activate --protocol $v -> its serve" \
        timeout 60 "$bin" activate "127.0.0.1:$port" --protocol "$v"
done
echo "== its memory after rkms bench -n 10000 -c 16"
timeout 120 "$bin" bench -n 10000 -c 16 "127.0.0.1:$port" >"$WORK/bench.log" 2>&1 ||
    fail "rkms bench failed: $(tail -n 3 "$WORK/bench.log")"
sleep 0.5
anon="$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")"
hwm="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")"
kill "$pid"
wait "$pid" 2>/dev/null || true
grep -q "activated" "$WORK/serve.log" || fail "the host logged no activation"
anon_budget="${ANON_BUDGET:-1600}"
[ "$anon" -le "$anon_budget" ] ||
    fail "the lean host holds RssAnon $anon kB after the load, more than $anon_budget kB"
echo "ok: RssAnon $anon kB after the load, within $anon_budget kB; VmHWM $hwm kB (target 4,096)"

# Its SQLite has no FTS5 (the search index): the database works without it, listing and
# deleting records (the trigger of deleted records is this build's own).
echo "== its rkms clients, without the search index"
listed="$(timeout 60 "$bin" clients --db "$WORK/clients.db" --json --limit 1)" ||
    fail "rkms clients failed"
name="$(printf '%s\n' "$listed" | sed -n 's/^ *"workstation": *"\(.*\)",\{0,1\}$/\1/p')"
[ -n "$name" ] || fail "rkms clients listed no record: $listed"
pruned="$(timeout 60 "$bin" clients prune --db "$WORK/clients.db" --workstation "$name")" ||
    fail "rkms clients prune --workstation $name failed: $pruned"
[[ "$pruned" =~ pruned\ [1-9][0-9]*\ client\ record ]] ||
    fail "rkms clients prune --workstation $name pruned nothing: $pruned"
echo "ok: rkms clients listed and pruned ($pruned)"

if [ "$size" -gt "$budget" ]; then
    fail "the lean release-small binary grew: $size bytes, more than the budget of $budget (README: $measured)"
fi
echo "ok: $size bytes, within the budget of $budget (README: $measured)"
[ "$size" -le "$goal" ] || fail "the lean release-small binary is $((size - goal)) bytes over the target of $goal bytes"
echo "ok: within the target of $goal bytes"
echo "size check done in $((SECONDS - started)) s"
