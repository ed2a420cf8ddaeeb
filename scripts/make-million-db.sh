#!/usr/bin/env bash
# Builds a large client database for measuring rkms at scale:
#
#   bash scripts/make-million-db.sh OUT.db [CLIENTS] [EVENTS_PER_CLIENT]
#
# 1. writes a py-kms database (pykms_database.db format) with CLIENTS rows (default
#    1,000,000): random CMIDs, workstation names, Windows and Office products, request times
#    spread over the last 60 days;
# 2. imports it with `rkms clients import` (timed: this is the import figure of the README);
# 3. adds history: each imported event is repeated EVENTS_PER_CLIENT - 1 more times (default
#    10 events per client in all), a day apart, straight in SQL, so the history holds
#    CLIENTS × EVENTS_PER_CLIENT events, with the per-day counts rebuilt to match.
#
# RKMS (default: target/release/rkms) names the binary. Needs python3. OUT.db must not exist.
set -euo pipefail

if [ "$#" -lt 1 ]; then
    echo "usage: $0 OUT.db [CLIENTS] [EVENTS_PER_CLIENT]" >&2
    exit 2
fi
OUT="$1"
CLIENTS="${2:-1000000}"
EVENTS="${3:-10}"
RKMS="${RKMS:-target/release/rkms}"
if [ -e "$OUT" ]; then
    echo "$OUT exists: choose a new file" >&2
    exit 2
fi
if ! [[ "$CLIENTS" =~ ^[0-9]+$ && "$EVENTS" =~ ^[0-9]+$ && "$EVENTS" -ge 1 ]]; then
    echo "CLIENTS and EVENTS_PER_CLIENT must be whole numbers (EVENTS_PER_CLIENT at least 1)" >&2
    exit 2
fi
PYKMS="$(mktemp -d)/pykms_database.db"
trap 'rm -rf "$(dirname "$PYKMS")"' EXIT

echo "writing $CLIENTS py-kms rows to $PYKMS"
python3 - "$PYKMS" "$CLIENTS" <<'PY'
import random, sqlite3, sys, time, uuid
path, n = sys.argv[1], int(sys.argv[2])
products = ["Windows 10 Professional", "Windows 10 Enterprise", "Windows 11 Education",
            "Windows Server 2022 Standard", "Windows Server 2019 Datacenter",
            "Office Professional Plus 2019", "Office LTSC Professional Plus 2021"]
rng = random.Random(1)
now = int(time.time())
db = sqlite3.connect(path)
db.execute("CREATE TABLE clients(clientMachineId TEXT, machineName TEXT, applicationId TEXT, "
           "skuId TEXT, licenseStatus TEXT, lastRequestTime INTEGER, kmsEpid TEXT, "
           "requestCount INTEGER, machineIp TEXT)")
def rows():
    for i in range(n):
        yield (str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"PC-{i:07d}", "Windows",
               products[i % len(products)], "Activated", now - rng.randrange(60 * 86400),
               "06401-00206-551-070254-03-1033-20348.0000-1202026", 1,
               f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
db.executemany("INSERT INTO clients VALUES (?,?,?,?,?,?,?,?,?)", rows())
db.commit()
PY

echo "importing into $OUT"
start=$(date +%s.%N)
"$RKMS" clients import "$PYKMS" --db "$OUT" > "$PYKMS.out"
head -1 "$PYKMS.out"
end=$(date +%s.%N)
echo "import took $(python3 -c "print(f'{$end - $start:.1f}')") s"

if [ "$EVENTS" -gt 1 ]; then
    echo "adding history: $EVENTS events per client"
    python3 - "$OUT" "$EVENTS" <<'PY'
import sqlite3, sys
path, k = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TEMP TABLE copies(n INTEGER)")
db.executemany("INSERT INTO copies VALUES (?)", [(i,) for i in range(1, k)])
db.execute("DROP INDEX activations_time")
db.execute("INSERT INTO activations (time, cmid, app, sku, kms, workstation, license_status, "
           "protocol, address, hresult) SELECT a.time - c.n * 86400, a.cmid, a.app, a.sku, a.kms, "
           "a.workstation, a.license_status, a.protocol, a.address, a.hresult "
           "FROM copies c, activations a ORDER BY c.n DESC, a.rowid")
db.execute("CREATE INDEX activations_time ON activations (time)")
# Each client record's seconds with events (schema 9), rebuilt from the whole history.
db.execute("DELETE FROM client_events")
db.execute("INSERT INTO client_events (client, time, events) SELECT c.id, a.time, COUNT(*) "
           "FROM activations a JOIN clients c ON c.cmid = a.cmid AND c.app = a.app "
           "GROUP BY 1, 2 ORDER BY 1, 2")
db.execute("DELETE FROM activation_days")
db.execute("INSERT INTO activation_days (day, app, kms, ok, count) "
           "SELECT time - ((time % 86400) + 86400) % 86400, app, kms, hresult = 0, COUNT(*) "
           "FROM activations GROUP BY 1, 2, 3, 4")
db.commit()
print(db.execute("SELECT (SELECT COUNT(*) FROM clients), (SELECT COUNT(*) FROM activations)").fetchone())
PY
fi
ls -l "$OUT"
