# shellcheck shell=bash
# Shell functions shared by scripts/cross-check.sh, scripts/deb-check.sh,
# scripts/size-check.sh and scripts/windows-check.sh (sourced, not run):
# installing Debian packages, free loopback ports, waiting for a listener, static builds,
# verified activations, and ending what a check started.

# shellcheck source=scripts/apt-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-lib.sh"

# A loopback port nothing listens on.
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Waits (at most $2 seconds) until 127.0.0.1:$1 accepts connections; $3: the pid to watch.
wait_port() {
    local deadline=$((SECONDS + $2))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
            return 1
        fi
        sleep 0.25
    done
    return 1
}

# Processes to end on exit (their ids), the scratch directory, and further logs whose end a
# failure shows (besides $WORK/*.log).
PIDS=()
FAIL_LOGS=()
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rkms-check.XXXXXX")"
cleanup_check() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup_check EXIT

fail() {
    echo "FAILED: $*" >&2
    local f
    for f in "$WORK"/*.log "${FAIL_LOGS[@]}"; do
        [ -f "$f" ] || continue
        echo "--- $f (end)" >&2
        tail -n 20 "$f" >&2
    done
    exit 1
}

# activate LABEL COMMAND...: runs an activation (`--json` added), checks its exit status and
# that the client verified the answer.
activate() {
    local label="$1" out
    shift
    if ! out="$("$@" --json 2>"$WORK/activate-err.log")"; then
        echo "$out" >&2
        fail "$label: exit status not 0"
    fi
    if ! grep -q '"verified":true' <<<"$out" || ! grep -q '"activated":true' <<<"$out"; then
        echo "$out" >&2
        fail "$label: the answer was not verified"
    fi
    echo "ok: $label (verified)"
}

# static_build TARGET VARIANT PROFILE WHAT: builds with scripts/build-static.sh and sets BUILT
# to the binary's path; when a build tool cannot be installed (its exit status 3), says WHAT
# is skipped and ends the check (exit 0); another failure fails it.
static_build() {
    local status=0 out
    out="$(timeout 2400 scripts/build-static.sh "$1" "$2" "$3")" || status=$?
    if [ "$status" = 3 ]; then
        echo "a build tool could not be installed (see above): $4 skipped"
        exit 0
    fi
    [ "$status" = 0 ] || fail "build of $1 ($2, profile $3): status $status"
    BUILT="$(tail -n1 <<<"$out")"
}

# assert_static BINARY LABEL: `file` says it is statically linked.
assert_static() {
    local desc
    desc="$(file -b "$1")"
    [[ "$desc" == *"statically linked"* ]] || fail "$2 ($1) is not statically linked: $desc"
    echo "ok: $2: ${desc%%, BuildID*}"
}

# run_without_libc BINARY [QEMU]: runs `BINARY --version` in an empty root directory (no libc,
# no dynamic loader, nothing but the binary and, for another architecture, the static qemu).
run_without_libc() {
    local bin="$1" qemu="${2:-}" jail="$WORK/jail.$RANDOM" out
    if [ "$(id -u)" != 0 ] || ! have chroot; then
        echo "note: not root: the run in an empty root directory is skipped"
        return 0
    fi
    mkdir -p "$jail"
    cp "$bin" "$jail/rkms"
    if [ -n "$qemu" ]; then
        cp "$(command -v "$qemu")" "$jail/qemu"
        out="$(chroot "$jail" /qemu /rkms --version)" || fail "$bin --version in an empty root"
    else
        out="$(chroot "$jail" /rkms --version)" || fail "$bin --version in an empty root"
    fi
    rm -rf "$jail"
    echo "ok: runs in an empty root directory (no libc): $out"
}
