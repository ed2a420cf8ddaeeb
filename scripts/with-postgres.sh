#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server:
#
#   bash scripts/with-postgres.sh cargo test -p rkms-store
#
# Installs PostgreSQL from the distribution's packages if it is missing (Debian/Ubuntu:
# `apt-get install postgresql`, as root), creates a cluster in a temporary directory, starts
# it on 127.0.0.1 on a free port (Unix socket in the temporary directory, never the system
# one), creates a user with a password and a database it owns, and runs the command with
#
#   RKMS_TEST_POSTGRES=postgres://rkms_test:PASSWORD@127.0.0.1:PORT/rkms_test
#
# in its environment. The server is stopped and the directory removed when the command ends
# (or the script is interrupted). The command's exit status is the script's.
#
# When PostgreSQL cannot be had (not installed and not root, no apt-get, install failed, or
# the server does not start), the script says so and runs the command without the variable:
# the PostgreSQL tests then skip themselves.
#
# Environment: WITH_POSTGRES_INSTALL_TIMEOUT (seconds for the package install, default 600),
# WITH_POSTGRES_START_TIMEOUT (seconds for the server to start or stop, default 60).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

INSTALL_TIMEOUT="${WITH_POSTGRES_INSTALL_TIMEOUT:-600}"
START_TIMEOUT="${WITH_POSTGRES_START_TIMEOUT:-60}"

say() { echo "with-postgres: $*" >&2; }

# Runs the command without PostgreSQL (after saying why).
without_postgres() {
    say "$1"
    say "running the command without RKMS_TEST_POSTGRES (PostgreSQL tests will be skipped)"
    unset RKMS_TEST_POSTGRES
    exec "${COMMAND[@]}"
}

COMMAND=("$@")

# The newest PostgreSQL server binaries: Debian keeps them in /usr/lib/postgresql/N/bin.
find_bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
        echo "$d"
        return
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        without_postgres "PostgreSQL is not installed and installing it needs root"
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        without_postgres "PostgreSQL is not installed and there is no apt-get to install it"
    fi
    say "installing PostgreSQL (apt-get install postgresql, at most ${INSTALL_TIMEOUT}s)"
    if ! DEBIAN_FRONTEND=noninteractive timeout "$INSTALL_TIMEOUT" \
        bash -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql' \
        >/tmp/with-postgres-apt.log 2>&1; then
        tail -n 20 /tmp/with-postgres-apt.log >&2 || true
        without_postgres "installing PostgreSQL failed (log: /tmp/with-postgres-apt.log)"
    fi
    BINDIR="$(find_bindir)"
    if [ -z "$BINDIR" ]; then
        without_postgres "PostgreSQL was installed but its server binaries were not found"
    fi
fi

# PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user.
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        without_postgres "running as root, but there is no 'postgres' user to run the server as"
    fi
    OWNER=postgres
    as_owner() {
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
        fi
    }
else
    OWNER="$(id -un)"
    as_owner() { "$@"; }
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/rkms-postgres.XXXXXX")"
DATA="$TMP/data"
SOCK="$TMP/socket"
LOG="$TMP/server.log"
mkdir -p "$SOCK"
chmod 700 "$TMP"
if [ "$OWNER" = postgres ] && [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$TMP"
fi

STARTED=0
cleanup() {
    local status=$?
    if [ "$STARTED" -eq 1 ]; then
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -t "$START_TIMEOUT" -w stop >/dev/null 2>&1 ||
            as_owner "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! as_owner timeout "$START_TIMEOUT" "$BINDIR/initdb" -D "$DATA" -U postgres -A trust \
    -E UTF8 --no-locale --no-sync >"$TMP/initdb.log" 2>&1; then
    cat "$TMP/initdb.log" >&2 || true
    trap - EXIT
    rm -rf "$TMP"
    without_postgres "initdb failed"
fi
# The test user logs in over TCP with a password (scram-sha-256); the socket is for set-up.
cat >"$DATA/pg_hba.conf" <<'EOF'
local all postgres trust
host  all all 127.0.0.1/32 scram-sha-256
EOF

# A free port: try random ones until the server starts on one.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        continue # taken
    fi
    if as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t "$START_TIMEOUT" \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null 2>&1; then
        STARTED=1
        break
    fi
    say "the server did not start on port $PORT (attempt $attempt)"
    tail -n 5 "$LOG" >&2 2>/dev/null || true
done
if [ "$STARTED" -ne 1 ]; then
    trap - EXIT
    rm -rf "$TMP"
    without_postgres "the PostgreSQL server did not start"
fi

PASSWORD="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
as_owner "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres \
    -c "CREATE ROLE rkms_test LOGIN PASSWORD '$PASSWORD'" \
    -c "CREATE DATABASE rkms_test OWNER rkms_test" >/dev/null

export RKMS_TEST_POSTGRES="postgres://rkms_test:$PASSWORD@127.0.0.1:$PORT/rkms_test"
say "PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (database rkms_test, user rkms_test) in $TMP"

set +e
"${COMMAND[@]}"
status=$?
set -e
exit "$status"
