#!/usr/bin/env bash
# Builds the Debian package rkms_VERSION-1_ARCH.deb from a static rkms binary, with Debian's
# own dpkg-deb:
#
#   scripts/build-deb.sh BINARY ARCH HOST-RKMS OUTDIR
#
#   BINARY     the static binary to package (scripts/build-static.sh, full build)
#   ARCH       its Debian architecture: amd64, arm64 or armhf
#   HOST-RKMS  an rkms of the same build that runs here, to generate man pages and completions
#   OUTDIR     where the .deb goes (its path is the last line of standard output)
#
# The package holds /usr/bin/rkms; the systemd units in /usr/lib/systemd/system (ExecStart=
# pointed at /usr/bin/rkms) and a preset enabling rkms.service; /etc/rkms/rkms.toml, a conffile;
# man pages in /usr/share/man/man1; bash, zsh and fish completions where those shells look;
# README, copyright and changelog in /usr/share/doc/rkms. The maintainer scripts do what
# debhelper's systemd snippets do: rkms.service is enabled on installation (deb-systemd-helper,
# which works with or without a running systemd) and started only where systemd runs; removal
# stops it; purge removes the enablement, the state directory (the client database) and logs.
#
# DEB_MAINTAINER sets the Maintainer field; SOURCE_DATE_EPOCH (default: the last commit's time)
# the timestamps, so that two builds of one commit give the same package.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
usage="usage: build-deb.sh BINARY ARCH HOST-RKMS OUTDIR"
bin="${1:?$usage}"
arch="${2:?$usage}"
host_rkms="${3:?$usage}"
outdir="${4:?$usage}"
maintainer="${DEB_MAINTAINER:-The rkms developers <maintainers@rkms.invalid>}"
case "$arch" in
amd64 | arm64 | armhf) ;;
*)
    echo "build-deb: unsupported architecture $arch (amd64, arm64 or armhf)" >&2
    exit 2
    ;;
esac
command -v dpkg-deb >/dev/null || {
    echo "build-deb: dpkg-deb not found (Debian's dpkg)" >&2
    exit 3
}

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)"
[ -n "$version" ] || {
    echo "build-deb: no version in $root/Cargo.toml" >&2
    exit 1
}
debversion="$version-1"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
files="$work/files"
pkg="$work/pkg"
"$root/scripts/release-files.sh" "$host_rkms" "$files"

umask 022
install -D -m 0755 "$bin" "$pkg/usr/bin/rkms"
# Stripped, as dh_strip does (no symbol table, no .comment), with the architecture's binutils
# (installed from apt if missing). Release binaries come stripped already; the CI's dev builds
# do not.
case "$arch" in
amd64) triple=x86_64-linux-gnu ;;
arm64) triple=aarch64-linux-gnu ;;
armhf) triple=arm-linux-gnueabihf ;;
esac
strip_tool="$triple-strip"
if ! command -v "$strip_tool" >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
        "binutils-$triple" >/dev/null 2>&1 ||
        { timeout 600 apt-get update -qq >/dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq \
                --no-install-recommends "binutils-$triple" >/dev/null 2>&1; } || true
fi
command -v "$strip_tool" >/dev/null || {
    echo "build-deb: $strip_tool not found (Debian package binutils-$triple)" >&2
    exit 3
}
"$strip_tool" --strip-all --remove-section=.comment "$pkg/usr/bin/rkms"

# Units: the installed binary's path, the packaged README.
units="$pkg/usr/lib/systemd/system"
mkdir -p "$units"
for u in rkms.service rkms.socket; do
    sed -e 's|/usr/local/bin/rkms|/usr/bin/rkms|g' \
        -e 's|file:/usr/share/doc/rkms/README.md|file:/usr/share/doc/rkms/README.md.gz|' \
        "$files/systemd/$u" >"$units/$u"
    chmod 0644 "$units/$u"
done
if grep -q /usr/local/ "$units"/*; then
    echo "build-deb: a unit still names /usr/local" >&2
    exit 1
fi
install -D -m 0644 /dev/stdin "$pkg/usr/lib/systemd/system-preset/80-rkms.preset" <<'EOF'
# rkms: the service starts at boot; the socket unit (systemd holding port 1688) is optional:
# `systemctl enable --now rkms.socket` to use it.
enable rkms.service
disable rkms.socket
EOF

install -D -m 0644 "$files/rkms.toml" "$pkg/etc/rkms/rkms.toml"

mkdir -p "$pkg/usr/share/man/man1"
for page in "$files"/man/*.1; do
    gz="$pkg/usr/share/man/man1/${page##*/}.gz"
    gzip -9n <"$page" >"$gz"
done
install -D -m 0644 "$files/completions/rkms.bash" "$pkg/usr/share/bash-completion/completions/rkms"
install -D -m 0644 "$files/completions/_rkms" "$pkg/usr/share/zsh/vendor-completions/_rkms"
install -D -m 0644 "$files/completions/rkms.fish" "$pkg/usr/share/fish/vendor_completions.d/rkms.fish"

doc="$pkg/usr/share/doc/rkms"
mkdir -p "$doc"
gzip -9n <"$files/README.md" >"$doc/README.md.gz"
gzip -9n <"$files/systemd/README.md" >"$doc/README.systemd.md.gz"
{
    echo "rkms ($debversion) unstable; urgency=medium"
    echo
    echo "  * rkms $version, packaged by scripts/build-deb.sh."
    echo
    echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.Debian.gz"
{
    cat <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: rkms

Files: *
Copyright: The rkms developers
License: MIT or Apache-2.0

License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.

License: MIT
EOF
    # The MIT text from LICENSE-MIT, indented, blank lines as " .", without its title line.
    sed -e '1{/^MIT License$/d}' "$root/LICENSE-MIT" | sed -e '1{/^$/d}' -e 's/^$/./' -e 's/^/ /'
} >"$doc/copyright"

# A static binary is what this package is for (it runs on any Debian release and architecture
# variant, with no library dependency).
install -D -m 0644 /dev/stdin "$pkg/usr/share/lintian/overrides/rkms" <<'EOF'
# rkms is deliberately built static (musl): one binary for every release and the containers.
rkms: statically-linked-binary [usr/bin/rkms]
# Not uploaded to Debian: there is no ITP bug to close.
rkms: initial-upload-closes-no-bugs [usr/share/doc/rkms/changelog.Debian.gz:1]
EOF

# Maintainer scripts: debhelper's systemd snippets (dh_installsystemd), for both units.
mkdir -p "$pkg/DEBIAN"
cat >"$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
	# Removes only the masks deb-systemd-helper made when the package was removed.
	deb-systemd-helper unmask 'rkms.service' >/dev/null || true
	deb-systemd-helper unmask 'rkms.socket' >/dev/null || true
	# was-enabled is true on a first installation: the preset (enable the service) applies.
	if deb-systemd-helper --quiet was-enabled 'rkms.service'; then
		deb-systemd-helper enable 'rkms.service' >/dev/null || true
	else
		deb-systemd-helper update-state 'rkms.service' >/dev/null || true
	fi
	# The socket unit is optional (disabled by the preset): only its state is recorded.
	deb-systemd-helper update-state 'rkms.socket' >/dev/null || true
	# Started only where systemd runs (not in a chroot, container build or other init).
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			_action=restart
		else
			_action=start
		fi
		deb-systemd-invoke $_action 'rkms.service' >/dev/null || true
	fi
fi
EOF
cat >"$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop 'rkms.service' 'rkms.socket' >/dev/null || true
fi
EOF
cat >"$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "remove" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper mask 'rkms.service' 'rkms.socket' >/dev/null || true
	fi
fi
if [ "$1" = "purge" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper purge 'rkms.service' 'rkms.socket' >/dev/null || true
		deb-systemd-helper unmask 'rkms.service' 'rkms.socket' >/dev/null || true
	fi
	# What systemd made for the unit (StateDirectory=, LogsDirectory= with DynamicUser=):
	# the client database and the log files.
	rm -rf /var/lib/private/rkms /var/log/private/rkms
	rm -rf /var/lib/rkms /var/log/rkms
	rmdir /etc/rkms 2>/dev/null || true
fi
EOF
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"
echo /etc/rkms/rkms.toml >"$pkg/DEBIAN/conffiles"

(cd "$pkg" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/md5sums" "$pkg/DEBIAN/conffiles"
size="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
cat >"$pkg/DEBIAN/control" <<EOF
Package: rkms
Version: $debversion
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Section: net
Priority: optional
Description: KMS host emulator and test client
 rkms answers Key Management Service (KMS) activation requests from Windows
 and Office volume-licensed clients (protocol versions 4, 5 and 6), records
 the clients it has seen, and serves a dashboard, an API and metrics. It is
 also a KMS test client: it activates against a host and checks the answer.
 .
 The package runs rkms as a hardened systemd service (rkms.service, with an
 optional socket unit) configured by /etc/rkms/rkms.toml.
EOF

find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$outdir"
deb="$outdir/rkms_${debversion}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >&2
echo "$deb"
