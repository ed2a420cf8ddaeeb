#!/usr/bin/env bash
# CI check of the aarch64 and armv7 release binaries: each is built with the release recipe
# (scripts/build-static.sh; the dev profile here, to keep CI short) and then, under Debian's
# qemu-user-static, on loopback:
#   - it is static (`file`) and runs in an empty root directory (no libc at all);
#   - `rkms serve` under qemu answers the x86_64 `rkms activate` for V4, V5 and V6, verified;
#   - `rkms activate` under qemu activates against the x86_64 `rkms serve` (V4, V5, V6), verified.
# A tool that cannot be installed (Rust target, Zig, qemu) is reported and the check skipped
# (exit 0), never a failure. Waits are bounded; everything started is ended on exit.
#
#   scripts/cross-check.sh                  # both targets
#   CROSS_TARGETS=aarch64-unknown-linux-musl scripts/cross-check.sh
#   CROSS_PROFILE=release scripts/cross-check.sh   # what scripts/release.sh ships
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# shellcheck source=scripts/check-lib.sh
. scripts/check-lib.sh
started=$SECONDS
profile="${CROSS_PROFILE:-dev}"
read -r -a targets <<<"${CROSS_TARGETS:-aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf}"

have file || apt_install file || true
have file || {
    echo "file(1) unavailable: cross check skipped"
    exit 0
}
if ! have qemu-aarch64-static || ! have qemu-arm-static; then
    echo "== installing Debian's qemu-user-static"
    apt_install qemu-user-static || true
fi

echo "== the x86_64 rkms (the other side of each exchange)"
timeout 1800 cargo build --locked -p rkms
HOST="${CARGO_TARGET_DIR:-target}/debug/rkms"

for target in "${targets[@]}"; do
    case "$target" in
    aarch64-*) qemu="qemu-aarch64-static" ;;
    armv7-*) qemu="qemu-arm-static" ;;
    *) fail "no qemu known for $target" ;;
    esac
    echo "== $target: scripts/build-static.sh $target full $profile"
    t0=$SECONDS
    status=0
    out="$(timeout 2400 scripts/build-static.sh "$target" full "$profile")" || status=$?
    if [ "$status" = 3 ]; then
        echo "$target: a build tool could not be installed (see above): skipped"
        continue
    fi
    [ "$status" = 0 ] || fail "build of $target (status $status)"
    bin="$(tail -n1 <<<"$out")"
    echo "built $bin ($(du -h "$bin" | cut -f1)) in $((SECONDS - t0)) s"
    assert_static "$bin" "$target"
    if ! have "$qemu"; then
        echo "$qemu unavailable (apt-get install qemu-user-static): $target not run, skipped"
        continue
    fi
    run_without_libc "$bin" "$qemu"

    echo "== $target: rkms serve under $qemu, x86_64 rkms activate"
    port="$(free_port)"
    "$qemu" "$bin" serve --listen "127.0.0.1:$port" --db none --web off >"$WORK/serve-$target.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" 60 "$pid" || fail "rkms serve under $qemu did not listen on 127.0.0.1:$port within 60 s"
    for v in 4 5 6; do
        activate "x86_64 rkms activate --protocol $v -> $target rkms serve (qemu)" \
            timeout 120 "$HOST" activate "127.0.0.1:$port" --protocol "$v"
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true

    echo "== x86_64 rkms serve, $target rkms activate under $qemu"
    port="$(free_port)"
    "$HOST" serve --listen "127.0.0.1:$port" --db none --web off >"$WORK/host-serve.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" 30 "$pid" || fail "x86_64 rkms serve did not listen on 127.0.0.1:$port"
    for v in 4 5 6; do
        activate "$target rkms activate --protocol $v (qemu) -> x86_64 rkms serve" \
            timeout 120 "$qemu" "$bin" activate "127.0.0.1:$port" --protocol "$v"
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
echo "cross check done in $((SECONDS - started)) s"
