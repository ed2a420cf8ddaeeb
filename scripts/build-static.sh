#!/usr/bin/env bash
# The one build recipe for rkms' release binaries: a static binary for one target, full or lean.
# scripts/release.sh, scripts/cross-check.sh, scripts/deb-check.sh and the Dockerfile all build
# through it.
#
#   scripts/build-static.sh TARGET [full|lean|none] [PROFILE]
#
#   TARGET   x86_64-unknown-linux-musl, aarch64-unknown-linux-musl,
#            armv7-unknown-linux-musleabihf (static, linked by cargo-zigbuild with Zig) or
#            x86_64-pc-windows-gnu (linked by Debian's MinGW-w64, set in .cargo/config.toml)
#   full     every feature (the default build); lean: --no-default-features --features sqlite
#            (and SQLite without FTS5, see below);
#            none: --no-default-features (memory store only; not released, measured in README)
#   PROFILE  cargo profile, default release (CI uses dev: same recipe, faster to build);
#            release-small: the smallest binaries (see below)
#
# With release-small, a Linux target's standard library is compiled here too, from rustup's
# rust-src, with the binary's size settings: optimised for size (std's optimize_for_size), no
# unwinding (panic_abort) and no unwind tables, no backtrace symbolisation and no source
# locations in panics (-Zlocation-detail=none: a panic still prints its message, then aborts;
# RUST_BACKTRACE shows no frames), and the C code (SQLite) without unwind tables too. In the
# lean and none builds (small devices) all code, Rust and C, goes through LLVM's machine
# outliner (repeated instruction sequences become one shared function: about 90 kB less, about
# 2 µs more server CPU per request; see README); the full build does without.
# cargo's -Zbuild-std and -Z flags are unstable: RUSTC_BOOTSTRAP=1 lets the stable toolchain
# take them (no nightly needed).
#
# Installs what it needs: the Rust target (rustup), Zig and cargo-zigbuild from PyPI into a
# virtual environment under target/release-tools (RKMS_RELEASE_TOOLS overrides; the lean build
# pins the Zig whose libc has musl's allocator, in a second one: see below), the MinGW-w64
# linker from apt. Full and lean builds of one target share the target directory (and every
# compiled dependency but SQLite, which the lean build compiles without FTS5): copy the binary
# before building the other variant.
# The last line of standard output is the path of the binary. Exit status 3: a tool could not
# be installed (callers report a skip); other non-zero: the build failed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

target="${1:?usage: build-static.sh TARGET [full|lean|none] [PROFILE]}"
variant="${2:-full}"
profile="${3:-release}"
tools="${RKMS_RELEASE_TOOLS:-$root/target/release-tools}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

log() { echo "build-static: $*" >&2; }
unavailable() {
    log "$*"
    exit 3
}

# SQLite options of this build added to those of .cargo/config.toml (the lean build's).
sqlite_extra=""
case "$variant" in
full) features=() ;;
lean)
    features=(--no-default-features --features sqlite)
    # SQLite without FTS5 (about 124 kB): the lean build has no dashboard, the only reader
    # of the search index, so it keeps none and shares databases with builds that do (see
    # crates/rkms-store/src/search_index.rs).
    sqlite_extra=" -USQLITE_ENABLE_FTS5"
    ;;
none)
    features=(--no-default-features)
    ;;
*)
    log "variant must be full, lean or none, not '$variant'"
    exit 2
    ;;
esac

# shellcheck source=scripts/apt-lib.sh
. scripts/apt-lib.sh

# The target's standard library from rustup; where it cannot be downloaded (a mirror without
# it), compiled here from rust-src with cargo's -Zbuild-std (RUSTC_BOOTSTRAP=1 lets the stable
# toolchain take that flag; the result is the same standard library).
build_std=()
if have rustup; then
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        log "rustup target add $target"
        if ! timeout 600 rustup target add "$target" >&2; then
            case "$target" in
            *-linux-musl*)
                log "the standard library for $target cannot be downloaded: building it from rust-src"
                timeout 600 rustup component add rust-src >&2 ||
                    unavailable "Rust target $target unavailable (no rust-std, no rust-src)"
                export RUSTC_BOOTSTRAP=1
                build_std=("-Zbuild-std=std,panic_abort")
                ;;
            *) unavailable "Rust target $target unavailable" ;;
            esac
        fi
    fi
fi

# release-small: the standard library built for size (see the top).
small_flags=""
if [ "$profile" = release-small ] && [[ "$target" == *-linux-musl* ]] && [ ${#build_std[@]} = 0 ]; then
    if have rustup && ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
        timeout 600 rustup component add rust-src >&2 || unavailable "rust-src unavailable (needed by release-small)"
    fi
    export RUSTC_BOOTSTRAP=1
    build_std=("-Zbuild-std=std,panic_abort" "-Zbuild-std-features=optimize_for_size")
    small_flags=" -C force-unwind-tables=no -Z location-detail=none"
    # The C code (SQLite) without unwind tables either.
    cflags="CFLAGS_${target//-/_}"
    export "$cflags=${!cflags:-} -fno-asynchronous-unwind-tables -fno-unwind-tables"
    # The lean and none builds (small devices) go through the machine outliner too; the full
    # build (servers) keeps the 2 µs. (`-mllvm=` in one word: cargo-zigbuild's wrapper would
    # take a separate `-enable-…` for the linker's -e.)
    if [ "$variant" != full ]; then
        small_flags="$small_flags -C llvm-args=-enable-machine-outliner"
        export "$cflags=${!cflags} -mllvm=-enable-machine-outliner"
    fi
fi

build=(cargo build)
case "$target" in
*-linux-musl*)
    # Zig links against its own musl and compiles the C in ring and the bundled SQLite for
    # every target: one toolchain, no per-target cross compiler.
    #
    # The program's malloc comes with that libc. Up to Zig 0.15 it is musl's own (mallocng:
    # size classes a fifth apart, whole groups handed back to the system once free); from 0.16
    # Zig's libc allocates with a Zig allocator instead (SmpAllocator: power-of-two size
    # classes after a 16-byte header, so that SQLite's 4.4 kB page buffers take 8 KiB each,
    # and per-thread free lists that never hand memory back). The lean build (small devices)
    # keeps musl's allocator: Zig is pinned to $musl_malloc_zig for it, in a virtual
    # environment of its own. Lean release-small build after `rkms bench -n 10000 -c 16`:
    # RssAnon 1,412-1,456 kB with it (at start 988-1,004), 2,108-3,188 kB with Zig 0.17.1's
    # (1,364-1,368), for about 10 µs more server CPU per request (`rkms bench -n 40000 -c 16`,
    # medians of alternated runs: 83.7 µs against 74.0; 86.8 with the settings below, the
    # build before this round 99.6). The full build
    # (servers) keeps the newest Zig and its faster allocator (see README, "Sizes and memory"),
    # and so does the none build, which has no SQLite work to save back what musl's allocator
    # costs: it would hold RssAnon 1,088-1,160 kB after the load instead of 1,676-1,720, for
    # 18.4 µs of server CPU per request instead of 16.0 (medians of 6, `--db none`).
    musl_malloc_zig=0.15.2
    venv="$tools/venv"
    ziglang=ziglang
    if [ "$variant" = lean ]; then
        venv="$tools/venv-zig-$musl_malloc_zig"
        ziglang="ziglang==$musl_malloc_zig"
        # With musl's allocator SQLite's page caches need no first block of 20 pages (87 kB,
        # every page written to, for each connection and each temporary table): pages come one
        # at a time, as used (its size classes fit a page). At start RssAnon 820-824 kB instead
        # of 964-968, after the load 1,256-1,300 instead of 1,392-1,424 (lean). With Zig's
        # allocator each such page would take 8 KiB, so the full build keeps the block. Nor
        # lookaside memory (48 kB set aside per connection, all written to at its opening,
        # for the small allocations of statements; the checkpoint connection prepares one
        # statement): RssAnon at start 712-716 kB instead of 820, after the load 1,152-1,208
        # instead of 1,268-1,280, server CPU per request unchanged within the spread (medians
        # of 6: 90.2 µs against 90.4).
        sqlite_extra="$sqlite_extra -DSQLITE_DEFAULT_PCACHE_INITSZ=0 -DSQLITE_DEFAULT_LOOKASIDE=0,0"
    fi
    if [ ! -x "$venv/bin/cargo-zigbuild" ] || [ ! -x "$venv/bin/python-zig" ]; then
        log "installing Zig ($ziglang) and cargo-zigbuild from PyPI into $venv"
        { [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2; } ||
            unavailable "cannot create a Python virtual environment (python3 -m venv)"
        timeout 900 "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            "$ziglang" cargo-zigbuild >&2 || unavailable "cannot install $ziglang and cargo-zigbuild from PyPI"
    fi
    # cargo-zigbuild finds Zig as `python3 -m ziglang` of the virtual environment.
    export PATH="$venv/bin:$PATH"
    build=(cargo-zigbuild zigbuild)
    # A plain static executable (not static-pie): `file` says "statically linked" and the
    # kernel loads it with no interpreter at all.
    var="CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
    flags="-C target-feature=+crt-static -C relocation-model=static"
    # A standard library built here comes without rustup's self-contained C start files
    # (crt1.o, …): Zig supplies its own, with its musl.
    [ ${#build_std[@]} = 0 ] || flags="$flags -C link-self-contained=no"
    flags="$flags$small_flags"
    export "$var=$flags"
    ;;
x86_64-pc-windows-gnu)
    if ! have x86_64-w64-mingw32-gcc; then
        log "installing Debian's gcc-mingw-w64-x86-64 (the Windows linker)"
        apt_install gcc-mingw-w64-x86-64 || true
    fi
    if ! have x86_64-w64-mingw32-gcc; then
        unavailable "MinGW-w64 linker (gcc-mingw-w64-x86-64) unavailable"
    fi
    ;;
*)
    log "unsupported target $target"
    exit 2
    ;;
esac

# An exported LIBSQLITE3_FLAGS replaces the value in .cargo/config.toml: that value, read from
# there, and this build's additions.
if [ -n "$sqlite_extra" ]; then
    sqlite_flags="$(sed -n 's/^LIBSQLITE3_FLAGS = "\(.*\)"$/\1/p' .cargo/config.toml)"
    [ -n "$sqlite_flags" ] || {
        log "no LIBSQLITE3_FLAGS line in .cargo/config.toml"
        exit 1
    }
    export LIBSQLITE3_FLAGS="$sqlite_flags$sqlite_extra"
    log "SQLite options added for this build:$sqlite_extra"
fi

log "${build[*]} --locked --profile $profile --target $target -p rkms ${features[*]:-}${build_std[*]:+ ${build_std[*]}} (target dir $target_dir)"
start=$SECONDS
CARGO_TARGET_DIR="$target_dir" "${build[@]}" --locked --profile "$profile" --target "$target" \
    -p rkms ${features[@]+"${features[@]}"} ${build_std[@]+"${build_std[@]}"} >&2
case "$profile" in
dev) outdir=debug ;;
*) outdir="$profile" ;;
esac
bin="$target_dir/$target/$outdir/rkms"
case "$target" in
*windows*) bin="$bin.exe" ;;
esac
[ -f "$bin" ] || {
    log "no binary at $bin after the build"
    exit 1
}
log "built $bin ($(du -h "$bin" | cut -f1)) in $((SECONDS - start)) s"
echo "$bin"
