#!/usr/bin/env bash
# Bounded fuzzing smoke test of the protocol core, the catalog and the configuration file: seeds the corpora from testdata/ and runs every
# cargo-fuzz target for a few seconds.
#
#   scripts/fuzz-smoke.sh            # FUZZ_SECONDS (default 25) per target, 7 targets
#   FUZZ_SECONDS=60 scripts/fuzz-smoke.sh rpc_server kms_request
#   FUZZ_SANITIZER=none scripts/fuzz-smoke.sh   # no ASan: plain stable, ~5x the executions
#
# Exit status: 0 when every target ran clean, or when fuzzing is not possible on this machine
# (cargo-fuzz cannot be installed, or the targets cannot be built: a message says so);
# 1 when a target found a crash (its input is under fuzz/artifacts/<target>/).
#
# Only the stable toolchain is needed: cargo-fuzz's nightly-only flags are enabled with
# RUSTC_BOOTSTRAP=1. AddressSanitizer is used when it builds, else no sanitizer (the targets
# are safe Rust; panics and overflow checks still count as crashes).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
seconds="${FUZZ_SECONDS:-25}"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=(rpc_server kms_request client_verify ndr epid_parse config_file products_file)
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

skip() {
    echo "fuzz-smoke: SKIPPED: $*" >&2
    exit 0
}

command -v cargo >/dev/null 2>&1 || skip "cargo not found"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked >/tmp/fuzz-smoke-install.log 2>&1 ||
        cargo install cargo-fuzz >>/tmp/fuzz-smoke-install.log 2>&1 ||
        skip "cargo-fuzz could not be installed (see /tmp/fuzz-smoke-install.log)"
fi

cd "$fuzz" || skip "no fuzz/ directory"
sanitizer="${FUZZ_SANITIZER:-address}"
if ! cargo fuzz build --sanitizer "$sanitizer" >/tmp/fuzz-smoke-build.log 2>&1; then
    [ "$sanitizer" != none ] || skip "the fuzz targets cannot be built here (see /tmp/fuzz-smoke-build.log)"
    echo "fuzz-smoke: building with sanitizer $sanitizer failed, trying without a sanitizer"
    sanitizer=none
    cargo fuzz build --sanitizer none >>/tmp/fuzz-smoke-build.log 2>&1 ||
        skip "the fuzz targets cannot be built here (see /tmp/fuzz-smoke-build.log)"
fi
echo "fuzz-smoke: targets built (sanitizer: $sanitizer), $seconds s per target"

"$fuzz/seed-corpus.sh" "$fuzz/corpus" >/dev/null || {
    echo "fuzz-smoke: seeding the corpus failed" >&2
    exit 1
}

failed=()
for t in "${targets[@]}"; do
    log="/tmp/fuzz-smoke-$t.log"
    echo "fuzz-smoke: $t ..."
    # -timeout: an input taking >10 s is a hang; the outer timeout guards the whole run.
    timeout $((seconds + 60)) cargo fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "fuzz-smoke: $t ok (${execs:-?} execs, ${rate:-?} exec/s)"
    else
        echo "fuzz-smoke: $t FAILED (exit $rc), log: $log" >&2
        grep -E "panicked at|ERROR: |SUMMARY|Test unit written" "$log" | head -8 >&2
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-smoke: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets clean"
