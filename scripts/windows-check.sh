#!/usr/bin/env bash
# Windows check: cross-builds rkms.exe for x86_64-pc-windows-gnu (the Rust target through
# rustup, the linker from Debian's gcc-mingw-w64-x86-64, set in .cargo/config.toml), then, where
# Debian's Wine can be had, runs it on loopback:
#   - `rkms.exe serve` under Wine, activated by the Linux `rkms activate` with V4, V5 and V6;
#   - `rkms.exe activate` under Wine against the Linux `rkms serve` (V6);
#   - Ctrl-C (SIGINT, which Wine turns into a console Ctrl-C) stops `rkms.exe serve` cleanly;
#   - the service round trip through Wine's service manager: `rkms.exe service install`,
#     start, an activation, status, stop, uninstall.
# Every activation must be verified by the client. A missing Windows target, linker or Wine is
# reported and skipped (exit 0), never a failure. Waits are bounded; everything started is ended
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
TARGET=x86_64-pc-windows-gnu
OUT="${CARGO_TARGET_DIR:-target}"
started=$SECONDS

# shellcheck source=scripts/check-lib.sh
. scripts/check-lib.sh

# --- (a) the cross build ---------------------------------------------------------------------
echo "== Windows target ($TARGET)"
if ! have rustup || ! timeout 600 rustup target add "$TARGET" >/dev/null 2>&1; then
    echo "Windows target unavailable: skipped"
    exit 0
fi
if ! have x86_64-w64-mingw32-gcc; then
    echo "== installing Debian's gcc-mingw-w64-x86-64 (the linker)"
    if ! apt_install gcc-mingw-w64-x86-64 || ! have x86_64-w64-mingw32-gcc; then
        echo "MinGW-w64 linker (gcc-mingw-w64-x86-64) unavailable: Windows build skipped"
        exit 0
    fi
fi
echo "== cargo build --target $TARGET -p rkms (debug profile: CI time)"
timeout 1800 cargo build --locked --target "$TARGET" -p rkms
EXE="$OUT/$TARGET/debug/rkms.exe"
echo "built $EXE ($(du -h "$EXE" | cut -f1)) in $((SECONDS - started)) s"
echo "== cargo build -p rkms (the Linux side of the Wine tests; already built by the tests)"
timeout 1800 cargo build --locked -p rkms
LINUX="$OUT/debug/rkms"

# --- (b) rkms.exe under Wine -----------------------------------------------------------------
find_wine() {
    local w
    for w in wine64 /usr/lib/wine/wine64 wine; do
        if have "$w"; then
            command -v "$w"
            return 0
        fi
    done
    return 1
}
if ! WINE="$(find_wine)"; then
    echo "== installing Debian's Wine"
    apt_install wine64 wine || apt_install wine64 || apt_install wine || true
fi
if ! WINE="$(find_wine)"; then
    echo "Wine unavailable (apt-get install wine64): the run under Wine is skipped; rkms.exe was built"
    exit 0
fi
WINESERVER="$(command -v wineserver || echo /usr/lib/wine/wineserver)"

export WINEPREFIX="$WORK/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
# A failure also shows the end of the service's own log.
FAIL_LOGS+=("$WINEPREFIX/drive_c/ProgramData/rkms/logs/rkms.log")
cleanup() {
    if [ -x "$WINESERVER" ]; then
        timeout 30 "$WINESERVER" -k >/dev/null 2>&1 || true
    fi
    cleanup_check
}
trap cleanup EXIT

wine_exe() { timeout 90 "$WINE" "$EXE" "$@"; }

echo "== Wine: $("$WINE" --version 2>/dev/null || echo "$WINE"), prefix $WINEPREFIX"
timeout 300 "$WINE" wineboot --init >"$WORK/wineboot.log" 2>&1 || fail "wineboot --init"
# Let the first session end (the new prefix saved), then keep one session for the whole run:
# Wine "boots" at each new session, which starts auto-start services such as an installed rkms,
# and a session starting while another ends can get two service managers that disagree.
timeout 60 "$WINESERVER" -w || fail "Wine's first session did not end"
"$WINESERVER" -p || fail "cannot start a persistent wineserver"
# Rust's standard library (1.78 and later) takes random numbers from ProcessPrng in
# bcryptprimitives.dll, which Windows 10 and later have but Wine before 9.0 does not: give such
# a Wine a stand-in built with the MinGW compiler (Wine's own is used where it exists).
SYS32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -e "$SYS32/bcryptprimitives.dll" ]; then
    cat >"$WORK/bcryptprimitives.c" <<'EOF'
#include <windows.h>
#include <ntsecapi.h>
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
EOF
    x86_64-w64-mingw32-gcc -shared -O2 -s -o "$SYS32/bcryptprimitives.dll" \
        "$WORK/bcryptprimitives.c" -ladvapi32 || fail "building the bcryptprimitives.dll stand-in"
    echo "note: this Wine lacks bcryptprimitives.dll (ProcessPrng): using a stand-in"
fi
wine_exe --version >"$WORK/version.log" 2>&1 || fail "rkms.exe --version under Wine"
echo "rkms.exe runs: $(tr -d '\r' <"$WORK/version.log" | tail -n 1)"

echo "== rkms.exe serve under Wine, Linux rkms activate"
P1="$(free_port)"
"$WINE" "$EXE" serve --listen "127.0.0.1:$P1" --db none --web off >"$WORK/wine-serve.log" 2>&1 &
WINE_SERVE=$!
PIDS+=("$WINE_SERVE")
wait_port "$P1" 60 "$WINE_SERVE" || fail "rkms.exe serve did not listen on 127.0.0.1:$P1 within 60 s"
for v in 4 5 6; do
    activate "Linux rkms activate --protocol $v -> rkms.exe serve (Wine)" \
        timeout 90 "$LINUX" activate "127.0.0.1:$P1" --protocol "$v"
done

echo "== Linux rkms serve, rkms.exe activate under Wine"
P2="$(free_port)"
"$LINUX" serve --listen "127.0.0.1:$P2" --db none --web off >"$WORK/linux-serve.log" 2>&1 &
PIDS+=($!)
wait_port "$P2" 30 "$!" || fail "Linux rkms serve did not listen on 127.0.0.1:$P2"
activate "rkms.exe activate --protocol 6 (Wine) -> Linux rkms serve" \
    timeout 90 "$WINE" "$EXE" activate "127.0.0.1:$P2" --protocol 6

echo "== Ctrl-C stops rkms.exe serve"
kill -INT "$WINE_SERVE"
for _ in $(seq 60); do
    kill -0 "$WINE_SERVE" 2>/dev/null || break
    sleep 0.25
done
if kill -0 "$WINE_SERVE" 2>/dev/null; then
    fail "rkms.exe serve still runs 15 s after Ctrl-C"
fi
status=0
wait "$WINE_SERVE" || status=$?
grep -q "received Ctrl-C" "$WORK/wine-serve.log" || fail "rkms.exe serve did not log the Ctrl-C"
grep -q "stopped" "$WORK/wine-serve.log" || fail "rkms.exe serve did not stop cleanly"
echo "ok: Ctrl-C: clean stop (exit status $status)"

echo "== the Windows service through Wine's service manager"
P3="$(free_port)"
# Default state and logs: %ProgramData%\rkms\clients.db, %ProgramData%\rkms\logs\rkms.log.
wine_exe service install --listen "127.0.0.1:$P3" --web off >"$WORK/service-install.log" 2>&1 ||
    fail "rkms.exe service install"
tr -d '\r' <"$WORK/service-install.log" | sed 's/^/  | /'
grep -qF 'netsh advfirewall firewall add rule name="rkms KMS" dir=in action=allow protocol=TCP localport=1688' \
    "$WORK/service-install.log" || fail "install did not print the firewall rule"
# Installing again only updates the registration.
wine_exe service install --listen "127.0.0.1:$P3" --web off >"$WORK/service-reinstall.log" 2>&1 ||
    fail "rkms.exe service install (again)"
grep -q "already installed" "$WORK/service-reinstall.log" || fail "a second install was not an update"
wine_exe service start >"$WORK/service-start.log" 2>&1 || fail "rkms.exe service start"
echo "  | $(tr -d '\r' <"$WORK/service-start.log")"
wait_port "$P3" 30 || fail "the service did not listen on 127.0.0.1:$P3"
activate "Linux rkms activate --protocol 6 -> rkms.exe service (Wine)" \
    timeout 90 "$LINUX" activate "127.0.0.1:$P3" --protocol 6
wine_exe service status >"$WORK/service-status.log" 2>&1 || fail "service status: not running"
wine_exe service stop >"$WORK/service-stop.log" 2>&1 || fail "rkms.exe service stop"
status=0
wine_exe service status >"$WORK/service-status.log" 2>&1 || status=$?
[ "$status" = 3 ] || fail "service status after stop: exit status $status, not 3 (stopped)"
LOG="$WINEPREFIX/drive_c/ProgramData/rkms/logs/rkms.log"
grep -q "stop requested by the service manager" "$LOG" || fail "the service's log has no stop request"
grep -q "activated" "$LOG" || fail "the service's log has no activation"
[ -s "$WINEPREFIX/drive_c/ProgramData/rkms/clients.db" ] || fail "no client database in C:\ProgramData\rkms"
wine_exe service uninstall >"$WORK/service-uninstall.log" 2>&1 || fail "rkms.exe service uninstall"
status=0
wine_exe service status >"$WORK/service-status.log" 2>&1 || status=$?
[ "$status" = 4 ] || fail "service status after uninstall: exit status $status, not 4 (not installed)"
echo "ok: service install / start / activate / status / stop / uninstall (log and clients.db in C:\\ProgramData\\rkms)"

echo "Windows check passed in $((SECONDS - started)) s"
