#!/usr/bin/env bash
# CI check of the Debian package: the x86_64 static binary built with the release recipe
# (scripts/build-static.sh; the dev profile here, to keep CI short), packaged by
# scripts/build-deb.sh as scripts/release.sh does, then:
#   - the binary is static (`file`) and runs in an empty root directory (no libc at all);
#   - lintian reports no error;
#   - `dpkg -i` installs it on this machine: `rkms --version`, the files where Debian wants
#     them, /etc/rkms/rkms.toml a conffile, rkms.service enabled (preset) but not started when
#     systemd does not run, `systemd-analyze verify` on the installed units;
#   - `dpkg --purge` removes it, and what systemd would have made for it (the state directory
#     with a client database, the enablement links), leaving /etc, /usr and /var as they were.
# Needs root and dpkg (apt-get for the tools); without them, or when a tool cannot be
# installed, the check reports the skip and exits 0. Refuses to run if rkms is already
# installed as a package (it would be replaced and purged).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# shellcheck source=scripts/check-lib.sh
. scripts/check-lib.sh
started=$SECONDS
profile="${DEB_PROFILE:-dev}"

if [ "$(id -u)" != 0 ] || ! have dpkg; then
    echo "not root or no dpkg: the Debian package check is skipped"
    exit 0
fi
if dpkg-query -W -f='${Status}' rkms 2>/dev/null | grep -q 'installed\|config-files'; then
    echo "a package named rkms is already installed here: the Debian package check is skipped" \
        "(it would replace and purge it)"
    exit 0
fi
for tool in file:file lintian:lintian systemd-analyze:systemd; do
    have "${tool%%:*}" || apt_install "${tool#*:}" || true
done
have file || {
    echo "file(1) unavailable: the Debian package check is skipped"
    exit 0
}

echo "== x86_64-unknown-linux-musl: scripts/build-static.sh (profile $profile)"
static_build x86_64-unknown-linux-musl full "$profile" "the Debian package check is"
bin="$WORK/rkms"
cp "$BUILT" "$bin"
assert_static "$bin" x86_64-unknown-linux-musl
run_without_libc "$bin"

echo "== scripts/build-deb.sh"
deb="$(scripts/build-deb.sh "$bin" amd64 "$bin" "$WORK/out" | tail -n1)"
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"

echo "== lintian"
if have lintian; then
    lintian --fail-on error --tag-display-limit 0 "$deb" || fail "lintian reports errors"
    echo "ok: lintian: no errors"
else
    echo "lintian unavailable: skipped"
fi

# The state of the directories a package may touch, to compare after the purge.
snapshot() {
    find /etc /usr /var/lib /var/log /opt -xdev \
        \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/log/apt \
        -o -path /var/lib/systemd/deb-systemd-helper-enabled -o -path /var/log/journal \
        -o -path '/usr/lib/python3*' \) -prune -o -print 2>/dev/null | LC_ALL=C sort
}
snapshot >"$WORK/before.txt"
[ ! -e /etc/rkms ] && [ ! -e /var/lib/private/rkms ] ||
    fail "/etc/rkms or /var/lib/private/rkms exists before the installation"

echo "== dpkg -i"
purge() { dpkg --purge rkms >"$WORK/purge.log" 2>&1; }
trap 'purge || true; cleanup_check' EXIT
dpkg -i "$deb" >"$WORK/dpkg-i.log" 2>&1 || fail "dpkg -i $(basename "$deb")"
want="rkms $(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
got="$(/usr/bin/rkms --version)"
[ "$got" = "$want" ] || fail "/usr/bin/rkms --version: '$got', expected '$want'"
echo "ok: /usr/bin/rkms --version: $got"
for f in /usr/lib/systemd/system/rkms.service /usr/lib/systemd/system/rkms.socket \
    /usr/lib/systemd/system-preset/80-rkms.preset /etc/rkms/rkms.toml \
    /usr/share/man/man1/rkms.1.gz /usr/share/man/man1/rkms-serve.1.gz \
    /usr/share/bash-completion/completions/rkms /usr/share/zsh/vendor-completions/_rkms \
    /usr/share/fish/vendor_completions.d/rkms.fish /usr/share/doc/rkms/copyright; do
    [ -s "$f" ] || fail "$f is not installed"
done
echo "ok: binary, units, preset, configuration, man pages, completions and copyright installed"
dpkg-query -W -f='${Conffiles}\n' rkms | grep -q '^ /etc/rkms/rkms.toml ' ||
    fail "/etc/rkms/rkms.toml is not a conffile"
echo "ok: /etc/rkms/rkms.toml is a conffile"
grep -q '^ExecStart=/usr/bin/rkms serve$' /usr/lib/systemd/system/rkms.service ||
    fail "the installed rkms.service does not run /usr/bin/rkms"
[ -L /etc/systemd/system/multi-user.target.wants/rkms.service ] ||
    fail "rkms.service is not enabled after the installation"
[ ! -e /etc/systemd/system/sockets.target.wants/rkms.socket ] ||
    fail "rkms.socket is enabled (the preset disables it)"
echo "ok: rkms.service enabled, rkms.socket not"
if [ ! -d /run/systemd/system ]; then
    # No systemd here: the postinst must not have started anything.
    if pgrep -f '^/usr/bin/rkms( |$)' >/dev/null 2>&1; then
        fail "/usr/bin/rkms runs after the installation on a system without systemd"
    fi
    echo "ok: not started (systemd does not run here)"
fi
if have systemd-analyze; then
    out="$(systemd-analyze verify --man=no /usr/lib/systemd/system/rkms.service \
        /usr/lib/systemd/system/rkms.socket 2>&1)" || fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify: $out"
    echo "ok: systemd-analyze verify on the installed units"
else
    echo "systemd-analyze unavailable: the installed units are not verified"
fi
man -w rkms >/dev/null 2>&1 && echo "ok: man finds rkms(1)" || true
# What systemd makes when it starts the unit (StateDirectory= and LogsDirectory= with
# DynamicUser=), with a client database, so that the purge has to remove them.
mkdir -p /var/lib/private/rkms /var/log/private/rkms
ln -s private/rkms /var/lib/rkms
ln -s private/rkms /var/log/rkms
/usr/bin/rkms clients --db /var/lib/private/rkms/clients.db >/dev/null 2>&1 || true
: >>/var/lib/private/rkms/clients.db

echo "== dpkg --purge"
purge || fail "dpkg --purge rkms"
trap cleanup_check EXIT
if dpkg-query -W -f='${Status}' rkms 2>/dev/null | grep -q 'installed\|config-files'; then
    fail "rkms is still known to dpkg after the purge"
fi
for state in /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked; do
    if [ -d "$state" ] && find "$state" -name '*rkms*' | grep -q .; then
        fail "deb-systemd-helper still records rkms units in $state"
    fi
done
snapshot >"$WORK/after.txt"
if ! diff "$WORK/before.txt" "$WORK/after.txt" >"$WORK/left.diff"; then
    cat "$WORK/left.diff" >&2
    fail "the purge left the file system different (above: < before, > after)"
fi
echo "ok: dpkg --purge left nothing behind (/etc, /usr, /var/lib, /var/log, /opt as before)"
echo "Debian package check passed in $((SECONDS - started)) s"
