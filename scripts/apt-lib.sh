# shellcheck shell=bash
# Installing what a script needs (sourced, not run): `have CMD`, and `apt_install PKG…`, which
# installs Debian packages as root with apt-get, updating the package lists once if needed.
# Shared by scripts/check-lib.sh (the CI checks), scripts/build-static.sh and scripts/release.sh.

have() { command -v "$1" >/dev/null 2>&1; }

APT_UPDATED=
apt_install() {
    have apt-get && [ "$(id -u)" = 0 ] || return 1
    export DEBIAN_FRONTEND=noninteractive
    if timeout 900 apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
        return 0
    fi
    [ -z "$APT_UPDATED" ] || return 1
    APT_UPDATED=1
    timeout 600 apt-get update -qq >/dev/null 2>&1 || return 1
    timeout 900 apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}
