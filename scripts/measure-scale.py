#!/usr/bin/env python3
"""Measures rkms on a large client database (see scripts/make-million-db.sh):

    python3 scripts/measure-scale.py DB [RKMS]

Starts `rkms serve --db DB` on loopback (KMS port 21688, dashboard 28080; the database is
opened read-write, so an older schema is migrated first), and prints: the time from start to
listening, p50/p95 of 20 requests to each dashboard page and API call (fleet health pages and
/metrics included; /metrics reuses its fleet counts for 5 s), the host's RSS after 8
concurrent dashboard clients made 40 requests each, and the time of `rkms clients --limit 50`
and `rkms clients --state overdue --limit 50`.
The host is stopped at the end. Bounded: at most a few hundred requests in all.
"""
import socket, subprocess, sys, threading, time, urllib.request

db = sys.argv[1]
rkms = sys.argv[2] if len(sys.argv) > 2 else "target/release/rkms"
KMS, WEB = 21688, 28080


def get(path):
    t = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{WEB}{path}", timeout=60) as r:
        r.read()
        assert r.status == 200, (path, r.status)
    return time.monotonic() - t


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


start = time.monotonic()
host = subprocess.Popen([rkms, "serve", "--db", db, "--listen", f"127.0.0.1:{KMS}",
                         "--web", f"127.0.0.1:{WEB}", "--log-level", "warn"])
try:
    while True:
        try:
            socket.create_connection(("127.0.0.1", KMS), timeout=0.2).close()
            socket.create_connection(("127.0.0.1", WEB), timeout=0.2).close()
            break
        except OSError:
            if host.poll() is not None or time.monotonic() - start > 600:
                sys.exit("the host did not start")
            time.sleep(0.02)
    print(f"start-up to listening: {time.monotonic() - start:.2f} s")
    import json
    some = json.load(urllib.request.urlopen(f"http://127.0.0.1:{WEB}/api/v1/clients?limit=1"))
    cmid = some["clients"][0]["cmid"]
    paths = ["/", "/clients", "/clients?q=pc-0123", "/clients?q=office&sort=workstation",
             f"/clients/{cmid}", "/api/v1/clients?limit=50", "/api/v1/activations",
             "/api/v1/stats", "/api/v1/fleet", "/clients?state=overdue",
             "/clients?state=at-risk", "/api/v1/clients?state=current&limit=50",
             "/clients?sort=expires", "/metrics"]
    for p in paths:
        get(p)
        times = sorted(get(p) for _ in range(20))
        print(f"{p:45} p50 {times[9] * 1000:7.1f} ms   p95 {times[18] * 1000:7.1f} ms")
    before = rss_kib(host.pid)
    def client(i):
        for n in range(40):
            get(paths[(i + n) % len(paths)])
    t = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(f"8 concurrent dashboard clients x 40 requests: {time.monotonic() - t:.1f} s, "
          f"RSS {before // 1024} MB before, {rss_kib(host.pid) // 1024} MB after")
finally:
    host.terminate()
    host.wait(timeout=60)
t = time.monotonic()
out = subprocess.run([rkms, "clients", "--db", db, "--limit", "50"], capture_output=True)
assert out.returncode == 0, out.stderr
print(f"rkms clients --limit 50: {time.monotonic() - t:.2f} s")
t = time.monotonic()
out = subprocess.run([rkms, "clients", "--db", db, "--state", "overdue", "--limit", "50"],
                     capture_output=True)
assert out.returncode == 0, out.stderr
print(f"rkms clients --state overdue --limit 50: {time.monotonic() - t:.2f} s")
