//! Import of py-kms databases, from fixtures built here with py-kms' own schema.

mod common;

use std::path::Path;

use common::{id, TempDir};
use rkms_store::pykms::{pykms_license_status, PYKMS_COLUMNS};
use rkms_store::{
    import_pykms, read_pykms, ClientFilter, ClientStore, ImportReport, MemoryStore, SqliteStore,
    StoreError,
};
use rusqlite::Connection;
use uuid::Uuid;

/// `pykms_Sql.py`'s table (py-kms 1.x).
const PYKMS_DDL: &str = "CREATE TABLE clients(clientMachineId TEXT, machineName TEXT, \
    applicationId TEXT, skuId TEXT, licenseStatus TEXT, lastRequestTime INTEGER, kmsEpid TEXT, \
    requestCount INTEGER)";

/// The later fork's table, with the client address and a primary key.
const PYKMS_IP_DDL: &str = "CREATE TABLE clients(clientMachineId TEXT , machineName TEXT, \
    applicationId TEXT, skuId TEXT, licenseStatus TEXT, lastRequestTime INTEGER, kmsEpid TEXT, \
    requestCount INTEGER, machineIp TEXT, PRIMARY KEY(clientMachineId, applicationId))";

const W10_PRO: &str = "Windows 10 Professional";
const OFFICE: &str = "Office Professional Plus 2019";
const CMID_1: &str = "0c63a4d6-6a3c-4a2e-9a4c-1b2d3e4f5a61";
const CMID_2: &str = "7f3b9c1e-2d4a-4b5c-8d6e-9f0a1b2c3d42";
const CMID_3: &str = "a1b2c3d4-e5f6-4711-8899-aabbccddee03";

fn resolve(name: &str) -> Option<(Uuid, Uuid, Uuid)> {
    match name {
        W10_PRO => Some((common::windows_app(), id(0x5c), id(0xa))),
        OFFICE => Some((common::office_app(), id(0x0f), id(0xb))),
        _ => None,
    }
}

/// clientMachineId, machineName, applicationId, skuId, licenseStatus, lastRequestTime,
/// kmsEpid, requestCount.
type PykmsRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    i64,
    Option<&'a str>,
    i64,
);

fn fixture(path: &Path) {
    let con = Connection::open(path).unwrap();
    con.execute_batch(PYKMS_DDL).unwrap();
    let rows: [PykmsRow; 6] = [
        (
            CMID_1,
            "DESKTOP-1",
            "Windows",
            W10_PRO,
            "Activated",
            1_700_000_000,
            Some("epid-w"),
            12,
        ),
        (
            CMID_1,
            "DESKTOP-1",
            "Office 2013+",
            OFFICE,
            "Grace Period",
            1_700_000_100,
            Some("epid-o"),
            3,
        ),
        (
            CMID_2,
            "LAPTOP-2",
            "Windows",
            W10_PRO,
            "Initial grace period",
            1_700_000_200,
            None,
            1,
        ),
        (
            CMID_3,
            "OLD-3",
            "Windows",
            "Windows 95 Ultimate",
            "Activated",
            1_600_000_000,
            None,
            1,
        ),
        (
            "not-a-guid",
            "BROKEN",
            "Windows",
            W10_PRO,
            "Activated",
            1_700_000_300,
            None,
            1,
        ),
        (
            CMID_3,
            "OLD-3",
            "Windows",
            W10_PRO,
            "Unknown",
            1_650_000_000,
            Some("epid-3"),
            9,
        ),
    ];
    for r in rows {
        con.execute(
            "INSERT INTO clients VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7],
        )
        .unwrap();
    }
}

fn check_import(store: &dyn ClientStore, path: &Path) {
    let report = import_pykms(store, path, &resolve).unwrap();
    let cmid = |s: &str| Uuid::parse_str(s).unwrap();
    assert_eq!(report.imported, 4);
    assert_eq!(
        report.unmapped,
        [(cmid(CMID_3), "Windows 95 Ultimate".to_string())]
    );
    assert_eq!(report.invalid.len(), 1);
    assert!(
        report.invalid[0].contains("not-a-guid"),
        "{:?}",
        report.invalid
    );

    assert_eq!(store.count().unwrap(), 4);
    let get = |c: &str, app: Uuid| {
        let filter = ClientFilter {
            cmid: Some(cmid(c)),
            application_id: Some(app),
            ..Default::default()
        };
        let mut found = store.list(&filter).unwrap();
        assert_eq!(found.len(), 1);
        found.remove(0)
    };
    let w = get(CMID_1, common::windows_app());
    assert_eq!((w.sku_id, w.kms_id), (id(0x5c), id(0xa)));
    assert_eq!(w.workstation, "DESKTOP-1");
    assert_eq!((w.license_status, w.last_epid.as_str()), (1, "epid-w"));
    assert_eq!(
        (w.first_seen, w.last_seen, w.requests),
        (1_700_000_000, 1_700_000_000, 1)
    );
    assert_eq!((w.last_hresult, w.is_vm, w.grace_minutes), (0, false, 0));
    assert_eq!((w.protocol.as_str(), w.last_address.as_str()), ("", ""));
    let o = get(CMID_1, common::office_app());
    assert_eq!(
        (o.sku_id, o.kms_id, o.license_status),
        (id(0x0f), id(0xb), 2)
    );
    let l = get(CMID_2, common::windows_app());
    assert_eq!((l.license_status, l.last_epid.as_str()), (2, ""));
    let old = get(CMID_3, common::windows_app());
    assert_eq!((old.license_status, old.last_seen), (0, 1_650_000_000));
    assert_eq!(
        store
            .distinct_clients_since(&id(0xa), 1_690_000_000)
            .unwrap(),
        2
    );
}

#[test]
fn imports_into_memory_store() {
    let dir = TempDir::new("pykms-mem");
    let path = dir.join("pykms_database.db");
    fixture(&path);
    check_import(&MemoryStore::new(), &path);
}

#[test]
fn imports_into_sqlite_store_and_leaves_source_alone() {
    let dir = TempDir::new("pykms-sqlite");
    let source = dir.join("pykms_database.db");
    fixture(&source);
    let before = std::fs::read(&source).unwrap();
    let store = SqliteStore::open(&dir.join("clients.db")).unwrap();
    check_import(&store, &source);
    assert_eq!(std::fs::read(&source).unwrap(), before);
    // The imported records are in the search index already: nothing is left listed.
    let listed: i64 = rusqlite::Connection::open(dir.join("clients.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM search_pending", [], |r| r.get(0))
        .unwrap();
    assert_eq!(listed, 0);
    assert!(!store.upkeep(true).unwrap());
}

#[test]
fn reads_machine_ip_of_later_forks() {
    let dir = TempDir::new("pykms-ip");
    let path = dir.join("pykms_database.db");
    let con = Connection::open(&path).unwrap();
    con.execute_batch(PYKMS_IP_DDL).unwrap();
    con.execute(
        "INSERT INTO clients VALUES (?1, 'PC', 'Windows', ?2, 'Activated', 1700000000.7, 'e', 4, '192.0.2.9')",
        [CMID_1, W10_PRO],
    )
    .unwrap();
    drop(con);
    let (activations, report) = read_pykms(&path, &resolve).unwrap();
    assert_eq!(
        report,
        ImportReport {
            imported: 1,
            ..Default::default()
        }
    );
    assert_eq!(activations[0].address, "192.0.2.9");
    assert_eq!(activations[0].time, 1_700_000_000);
}

#[test]
fn refuses_what_is_not_a_pykms_database() {
    let dir = TempDir::new("pykms-bad");
    let empty = dir.join("empty.db");
    Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE other (x)")
        .unwrap();
    let e = read_pykms(&empty, &resolve).unwrap_err();
    assert!(
        matches!(e, StoreError::Import { .. }) && e.to_string().contains("empty.db"),
        "{e}"
    );

    let partial = dir.join("partial.db");
    Connection::open(&partial)
        .unwrap()
        .execute_batch("CREATE TABLE clients(clientMachineId TEXT, machineName TEXT)")
        .unwrap();
    let e = read_pykms(&partial, &resolve).unwrap_err();
    assert!(e.to_string().contains("applicationId"), "{e}");

    let absent = dir.join("absent.db");
    let e = import_pykms(&MemoryStore::new(), &absent, &resolve).unwrap_err();
    assert!(
        matches!(e, StoreError::Open { .. }) && e.to_string().contains("absent.db"),
        "{e}"
    );
    assert!(!absent.exists());

    let garbage = dir.join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 2048]).unwrap();
    let e = read_pykms(&garbage, &resolve).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e:?}");
    assert!(PYKMS_COLUMNS.contains(&"lastRequestTime"));
}

#[test]
fn license_status_words() {
    for (text, n) in [
        ("Unlicensed", 0),
        ("Activated", 1),
        ("Licensed", 1),
        ("Grace Period", 2),
        ("Initial grace period", 2),
        ("Out-of-Box Grace Period", 2),
        ("Out-of-Tolerance Grace Period", 3),
        ("Non-Genuine Grace Period", 4),
        ("Notifications Mode", 5),
        ("Extended Grace Period", 6),
        ("3", 3),
        ("Unknown", 0),
        ("", 0),
    ] {
        assert_eq!(pykms_license_status(text), n, "{text:?}");
    }
}

#[test]
fn impossible_times_are_refused_and_counted() {
    let dir = TempDir::new("pykms-times");
    let path = dir.join("pykms_database.db");
    let con = Connection::open(&path).unwrap();
    con.execute_batch(PYKMS_DDL).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let times: [(i64, bool); 8] = [
        (i64::MIN, false),
        (-1, false),
        (0, false),
        (1_136_073_599, false), // a second before 2006
        (1_700_000_000, true),
        (now + 3600, true),       // clocks differ a little
        (253_402_300_799, false), // 9999-12-31
        (i64::MAX, false),
    ];
    for (i, (t, _)) in times.iter().enumerate() {
        con.execute(
            "INSERT INTO clients VALUES (?1, 'PC', 'Windows', ?2, 'Activated', ?3, 'e', 1)",
            rusqlite::params![format!("{CMID_1:.30}{i:06}"), W10_PRO, t],
        )
        .unwrap();
    }
    // Reals and text too.
    con.execute(
        "INSERT INTO clients VALUES (?1, 'PC', 'Windows', ?2, 'Activated', 1e300, 'e', 1)",
        [CMID_2, W10_PRO],
    )
    .unwrap();
    con.execute(
        "INSERT INTO clients VALUES (?1, 'PC', 'Windows', ?2, 'Activated', '99999999999', 'e', 1)",
        [CMID_3, W10_PRO],
    )
    .unwrap();
    drop(con);
    let store = MemoryStore::new();
    let report = import_pykms(&store, &path, &resolve).unwrap();
    assert_eq!(report.imported, 2, "{report:?}");
    assert_eq!(report.impossible_times, 8, "{report:?}");
    assert_eq!(report.invalid.len(), 8, "{report:?}");
    assert!(
        report.invalid[0].contains("not a possible time"),
        "{report:?}"
    );
    let mut kept: Vec<i64> = store
        .list(&ClientFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.last_seen)
        .collect();
    kept.sort();
    let expected: Vec<i64> = times.iter().filter(|t| t.1).map(|t| t.0).collect();
    assert_eq!(kept, expected);
}

/// A py-kms database of `n` rows: 40 machines, each seen again and again (so that one
/// machine's rows fall in different batches), every tenth row of an unknown product and every
/// thirteenth with a bad time.
fn large_fixture(path: &Path, n: i64) {
    let con = Connection::open(path).unwrap();
    con.execute_batch(
        PYKMS_IP_DDL
            .replace(", PRIMARY KEY(clientMachineId, applicationId)", "")
            .as_str(),
    )
    .unwrap();
    let mut insert = con
        .prepare("INSERT INTO clients VALUES (?1, ?2, 'Windows', ?3, 'Activated', ?4, ?5, 1, ?6)")
        .unwrap();
    for row in 0..n {
        let machine = row % 40;
        let sku = if row % 10 == 9 {
            "Unknown product"
        } else if machine % 2 == 0 {
            W10_PRO
        } else {
            OFFICE
        };
        let time = if row % 13 == 12 {
            -5
        } else {
            1_700_000_000 + row * 60
        };
        insert
            .execute(rusqlite::params![
                id(0x1000 + machine as u128).to_string(),
                format!("PC-{machine}-{row}"),
                sku,
                time,
                format!("epid-{row}"),
                format!("192.0.2.{}", row % 250),
            ])
            .unwrap();
    }
}

/// Importing in batches (here 7 rows at a time, a machine's rows spread over many batches)
/// gives the same records, history and report as reading the whole database and writing it
/// in one batch.
#[test]
fn import_in_batches_equals_one_batch() {
    let dir = TempDir::new("pykms-batches");
    let source = dir.join("pykms_database.db");
    large_fixture(&source, 500);
    let batched = SqliteStore::open(&dir.join("batched.db")).unwrap();
    let report = rkms_store::import_pykms_in_batches(&batched, &source, &resolve, 7).unwrap();
    let whole = SqliteStore::open(&dir.join("whole.db")).unwrap();
    let (activations, expected) = read_pykms(&source, &resolve).unwrap();
    whole.record_batch(&activations).unwrap();
    assert_eq!(report, expected);
    assert_eq!(report.imported, activations.len() as u64);
    assert!(report.imported > 300 && !report.unmapped.is_empty() && !report.invalid.is_empty());
    // Machines 9, 19, 29 and 39 have only rows of the unknown product.
    assert_eq!(batched.count().unwrap(), 36);
    assert_eq!(
        batched.list(&ClientFilter::default()).unwrap(),
        whole.list(&ClientFilter::default()).unwrap()
    );
    assert_eq!(
        batched.events_page(0, 1_000).unwrap(),
        whole.events_page(0, 1_000).unwrap()
    );
    // Every imported record is found by search (indexed once the import returns).
    let found = batched
        .list(&ClientFilter {
            search: Some(rkms_store::Search {
                text: "PC-".into(),
                ..rkms_store::Search::default()
            }),
            ..ClientFilter::default()
        })
        .unwrap();
    assert_eq!(found.len(), 36);
    // The memory store (the trait's default: every batch collected, then one write) agrees.
    let memory = MemoryStore::new();
    rkms_store::import_pykms_in_batches(&memory, &source, &resolve, 7).unwrap();
    assert_eq!(
        memory.list(&ClientFilter::default()).unwrap(),
        whole.list(&ClientFilter::default()).unwrap()
    );
}

/// A source failing after some batches were written leaves nothing behind: the batches of
/// `record_all` are one transaction (every store: SQLite, memory, and PostgreSQL when
/// `RKMS_TEST_POSTGRES` is set). A client repeated in several batches is one record.
#[test]
fn record_all_is_all_or_nothing() {
    let dir = TempDir::new("record-all");
    let sqlite = SqliteStore::open(&dir.join("clients.db")).unwrap();
    let memory = MemoryStore::new();
    let schema = common::PgSchema::new("record_all");
    let pg = schema
        .as_ref()
        .map(|s| rkms_store::PgStore::open(s.url()).unwrap());
    let mut stores = vec![&sqlite as &dyn ClientStore, &memory];
    stores.extend(pg.as_ref().map(|s| s as &dyn ClientStore));
    for store in stores {
        let mut calls = 0;
        let e = store
            .record_all(
                &mut |sink| {
                    for n in 0..3u128 {
                        calls += 1;
                        sink(vec![common::activation(id(n), id(0xa), 1_800_000_000)])?;
                    }
                    Err(StoreError::Unsupported(
                        "a source failing after three batches",
                    ))
                },
                3,
            )
            .unwrap_err();
        assert!(matches!(e, StoreError::Unsupported(_)), "{e}");
        assert_eq!(calls, 3);
        assert_eq!(store.count().unwrap(), 0);
        assert!(store.recent_activations(10).unwrap().is_empty());
        // And a source that succeeds writes every batch.
        let n = store
            .record_all(
                &mut |sink| {
                    for n in 0..3u128 {
                        sink(vec![
                            common::activation(id(n), id(0xa), 1_800_000_000),
                            common::activation(id(n), id(0xa), 1_800_000_060),
                        ])?;
                    }
                    Ok(())
                },
                6,
            )
            .unwrap();
        assert_eq!(n, 6);
        assert_eq!(store.count().unwrap(), 3);
        assert_eq!(store.recent_activations(10).unwrap().len(), 6);
        let n = store
            .record_all(
                &mut |sink| {
                    for time in [1_800_000_120, 1_800_000_180] {
                        sink(vec![common::activation(id(1), id(0xa), time)])?;
                    }
                    Ok(())
                },
                2,
            )
            .unwrap();
        assert_eq!(n, 2);
        let r = &store
            .list(&ClientFilter {
                cmid: Some(id(1)),
                ..ClientFilter::default()
            })
            .unwrap()[0];
        assert_eq!(
            (r.requests, r.first_seen, r.last_seen),
            (4, 1_800_000_000, 1_800_000_180)
        );
        // The store still takes ordinary writes.
        store
            .record(&common::activation(id(9), id(0xa), 1_800_000_200))
            .unwrap();
        assert_eq!(store.count().unwrap(), 4);
    }
}
