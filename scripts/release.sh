#!/usr/bin/env bash
# Builds every release artefact of rkms into dist/:
#
#   rkms-VERSION-x86_64-unknown-linux-musl.tar.gz         static, full build
#   rkms-VERSION-aarch64-unknown-linux-musl.tar.gz
#   rkms-VERSION-armv7-unknown-linux-musleabihf.tar.gz
#   rkms-VERSION-<each of the three>-lean.tar.gz           --no-default-features --features sqlite
#   rkms-VERSION-x86_64-pc-windows-gnu.zip
#   rkms_VERSION-1_amd64.deb, rkms_VERSION-1_arm64.deb      Debian packages (full build)
#   SHA256SUMS                                              sha256sum of all of the above
#
# Each archive holds one directory, rkms-VERSION-TARGET[-lean]/, with the binary, man pages,
# shell completions, README, licence files, the rkms.toml example, the systemd units and the
# OpenWrt files (scripts/release-files.sh). Binaries come from scripts/build-static.sh, the one
# build recipe (the CI checks and the Dockerfile use it too), packages from
# scripts/build-deb.sh. Tools are installed as needed (rustup targets; Zig and cargo-zigbuild
# from PyPI; MinGW-w64, zip, qemu-user-static and lintian from apt).
#
#   scripts/release.sh            # everything, dist/ emptied first
#
# The binaries are built with the `release-small` profile (code optimised for size, the
# standard library built for size too, a panic ends the process): the size targets are for
# the files people download. RELEASE_PROFILE=release builds them with `release` instead (about
# 3 MB larger, some µs of CPU less per request: see README, "Lean and full builds").
#
# Every Linux binary is checked to be static (`file`: "statically linked"), the cross-built
# ones are run under qemu-user-static (`rkms --version`) and the packages checked with lintian
# (errors fail the release) where those tools can be had. Timestamps come from the last commit
# (SOURCE_DATE_EPOCH), so archives of one commit are the same.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR=never

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
[ -n "$version" ] || {
    echo "release: no version in Cargo.toml" >&2
    exit 1
}
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    echo "release: note: the work tree has uncommitted changes; they are in this build" >&2
fi

dist="$root/dist"
profile="${RELEASE_PROFILE:-release-small}"
case "$profile" in
release | release-small) ;;
*)
    echo "release: RELEASE_PROFILE must be release-small or release, not '$profile'" >&2
    exit 2
    ;;
esac
linux_targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)
windows_target=x86_64-pc-windows-gnu
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
summary=()

# shellcheck source=scripts/apt-lib.sh
. scripts/apt-lib.sh
need() {
    local cmd="$1" pkg="$2"
    have "$cmd" || apt_install "$pkg" || true
    have "$cmd" || {
        echo "release: $cmd is needed (Debian package $pkg) and could not be installed" >&2
        exit 1
    }
}
need file file
need zip zip
need dpkg-deb dpkg
need sha256sum coreutils
have qemu-aarch64-static || apt_install qemu-user-static || true
have lintian || apt_install lintian || true

# The qemu that runs a target's binary here (nothing for x86_64).
qemu_for() {
    case "$1" in
    aarch64-*) echo qemu-aarch64-static ;;
    armv7-*) echo qemu-arm-static ;;
    esac
}

# build TARGET VARIANT: the static binary, copied to $work/bin/TARGET-VARIANT/.
build() {
    local target="$1" variant="$2" t0=$SECONDS bin out
    echo "== $target ($variant)"
    bin="$("$root/scripts/build-static.sh" "$target" "$variant" "$profile" | tail -n1)"
    out="$work/bin/$target-$variant"
    mkdir -p "$out"
    cp "$bin" "$out/"
    bin="$out/$(basename "$bin")"
    if [[ "$target" == *-linux-* ]]; then
        local desc
        desc="$(file -b "$bin")"
        [[ "$desc" == *"statically linked"* ]] || {
            echo "release: $bin is not statically linked: $desc" >&2
            exit 1
        }
        local q
        q="$(qemu_for "$target")"
        if [ -z "$q" ]; then
            "$bin" --version >/dev/null
        elif have "$q"; then
            "$q" "$bin" --version >/dev/null || {
                echo "release: $bin does not run under $q" >&2
                exit 1
            }
        else
            echo "release: note: $q unavailable, $target binary not run" >&2
        fi
    fi
    summary+=("$(printf '%-34s %-5s %6s KiB  built in %4d s' "$target" "$variant" "$(($(stat -c %s "$bin") / 1024))" $((SECONDS - t0)))")
}

rm -rf "$dist"
mkdir -p "$dist"
for variant in full lean; do
    for target in "${linux_targets[@]}"; do
        build "$target" "$variant"
    done
done
build "$windows_target" full

# Pages and completions come from the x86_64 full binary (it runs here) for both variants: the
# lean build has no `rkms completions` (the `completions` feature), and the command line is
# the same in every build (tests/layering.rs checks that cli.rs depends on no feature).
for variant in full lean; do
    "$root/scripts/release-files.sh" "$work/bin/x86_64-unknown-linux-musl-full/rkms" "$work/files-$variant"
done

# Reproducible archives: sorted names, fixed owner and times, gzip without a name or time.
stage() {
    local name="$1" bin="$2" variant="$3"
    local dir="$work/stage/$name"
    mkdir -p "$dir"
    cp -a "$work/files-$variant/." "$dir/"
    install -m 0755 "$bin" "$dir/"
    find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}
for variant in full lean; do
    suffix=""
    [ "$variant" = lean ] && suffix="-lean"
    for target in "${linux_targets[@]}"; do
        name="rkms-$version-$target$suffix"
        stage "$name" "$work/bin/$target-$variant/rkms" "$variant"
        tar -C "$work/stage" --sort=name --owner=0 --group=0 --numeric-owner \
            --mtime="@$SOURCE_DATE_EPOCH" -cf - "$name" | gzip -9n >"$dist/$name.tar.gz"
    done
done
name="rkms-$version-$windows_target"
stage "$name" "$work/bin/$windows_target-full/rkms.exe" full
(cd "$work/stage" && find "$name" | LC_ALL=C sort | zip -X -q -9 "$dist/$name.zip" -@)

echo "== Debian packages"
"$root/scripts/build-deb.sh" "$work/bin/x86_64-unknown-linux-musl-full/rkms" amd64 \
    "$work/bin/x86_64-unknown-linux-musl-full/rkms" "$dist" >/dev/null
"$root/scripts/build-deb.sh" "$work/bin/aarch64-unknown-linux-musl-full/rkms" arm64 \
    "$work/bin/x86_64-unknown-linux-musl-full/rkms" "$dist" >/dev/null
if have lintian; then
    for deb in "$dist"/*.deb; do
        echo "lintian $(basename "$deb"):"
        # Errors fail the release; warnings are shown.
        lintian --fail-on error --tag-display-limit 0 "$deb" || {
            echo "release: lintian reports errors for $deb" >&2
            exit 1
        }
    done
else
    echo "release: note: lintian unavailable, packages not checked" >&2
fi

(cd "$dist" && sha256sum -- *.tar.gz *.zip *.deb >SHA256SUMS)

echo
echo "== built in $((SECONDS - started)) s"
printf '%s\n' "${summary[@]}"
echo
(cd "$dist" && for f in *; do printf '%-60s %6s KiB\n' "$f" $(($(stat -c %s "$f") / 1024)); done)
