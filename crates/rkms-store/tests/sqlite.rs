//! SQLite backend: durability, pragmas, schema migration, and the errors of bad databases.

mod common;

use std::sync::Arc;

use common::{activation, id, TempDir};
use rkms_store::{
    open_store, Activation, ClientFilter, ClientRecord, ClientStore, SqliteStore, StoreError,
    SCHEMA_VERSION,
};
use rusqlite::Connection;

/// The version-1 schema exactly as rkms shipped it (kept literal here on purpose, so a change
/// to migration 1 in the crate breaks this test).
const V1_DDL: &str = "CREATE TABLE clients (
    cmid TEXT NOT NULL, application_id TEXT NOT NULL, sku_id TEXT NOT NULL,
    kms_id TEXT NOT NULL, workstation TEXT NOT NULL, license_status INTEGER NOT NULL,
    protocol TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
    requests INTEGER NOT NULL, last_address TEXT NOT NULL, last_epid TEXT NOT NULL,
    PRIMARY KEY (cmid, application_id));";

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn new_database_is_wal_at_latest_version() {
    let dir = TempDir::new("fresh");
    let path = dir.join("clients.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(SCHEMA_VERSION, 9);
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    assert_eq!(store.migrated_from(), 0);
    assert_eq!(store.path(), path);
    assert_eq!(store.count().unwrap(), 0);
    let raw = Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let indexes: Vec<String> = raw
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "activations_time",
            "clients_active",
            "clients_expiry",
            "clients_family_health",
            "clients_key",
            "clients_last_seen",
            "clients_workstation"
        ]
    );
}

#[test]
fn reopen_keeps_data() {
    let dir = TempDir::new("reopen");
    let path = dir.join("clients.db");
    let a = Activation {
        is_vm: true,
        hresult: 0xC004_F042,
        ..activation(id(1), id(0xa), 1234)
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        store.record(&a).unwrap();
        store
            .record(&Activation {
                time: 1300,
                ..a.clone()
            })
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), SCHEMA_VERSION);
    let records = store.list(&ClientFilter::default()).unwrap();
    let expected = ClientRecord {
        requests: 2,
        last_seen: 1300,
        ..ClientRecord::from_activation(&a)
    };
    assert_eq!(records, [expected]);
}

#[test]
fn migrates_v1_database_keeping_rows() {
    let dir = TempDir::new("v1");
    let path = dir.join("clients.db");
    {
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch(V1_DDL).unwrap();
        raw.execute(
            "INSERT INTO clients VALUES (?1, ?2, ?3, ?4, 'OLD-PC', 1, '5.0', 100, 200, 7, \
             '198.51.100.4:1688', 'old-epid')",
            [
                id(1).to_string(),
                common::windows_app().to_string(),
                id(0x5c).to_string(),
                id(0xa).to_string(),
            ],
        )
        .unwrap();
        raw.pragma_update(None, "user_version", 1).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), 1);
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let records = store.list(&ClientFilter::default()).unwrap();
    assert_eq!(
        records,
        [ClientRecord {
            cmid: id(1),
            application_id: common::windows_app(),
            sku_id: id(0x5c),
            kms_id: id(0xa),
            workstation: "OLD-PC".into(),
            license_status: 1,
            grace_minutes: 0,
            is_vm: false,
            protocol: "5.0".into(),
            first_seen: 100,
            last_seen: 200,
            requests: 7,
            last_address: "198.51.100.4:1688".into(),
            last_epid: "old-epid".into(),
            last_hresult: 0,
            last_activated: Some(200),
        }]
    );
    // Migrated clients count, and new writes go to the same row.
    assert_eq!(store.distinct_clients_since(&id(0xa), 150).unwrap(), 1);
    store.record(&activation(id(1), id(0xa), 300)).unwrap();
    let r = &store.list(&ClientFilter::default()).unwrap()[0];
    assert_eq!(
        (r.requests, r.first_seen, r.last_seen, r.grace_minutes),
        (8, 100, 300, 43200)
    );
    drop(store);
    // Opening again does nothing more.
    assert_eq!(
        SqliteStore::open(&path).unwrap().migrated_from(),
        SCHEMA_VERSION
    );
}

/// Migration 3 exactly as rkms shipped it, applied on top of [`V2_DDL`].
const V3_DDL: &str = "CREATE TABLE activations (
        time INTEGER NOT NULL, cmid TEXT NOT NULL, application_id TEXT NOT NULL,
        sku_id TEXT NOT NULL, kms_id TEXT NOT NULL, workstation TEXT NOT NULL,
        license_status INTEGER NOT NULL, protocol TEXT NOT NULL, address TEXT NOT NULL,
        hresult INTEGER NOT NULL);
    CREATE INDEX activations_time ON activations (time);
    CREATE INDEX activations_cmid ON activations (cmid, time);";

/// A version-3 database (text GUIDs) holding what `reference` holds, written row by row
/// with the v3 SQL (events in the order `reference` recorded them).
fn v3_database(path: &std::path::Path, reference: &dyn ClientStore) {
    let raw = Connection::open(path).unwrap();
    raw.execute_batch(V1_DDL).unwrap();
    raw.execute_batch(V2_DDL).unwrap();
    raw.execute_batch(V3_DDL).unwrap();
    for r in reference.list(&ClientFilter::default()).unwrap() {
        raw.execute(
            "INSERT INTO clients (cmid, application_id, sku_id, kms_id, workstation, \
             license_status, protocol, first_seen, last_seen, requests, last_address, last_epid, \
             is_vm, grace_minutes, last_hresult) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            rusqlite::params![
                r.cmid.to_string(),
                r.application_id.to_string(),
                r.sku_id.to_string(),
                r.kms_id.to_string(),
                r.workstation,
                r.license_status,
                r.protocol,
                r.first_seen,
                r.last_seen,
                r.requests as i64,
                r.last_address,
                r.last_epid,
                r.is_vm,
                r.grace_minutes,
                r.last_hresult,
            ],
        )
        .unwrap();
    }
    for e in reference.events_page(0, u64::MAX).unwrap() {
        raw.execute(
            "INSERT INTO activations (time, cmid, application_id, sku_id, kms_id, workstation, \
             license_status, protocol, address, hresult) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                e.time,
                e.cmid.to_string(),
                e.application_id.to_string(),
                e.sku_id.to_string(),
                e.kms_id.to_string(),
                e.workstation,
                e.license_status,
                e.protocol,
                e.address,
                e.hresult,
            ],
        )
        .unwrap();
    }
    raw.pragma_update(None, "user_version", 3).unwrap();
}

#[test]
fn migrates_v3_database_keeping_every_record_and_event() {
    let dir = TempDir::new("v3");
    let path = dir.join("clients.db");
    // The reference: a v4 store fed the same requests (every field, ties, refusals, Office).
    let reference = SqliteStore::open(&dir.join("reference.db")).unwrap();
    common::fill(&reference);
    v3_database(&path, &reference);
    let before = std::fs::metadata(&path).unwrap().len();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), 3);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    assert_eq!(store.count().unwrap(), reference.count().unwrap());
    assert_eq!(
        store.events_page(0, u64::MAX).unwrap(),
        reference.events_page(0, u64::MAX).unwrap()
    );
    common::assert_same(&reference, &store);
    for since in [0, 1_799_971_200 + 86_400] {
        assert_eq!(
            store.daily_counts(since).unwrap(),
            reference.daily_counts(since).unwrap()
        );
    }
    // GUIDs as blobs and keys: the same data takes less room.
    drop(store);
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("VACUUM").unwrap();
    drop(raw);
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(after < before, "{after} bytes after, {before} before");
    // It keeps working: a new request folds into a migrated record.
    let store = SqliteStore::open(&path).unwrap();
    let old = store
        .list(&ClientFilter {
            cmid: Some(id(7)),
            application_id: Some(common::windows_app()),
            ..ClientFilter::default()
        })
        .unwrap();
    store
        .record(&activation(id(7), id(0xa), 1_900_000_000))
        .unwrap();
    let new = store
        .list(&ClientFilter {
            cmid: Some(id(7)),
            application_id: Some(common::windows_app()),
            ..ClientFilter::default()
        })
        .unwrap();
    assert_eq!(new[0].requests, old[0].requests + 1);
    assert_eq!(new[0].first_seen, old[0].first_seen);
}

#[test]
fn refuses_newer_schema_without_touching_it() {
    let dir = TempDir::new("too-new");
    let path = dir.join("clients.db");
    {
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    match SqliteStore::open(&path) {
        Err(StoreError::TooNew {
            found: 99,
            supported,
        }) => assert_eq!(supported, SCHEMA_VERSION),
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert!(matches!(
        SqliteStore::open_read_only(&path),
        Err(StoreError::TooNew { found: 99, .. })
    ));
    let mode: String = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "journal mode left alone");
    assert_eq!(user_version(&path), 99);
    let message = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(
        message.contains("99") && message.contains("newer"),
        "{message}"
    );
}

#[test]
fn refuses_garbage_file() {
    let dir = TempDir::new("garbage");
    let path = dir.join("clients.db");
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    match SqliteStore::open(&path) {
        Err(e @ StoreError::Open { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("not a database"), "{message}");
        }
        other => panic!("expected Open error, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "file left alone");
}

#[test]
fn refuses_foreign_sqlite_database() {
    let dir = TempDir::new("foreign");
    let path = dir.join("pykms_database.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE clients(clientMachineId TEXT, machineName TEXT)")
        .unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("not an rkms client database"), "{e}");
    assert_eq!(user_version(&path), 0);
}

#[test]
fn missing_directory_is_named() {
    let dir = TempDir::new("missing");
    let missing = dir.join("no/such");
    let path = missing.join("clients.db");
    for result in [SqliteStore::open(&path), SqliteStore::open_read_only(&path)] {
        match result {
            Err(e @ StoreError::MissingDirectory { .. }) => {
                let StoreError::MissingDirectory { directory, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(directory, &missing);
                assert!(
                    e.to_string().contains(&missing.display().to_string()),
                    "{e}"
                );
            }
            other => panic!("expected MissingDirectory, got {other:?}"),
        }
    }
    assert!(!missing.exists(), "the directory is not created");
    assert!(matches!(
        open_store(path.to_str().unwrap()),
        Err(StoreError::MissingDirectory { .. })
    ));
}

#[test]
fn path_that_is_a_directory_is_refused() {
    let dir = TempDir::new("is-dir");
    let e = SqliteStore::open(dir.path()).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&dir.path().display().to_string()),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn read_only_directory_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("read-only");
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let path = locked.join("clients.db");
    if std::fs::write(locked.join("probe"), b"x").is_ok() {
        // Root (as in CI containers) ignores directory permissions.
        eprintln!("note: running with privileges that ignore directory permissions; skipping the read-only directory assertion");
        return;
    }
    match SqliteStore::open(&path) {
        Err(e @ StoreError::Open { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(&locked.display().to_string()), "{message}");
        }
        other => panic!("expected Open error, got {other:?}"),
    }
}

#[test]
fn read_only_open() {
    let dir = TempDir::new("ro");
    let path = dir.join("clients.db");
    let a = activation(id(1), id(0xa), 50);
    SqliteStore::open(&path).unwrap().record(&a).unwrap();
    let ro = SqliteStore::open_read_only(&path).unwrap();
    assert_eq!(ro.schema_version(), SCHEMA_VERSION);
    assert_eq!(
        ro.list(&ClientFilter::default()).unwrap(),
        [ClientRecord::from_activation(&a)]
    );
    assert!(matches!(ro.record(&a), Err(StoreError::Sqlite(_))));
    assert!(matches!(
        ro.prune_older_than(i64::MAX),
        Err(StoreError::Sqlite(_))
    ));
    assert_eq!(ro.count().unwrap(), 1);
    assert_eq!(ro.history(&a.cmid, 10).unwrap().len(), 1);
    assert!(
        matches!(ro.probe_writable(), Err(StoreError::Sqlite(_))),
        "a read-only store is not writable"
    );

    let absent = dir.join("absent.db");
    let e = SqliteStore::open_read_only(&absent).unwrap_err();
    assert!(
        matches!(e, StoreError::Open { .. }) && e.to_string().contains("absent.db"),
        "{e}"
    );
    assert!(!absent.exists());

    let v1 = dir.join("v1.db");
    let raw = Connection::open(&v1).unwrap();
    raw.execute_batch(V1_DDL).unwrap();
    raw.pragma_update(None, "user_version", 1).unwrap();
    drop(raw);
    assert!(matches!(
        SqliteStore::open_read_only(&v1),
        Err(StoreError::NeedsMigration {
            found: 1,
            required: SCHEMA_VERSION,
            ..
        })
    ));
}

#[test]
fn open_store_spec() {
    let memory = open_store("none").unwrap();
    memory.record(&activation(id(1), id(0xa), 1)).unwrap();
    assert_eq!(memory.count().unwrap(), 1);

    let dir = TempDir::new("spec");
    let path = dir.join("clients.db");
    let store = open_store(path.to_str().unwrap()).unwrap();
    store.record(&activation(id(1), id(0xa), 1)).unwrap();
    drop(store);
    assert_eq!(SqliteStore::open(&path).unwrap().count().unwrap(), 1);
    assert!(matches!(open_store(""), Err(StoreError::Open { .. })));
}

#[test]
fn two_connections_share_a_file() {
    let dir = TempDir::new("shared");
    let path = dir.join("clients.db");
    let first: Arc<dyn ClientStore> = Arc::new(SqliteStore::open(&path).unwrap());
    let second: Arc<dyn ClientStore> = Arc::new(SqliteStore::open(&path).unwrap());
    let threads: Vec<_> = [first.clone(), second.clone()]
        .into_iter()
        .enumerate()
        .map(|(t, store)| {
            std::thread::spawn(move || {
                for n in 0..100u128 {
                    let batch = [activation(id(t as u128 * 1000 + n), id(0xa), n as i64)];
                    store.record_batch(&batch).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(first.count().unwrap(), 200);
    assert_eq!(second.distinct_clients_since(&id(0xa), 0).unwrap(), 200);
}

#[test]
fn migrated_and_fresh_schemas_match() {
    let dir = TempDir::new("schemas");
    let columns = |path: &std::path::Path| -> Vec<(String, String, i64, Option<String>, i64)> {
        let raw = Connection::open(path).unwrap();
        let mut stmt = raw.prepare("SELECT m.name || '.' || p.name, p.type, p.\"notnull\", p.dflt_value, p.pk FROM sqlite_schema AS m, pragma_table_info(m.name) AS p WHERE m.type = 'table' ORDER BY 1").unwrap();
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let fresh = dir.join("fresh.db");
    drop(SqliteStore::open(&fresh).unwrap());
    let old = dir.join("old.db");
    let raw = Connection::open(&old).unwrap();
    raw.execute_batch(V1_DDL).unwrap();
    raw.pragma_update(None, "user_version", 1).unwrap();
    drop(raw);
    drop(SqliteStore::open(&old).unwrap());
    assert_eq!(columns(&fresh), columns(&old));
    // clients (key and 16 fields), activations, guids, activation_days, and the search
    // index (FTS5: its table, 1 column, and shadow tables _config 2, _data 2, _docsize 3,
    // _idx 3), the records listed for it (search_pending, 2), and the seconds of each
    // record's events (client_events, 3).
    assert_eq!(
        columns(&fresh).len(),
        17 + 10 + 2 + 5 + 1 + 2 + 2 + 3 + 3 + 2 + 3
    );
}

/// Migration 2 exactly as rkms shipped it, applied on top of [`V1_DDL`].
const V2_DDL: &str = "ALTER TABLE clients ADD COLUMN is_vm INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE clients ADD COLUMN grace_minutes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE clients ADD COLUMN last_hresult INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX clients_kms_last_seen ON clients (kms_id, last_seen);";

#[test]
fn migrates_v2_database_keeping_rows_and_starting_the_history() {
    let dir = TempDir::new("v2");
    let path = dir.join("clients.db");
    {
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch(V1_DDL).unwrap();
        raw.execute_batch(V2_DDL).unwrap();
        raw.execute(
            "INSERT INTO clients (cmid, application_id, sku_id, kms_id, workstation, \
             license_status, protocol, first_seen, last_seen, requests, last_address, last_epid, \
             is_vm, grace_minutes, last_hresult) \
             VALUES (?1, ?2, ?3, ?4, 'V2-PC', 1, '6.0', 100, 200, 3, '192.0.2.9', 'v2-epid', 1, \
             43200, 0)",
            [
                id(2).to_string(),
                common::windows_app().to_string(),
                id(0x5c).to_string(),
                id(0xa).to_string(),
            ],
        )
        .unwrap();
        raw.pragma_update(None, "user_version", 2).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), 2);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let before = store.list(&ClientFilter::default()).unwrap();
    assert_eq!(before.len(), 1);
    let r = &before[0];
    assert_eq!(
        (r.workstation.as_str(), r.requests, r.is_vm, r.grace_minutes),
        ("V2-PC", 3, true, 43200)
    );
    // The history starts empty: nothing before the migration is invented.
    assert!(store.history(&id(2), 10).unwrap().is_empty());
    assert_eq!(store.activations_since(i64::MIN).unwrap(), 0);
    // A new request updates the migrated record and starts its history.
    store.record(&activation(id(2), id(0xa), 300)).unwrap();
    let r = &store.list(&ClientFilter::default()).unwrap()[0];
    assert_eq!((r.requests, r.first_seen, r.last_seen), (4, 100, 300));
    let history = store.history(&id(2), 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].time, 300);
    drop(store);
    assert_eq!(
        SqliteStore::open(&path).unwrap().migrated_from(),
        SCHEMA_VERSION
    );
}

#[test]
fn history_survives_reopen_and_batches_are_atomic() {
    let dir = TempDir::new("history-durable");
    let path = dir.join("clients.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .record_batch(&[
                activation(id(1), id(0xa), 10),
                activation(id(2), id(0xa), 20),
            ])
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.activations_since(i64::MIN).unwrap(), 2);
    // A batch whose second write fails leaves neither its records nor its events.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON activations \
             WHEN NEW.workstation = 'BAD' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let bad = Activation {
        workstation: "BAD".into(),
        ..activation(id(4), id(0xa), 40)
    };
    assert!(store
        .record_batch(&[activation(id(3), id(0xa), 30), bad])
        .is_err());
    assert_eq!(store.count().unwrap(), 2);
    assert_eq!(store.activations_since(i64::MIN).unwrap(), 2);
    store.probe_writable().unwrap();
}

/// Every filter, search, sort and page is answered by SQL exactly as the in-memory store
/// (the reference semantics, in Rust) answers it, and counted alike.
#[test]
fn queries_in_sql_match_the_reference_semantics() {
    use rkms_store::{ClientSort, IdSet, MemoryStore, Search};
    let dir = TempDir::new("queries");
    let sqlite = SqliteStore::open(&dir.join("clients.db")).unwrap();
    let memory = MemoryStore::new();
    common::fill(&sqlite);
    common::fill(&memory);
    let sorts = [
        ClientSort::LastSeen,
        ClientSort::FirstSeen,
        ClientSort::Workstation,
        ClientSort::Cmid,
        ClientSort::Requests,
        ClientSort::Address,
        ClientSort::Protocol,
        ClientSort::Status,
        ClientSort::Sku(vec![id(0x5c), id(0x99)]),
    ];
    let filters = [
        ClientFilter::default(),
        ClientFilter {
            activated: Some(false),
            ..ClientFilter::default()
        },
        ClientFilter {
            applications: IdSet::In(vec![common::office_app()]),
            kms_ids: IdSet::NotIn(vec![id(0xa)]),
            ..ClientFilter::default()
        },
        ClientFilter {
            applications: IdSet::In(vec![]),
            ..ClientFilter::default()
        },
        ClientFilter {
            search: Some(Search {
                text: "офис-1".into(),
                ..Search::default()
            }),
            ..ClientFilter::default()
        },
        ClientFilter {
            search: Some(Search {
                text: "earl".into(),
                kms_ids: vec![id(0xb)],
                ..Search::default()
            }),
            since: Some(1_799_971_200),
            ..ClientFilter::default()
        },
        ClientFilter {
            // LIKE's wildcards are plain text in a search.
            search: Some(Search {
                text: "pc-1111000_".into(),
                ..Search::default()
            }),
            ..ClientFilter::default()
        },
        ClientFilter {
            search: Some(Search {
                text: "Pc-1111000".into(),
                ..Search::default()
            }),
            ..ClientFilter::default()
        },
        ClientFilter {
            // A CMID fragment, hyphens ignored.
            search: Some(Search {
                text: "0000-0000000000".into(),
                ..Search::default()
            }),
            ..ClientFilter::default()
        },
    ];
    for filter in &filters {
        assert_eq!(
            sqlite.count_matching(filter).unwrap(),
            memory.count_matching(filter).unwrap(),
            "{filter:?}"
        );
        for sort in &sorts {
            for ascending in [false, true] {
                for (offset, limit) in [(None, None), (Some(3), Some(7))] {
                    let f = ClientFilter {
                        sort: sort.clone(),
                        ascending,
                        offset,
                        limit,
                        ..filter.clone()
                    };
                    assert_eq!(sqlite.list(&f).unwrap(), memory.list(&f).unwrap(), "{f:?}");
                }
            }
        }
    }
    let count = |text: &str| {
        sqlite
            .count_matching(&ClientFilter {
                search: Some(Search {
                    text: text.into(),
                    ..Search::default()
                }),
                ..ClientFilter::default()
            })
            .unwrap()
            .records
    };
    assert_eq!(count("pc-1111000_"), 0);
    assert!(count("Pc-1111000") > 0);
    let n = sqlite.count_matching(&ClientFilter::default()).unwrap();
    assert_eq!((n.records, n.machines), (400, 300));
    // Pool counts, capped: a skip scan over the KMS IDs, each count stopped at the cap.
    for since in [i64::MIN, 1_799_971_200 + 40 * 60] {
        let exact = memory.client_counts_since(since).unwrap();
        assert_eq!(sqlite.client_counts_capped(since, u64::MAX).unwrap(), exact);
        let capped: Vec<(uuid::Uuid, u64)> = exact.iter().map(|(k, n)| (*k, (*n).min(5))).collect();
        assert_eq!(sqlite.client_counts_capped(since, 5).unwrap(), capped);
        assert_eq!(memory.client_counts_capped(since, 5).unwrap(), capped);
    }
    let mut active = sqlite.active_clients(i64::MIN, 3).unwrap();
    let mut reference = memory.active_clients(i64::MIN, 3).unwrap();
    active.sort();
    reference.sort();
    assert_eq!(active.len(), 4 * 3);
    assert_eq!(
        active.iter().map(|a| a.0).collect::<Vec<_>>(),
        reference.iter().map(|a| a.0).collect::<Vec<_>>()
    );
}

/// Retention deletes in batches (the oldest first) and keeps the per-day counts; pruning by
/// workstation removes that name's records and events only.
#[test]
fn pruning_in_batches_and_by_workstation() {
    let dir = TempDir::new("prune");
    let store = SqliteStore::open(&dir.join("clients.db")).unwrap();
    common::fill(&store);
    let days = store.daily_counts(i64::MIN).unwrap();
    let cutoff = 1_799_971_200 + 86_400;
    let old_events =
        store.activations_since(i64::MIN).unwrap() - store.activations_since(cutoff).unwrap();
    assert!(old_events > 100);
    let mut pruned = 0;
    loop {
        let n = store.prune_history(cutoff, 100).unwrap();
        assert!(n <= 100);
        pruned += n;
        if n < 100 {
            break;
        }
    }
    assert_eq!(pruned, old_events);
    assert_eq!(
        store.activations_since(i64::MIN).unwrap(),
        store.activations_since(cutoff).unwrap()
    );
    assert_eq!(
        store.daily_counts(i64::MIN).unwrap(),
        days,
        "per-day counts stay"
    );
    let before = store.count().unwrap();
    let stale = store
        .count_matching(&ClientFilter {
            since: Some(cutoff),
            ..ClientFilter::default()
        })
        .unwrap()
        .records;
    assert_eq!(store.prune_clients(cutoff, 50).unwrap(), 50);
    assert_eq!(store.count().unwrap(), before - 50);
    while store.prune_clients(cutoff, 50).unwrap() == 50 {}
    assert_eq!(store.count().unwrap(), stale);

    store
        .record(&Activation {
            workstation: "Bench-Host".into(),
            ..activation(id(5000), id(0xa), cutoff + 10)
        })
        .unwrap();
    let others = store.count().unwrap() - 1;
    assert_eq!(store.prune_workstation("bench-host").unwrap(), (1, 1));
    assert_eq!(store.count().unwrap(), others);
    assert!(store.history(&id(5000), 10).unwrap().is_empty());
}

#[test]
fn commits_leave_the_checkpoint_to_a_thread_of_its_own() {
    let dir = TempDir::new("checkpoint");
    let path = dir.join("clients.db");
    let store = SqliteStore::open(&path).unwrap();
    // Start from a database whose log is copied (the migration's pages).
    {
        let conn = Connection::open(&path).unwrap();
        let (log, copied): (i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(log, copied);
        drop(conn);
    }
    let before = std::fs::metadata(&path).unwrap().len();
    let batch: Vec<_> = (0..3000u128)
        .map(|n| activation(id(n + 1), id(0xa), 1_700_000_000 + n as i64))
        .collect();
    for chunk in batch.chunks(100) {
        store.record_batch(chunk).unwrap();
    }
    // The background thread copies the log into the database within a few intervals.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now > before + 100_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {now} bytes (from {before}): nothing checkpointed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.count().unwrap(), 3000);
}

/// The checkpoint sequence number in the header of the write-ahead log at `wal` (bumped each
/// time the log starts over), if the log has a header.
fn log_sequence(wal: &std::path::Path) -> Option<u32> {
    let bytes = std::fs::read(wal).ok()?;
    let field = bytes.get(12..16)?;
    Some(u32::from_be_bytes(field.try_into().ok()?))
}

#[test]
fn a_steady_stream_of_commits_does_not_grow_the_log_without_bound() {
    let dir = TempDir::new("log-restart");
    let path = dir.join("clients.db");
    let wal = dir.join("clients.db-wal");
    let store = SqliteStore::open(&path).unwrap();
    store
        .record(&activation(id(1), id(0xa), 1_700_000_000))
        .unwrap();
    let first = log_sequence(&wal).expect("a log header");
    // Commits back to back from three threads, never leaving the passive checkpoint a moment
    // with the whole log copied: the log must still start over once it holds more than
    // RESTART_FRAMES.
    let frame = 4096 + 24;
    let limit = rkms_store::checkpoint::RESTART_FRAMES as u64 * frame;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let written = std::sync::atomic::AtomicU64::new(1);
    let restarted = std::thread::scope(|scope| {
        for t in 0..3u128 {
            let (store, stop, written) = (&store, &stop, &written);
            scope.spawn(move || {
                let mut n = 0u128;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let batch: Vec<_> = (0..20)
                        .map(|_| {
                            n += 1;
                            activation(id((t + 1) << 64 | n), id(0xa), 1_700_000_000)
                        })
                        .collect();
                    store.record_batch(&batch).unwrap();
                    written.fetch_add(20, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        // Until the log has started over, or has grown to 6 times the limit (without the
        // restart it grows on: 135 MB in 5 s on a 2-CPU machine).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let restarted = loop {
            if log_sequence(&wal).is_some_and(|s| s != first) {
                break true;
            }
            let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
            if size > 6 * limit || std::time::Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        restarted
    });
    let size = std::fs::metadata(&wal).unwrap().len();
    assert!(restarted, "the log never started over: {size} bytes");
    drop(store);
    let n = written.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(SqliteStore::open(&path).unwrap().count().unwrap(), n);
}

/// Turns a database of the current schema back into the one before the deferred search
/// migration (schema 6): the records listed for the index are indexed, the list goes, and
/// the triggers of schema 5 (which index in the write itself) come back.
/// (Assumes that the migrations after the listing-triggers one are those
/// [`downgrade_to_v8`] undoes.)
fn downgrade_to_v6(path: &std::path::Path) {
    let store = SqliteStore::open(path).unwrap();
    while store.upkeep(true).unwrap() {}
    drop(store);
    downgrade_to_v8(path);
    let v5 =
        rkms_store::schema::MIGRATIONS[rkms_store::schema::SEARCH_INDEX_VERSION as usize - 1].sql;
    let triggers = &v5[v5.find("CREATE TRIGGER").unwrap()..];
    let raw = Connection::open(path).unwrap();
    raw.execute_batch(
        "DROP TRIGGER clients_search_insert;
         DROP TRIGGER clients_search_update;
         DROP TRIGGER clients_search_delete;
         DROP TABLE search_pending;",
    )
    .unwrap();
    raw.execute_batch(triggers).unwrap();
    raw.pragma_update(
        None,
        "user_version",
        rkms_store::schema::DEFERRED_SEARCH_VERSION - 1,
    )
    .unwrap();
}

/// A schema-6 database with records (its search index written by the triggers of schema 5)
/// is migrated keeping every record and its index: searches answer as before and nothing is
/// listed; later writes are listed, found at once and indexed when the store catches up.
#[test]
fn migrates_v6_database_deferring_the_search_index() {
    use rkms_store::schema::DEFERRED_SEARCH_VERSION;
    let dir = TempDir::new("v6");
    let path = dir.join("clients.db");
    let store = SqliteStore::open(&path).unwrap();
    common::fill(&store);
    drop(store);
    downgrade_to_v6(&path);
    // Written under schema 6: indexed by its triggers in the write.
    let raw = Connection::open(&path).unwrap();
    let index_rows = |raw: &Connection| -> i64 {
        raw.query_row(
            "SELECT COUNT(*) FROM clients_search WHERE clients_search MATCH '\"ФИС\"'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = index_rows(&raw);
    assert_eq!(before, 100);
    drop(raw);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), DEFERRED_SEARCH_VERSION - 1);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let reference = SqliteStore::open(&dir.join("reference.db")).unwrap();
    common::fill(&reference);
    assert_eq!(
        store.list(&ClientFilter::default()).unwrap(),
        reference.list(&ClientFilter::default()).unwrap(),
        "every record kept"
    );
    let raw = Connection::open(&path).unwrap();
    let listed = |raw: &Connection| -> i64 {
        raw.query_row("SELECT COUNT(*) FROM search_pending", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(listed(&raw), 0);
    assert_eq!(index_rows(&raw), before, "the index was kept");
    let search = |text: &str| searched(&store, text).len();
    let offices = search("ОФИС-");
    assert!(offices > 0);
    // A new record after the migration: listed, found, indexed later.
    store
        .record(&Activation {
            workstation: "ОФИС-NEW".into(),
            ..activation(id(9_999), id(0xa), 1_800_000_000)
        })
        .unwrap();
    assert_eq!(listed(&raw), 1);
    assert_eq!(search("ОФИС-"), offices + 1);
    while store.upkeep(true).unwrap() {}
    assert_eq!(listed(&raw), 0);
    assert_eq!(search("ОФИС-"), offices + 1);
}

/// Turns a database of the current schema back into the one before the `last_activated`
/// migration (schema 5): without `clients.last_activated` and its indexes.
fn downgrade_to_v4(path: &std::path::Path) {
    downgrade_to_v6(path);
    let raw = Connection::open(path).unwrap();
    raw.execute_batch(
        "DROP INDEX clients_expiry;
         DROP INDEX clients_family_health;
         ALTER TABLE clients DROP COLUMN last_activated;",
    )
    .unwrap();
    raw.pragma_update(
        None,
        "user_version",
        rkms_store::schema::LAST_ACTIVATED_VERSION - 1,
    )
    .unwrap();
}

#[test]
fn migrates_v4_database_deriving_the_last_activation() {
    use rkms_store::schema::LAST_ACTIVATED_VERSION;
    let dir = TempDir::new("v4");
    let path = dir.join("clients.db");
    // The reference: a current store fed the same requests.
    let reference = SqliteStore::open(&dir.join("reference.db")).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let refused = |a: Activation| Activation {
        hresult: 0xC004_F038,
        ..a
    };
    for s in [&reference, &store] {
        common::fill(s);
        // Activated, then refused: the history knows the activation.
        s.record(&activation(id(500), id(0xa), 1_800_000_000))
            .unwrap();
        s.record(&refused(activation(id(500), id(0xa), 1_800_000_100)))
            .unwrap();
        // Activated, refused, and the history of the activation pruned: unknown.
        s.record(&activation(id(501), id(0xa), 1_700_000_000))
            .unwrap();
        s.record(&refused(activation(id(501), id(0xa), 1_800_000_200)))
            .unwrap();
    }
    drop(store);
    let raw = Connection::open(&path).unwrap();
    raw.execute("DELETE FROM activations WHERE time = 1700000000", [])
        .unwrap();
    drop(raw);
    downgrade_to_v4(&path);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), LAST_ACTIVATED_VERSION - 1);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let records = store.list(&ClientFilter::default()).unwrap();
    let mut expected = reference.list(&ClientFilter::default()).unwrap();
    assert_eq!(records.len(), expected.len(), "every record kept");
    for r in &mut expected {
        if r.cmid == id(501) {
            assert_eq!(r.last_activated, Some(1_700_000_000));
            r.last_activated = None;
        }
    }
    assert_eq!(records, expected);
    let by_cmid = |n: u128| records.iter().find(|r| r.cmid == id(n)).unwrap();
    assert_eq!(by_cmid(500).last_activated, Some(1_800_000_000));
    assert_eq!(by_cmid(501).last_activated, None);
    // Office records whose only request was refused were never activated.
    assert!(records
        .iter()
        .filter(|r| r.last_hresult != 0 && r.cmid != id(500))
        .all(|r| r.last_activated.is_none()));
    assert_eq!(
        store.events_page(0, u64::MAX).unwrap().len(),
        reference.events_page(0, u64::MAX).unwrap().len() - 1
    );
    // New requests keep it up to date.
    store
        .record(&activation(id(501), id(0xa), 1_800_000_300))
        .unwrap();
    let r = &store
        .list(&ClientFilter {
            cmid: Some(id(501)),
            ..ClientFilter::default()
        })
        .unwrap()[0];
    assert_eq!(r.last_activated, Some(1_800_000_300));
    drop(store);
    assert_eq!(
        SqliteStore::open(&path).unwrap().migrated_from(),
        SCHEMA_VERSION
    );
}

/// The workstation names of the records a search for `text` finds.
fn searched(store: &SqliteStore, text: &str) -> Vec<String> {
    store
        .list(&ClientFilter {
            search: Some(rkms_store::Search {
                text: text.into(),
                ..rkms_store::Search::default()
            }),
            ..ClientFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| r.workstation)
        .collect()
}

/// Turns a database of the current schema back into schema 7: the triggers that list a
/// record for the search index are those of schema 7 again.
fn downgrade_to_v7(path: &std::path::Path) {
    downgrade_to_v8(path);
    let v7 = rkms_store::schema::MIGRATIONS
        [rkms_store::schema::DEFERRED_SEARCH_VERSION as usize - 1]
        .sql;
    let triggers = &v7[v7.find("CREATE TRIGGER clients_search_insert").unwrap()
        ..v7.find("CREATE TRIGGER clients_search_delete").unwrap()];
    let raw = Connection::open(path).unwrap();
    raw.execute_batch(
        "DROP TRIGGER clients_search_insert;
         DROP TRIGGER clients_search_update;",
    )
    .unwrap();
    raw.execute_batch(triggers).unwrap();
    raw.pragma_update(
        None,
        "user_version",
        rkms_store::schema::LISTING_TRIGGERS_VERSION - 1,
    )
    .unwrap();
}

/// Whether a trigger that lists records for the search index runs through a temporary table
/// (the `OpenEphemeral` opcode in the plan of its statement, with `new.id` = 1): each write
/// of a record then creates and frees one.
fn listing_uses_temporary_table(raw: &Connection) -> bool {
    ["clients_search_insert", "clients_search_update"]
        .iter()
        .any(|name| {
            let sql: String = raw
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .unwrap();
            let body = &sql[sql.find("BEGIN").unwrap() + "BEGIN".len()..sql.rfind("END").unwrap()];
            let body = body.trim().trim_end_matches(';').replace("new.id", "1");
            let mut plan = raw.prepare(&format!("EXPLAIN {body}")).unwrap();
            let opcodes: Vec<String> = plan
                .query_map([], |r| r.get::<_, String>(1))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(opcodes.iter().any(|o| o == "Insert"), "{name}: {opcodes:?}");
            opcodes.iter().any(|o| o == "OpenEphemeral")
        })
}

/// A schema-7 database, some of its records listed for the search index and some indexed,
/// is migrated keeping every record, the list and the index; its triggers then list records
/// without a temporary table, and renewals of listed and indexed records are found by their
/// new names at once and after the index catches up.
#[test]
fn migrates_v7_database_listing_records_without_a_temporary_table() {
    use rkms_store::schema::LISTING_TRIGGERS_VERSION;
    let dir = TempDir::new("v7");
    let path = dir.join("clients.db");
    let store = SqliteStore::open(&path).unwrap();
    common::fill(&store);
    while store.upkeep(true).unwrap() {}
    // Listed, not yet indexed.
    for n in 0..5u128 {
        store
            .record(&Activation {
                workstation: format!("LISTED-{n}"),
                ..activation(id(2_000 + n), id(0xa), 1_800_000_000)
            })
            .unwrap();
    }
    drop(store);
    downgrade_to_v7(&path);
    let raw = Connection::open(&path).unwrap();
    assert!(
        listing_uses_temporary_table(&raw),
        "schema 7's triggers read the table they write"
    );
    let listed = |raw: &Connection| -> i64 {
        raw.query_row("SELECT COUNT(*) FROM search_pending", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(listed(&raw), 5);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), LISTING_TRIGGERS_VERSION - 1);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    assert!(!listing_uses_temporary_table(&raw));
    assert_eq!(listed(&raw), 5, "the list was kept");
    let reference = SqliteStore::open(&dir.join("reference.db")).unwrap();
    common::fill(&reference);
    for n in 0..5u128 {
        reference
            .record(&Activation {
                workstation: format!("LISTED-{n}"),
                ..activation(id(2_000 + n), id(0xa), 1_800_000_000)
            })
            .unwrap();
    }
    assert_eq!(
        store.list(&ClientFilter::default()).unwrap(),
        reference.list(&ClientFilter::default()).unwrap(),
        "every record kept"
    );
    let search = |text: &str| searched(&store, text);
    assert_eq!(search("LISTED-").len(), 5);
    // Renamed twice in one batch: a listed record (id 2,000) and an indexed one (id 7); and a
    // new record. The upsert that fires the update trigger must not turn "already listed"
    // into an error.
    let renamed = |n: u128, name: &str, t: i64| Activation {
        workstation: name.into(),
        ..activation(id(n), id(0xa), t)
    };
    store
        .record_batch(&[
            renamed(2_000, "RENAMED-A", 1_800_000_100),
            renamed(7, "RENAMED-B", 1_800_000_100),
            renamed(7, "RENAMED-C", 1_800_000_200),
            renamed(2_000, "RENAMED-D", 1_800_000_200),
            renamed(3_000, "NEWCOMER", 1_800_000_200),
        ])
        .unwrap();
    store
        .record(&renamed(7, "RENAMED-E", 1_800_000_300))
        .unwrap();
    let check = |when: &str| {
        assert_eq!(search("RENAMED-D"), ["RENAMED-D"], "{when}");
        assert_eq!(search("RENAMED-E"), ["RENAMED-E"], "{when}");
        assert_eq!(search("NEWCOMER"), ["NEWCOMER"], "{when}");
        assert!(search("RENAMED-A").is_empty(), "{when}");
        assert!(search("RENAMED-C").is_empty(), "{when}");
        assert_eq!(search("LISTED-").len(), 4, "{when}");
    };
    check("listed");
    // The indexed record (7) is listed as one whose older text leaves the index.
    let indexed: i64 = raw
        .query_row(
            "SELECT p.indexed FROM search_pending p JOIN clients c ON c.id = p.id \
             WHERE c.workstation = 'RENAMED-E'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 1);
    while store.upkeep(true).unwrap() {}
    assert_eq!(listed(&raw), 0);
    check("indexed");
    // The index itself holds the current names only (a trigram of each name, the end of
    // its prefix and its letter: the index's detail level answers single trigrams).
    let in_index = |trigram: &str| -> i64 {
        raw.query_row(
            "SELECT COUNT(*) FROM clients_search WHERE clients_search MATCH ?1",
            [format!("\"{trigram}\"")],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(in_index("D-D"), 1);
    assert_eq!(in_index("D-E"), 1);
    assert_eq!(in_index("D-A") + in_index("D-B") + in_index("D-C"), 0);
}

/// Turns a database of the current schema back into schema 8: the history indexed by CMID
/// (`activations_cmid`) instead of `client_events`.
/// (Assumes that the client-events migration is the latest one.)
fn downgrade_to_v8(path: &std::path::Path) {
    let raw = Connection::open(path).unwrap();
    raw.execute_batch(
        "DROP TRIGGER activations_forget;
         DROP TRIGGER clients_forget;
         DROP TABLE client_events;
         CREATE INDEX activations_cmid ON activations (cmid, time);",
    )
    .unwrap();
    raw.pragma_update(
        None,
        "user_version",
        rkms_store::schema::CLIENT_EVENTS_VERSION - 1,
    )
    .unwrap();
}

/// `client_events` holds exactly the (record, second, number of events) of the history's
/// events whose record exists.
fn assert_client_events_match(path: &std::path::Path) {
    let raw = Connection::open(path).unwrap();
    let pairs = |sql: &str| -> Vec<(i64, i64, i64)> {
        raw.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let held = pairs("SELECT client, time, events FROM client_events ORDER BY 1, 2");
    let derived = pairs(
        "SELECT c.id, a.time, COUNT(*) FROM activations a \
         JOIN clients c ON c.cmid = a.cmid AND c.app = a.app GROUP BY 1, 2 ORDER BY 1, 2",
    );
    assert!(!derived.is_empty());
    assert_eq!(held, derived);
}

/// A schema-8 database (history indexed by CMID) is migrated keeping every record and event:
/// each client's history reads the same through `client_events`, which matches the history;
/// pruning events or records keeps it matching, and the history of a pruned second or
/// record is gone.
#[test]
fn migrates_v8_database_finding_history_through_client_events() {
    use rkms_store::schema::CLIENT_EVENTS_VERSION;
    let dir = TempDir::new("v8");
    let path = dir.join("clients.db");
    let store = SqliteStore::open(&path).unwrap();
    common::fill(&store);
    // Several events of one record in one second, and in others; one CMID, two applications.
    let twice = id(700);
    for t in [
        1_800_000_000,
        1_800_000_000,
        1_800_000_000,
        1_800_000_500,
        1_800_001_000,
    ] {
        store.record(&activation(twice, id(0xa), t)).unwrap();
    }
    store
        .record(&Activation {
            application_id: common::office_app(),
            ..activation(twice, id(0xb), 1_800_000_000)
        })
        .unwrap();
    store
        .record(&Activation {
            workstation: "GONE-1".into(),
            ..activation(id(800), id(0xa), 1_800_003_000)
        })
        .unwrap();
    let cmids: Vec<uuid::Uuid> = (0..300u128).map(id).chain([twice, id(800)]).collect();
    let histories = |store: &SqliteStore| -> Vec<Vec<rkms_store::ActivationEvent>> {
        cmids
            .iter()
            .map(|c| store.history(c, 1_000).unwrap())
            .collect()
    };
    let before = histories(&store);
    assert_eq!(before[before.len() - 2].len(), 6);
    assert!(before.iter().all(|h| !h.is_empty()));
    let events = store.events_page(0, u64::MAX).unwrap();
    drop(store);
    downgrade_to_v8(&path);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), CLIENT_EVENTS_VERSION - 1);
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    assert_eq!(histories(&store), before);
    assert_eq!(
        store.events_page(0, u64::MAX).unwrap(),
        events,
        "every event kept"
    );
    assert_client_events_match(&path);
    // Written after the migration: linked as written.
    store
        .record(&activation(twice, id(0xa), 1_800_002_000))
        .unwrap();
    assert_eq!(store.history(&twice, 1_000).unwrap().len(), 7);
    assert_client_events_match(&path);
    // Pruning the history: the second at which `twice` had three events goes with the last.
    let pruned = store.prune_history(1_800_000_001, 10_000).unwrap();
    assert!(pruned >= 4, "{pruned}");
    let left = store.history(&twice, 1_000).unwrap();
    assert_eq!(
        left.iter().map(|e| e.time).collect::<Vec<_>>(),
        [1_800_002_000, 1_800_001_000, 1_800_000_500]
    );
    assert_client_events_match(&path);
    // Pruning records by workstation: their seconds go, other records keep theirs.
    let (records, _) = store.prune_workstation("GONE-1").unwrap();
    assert_eq!(records, 1);
    assert!(store.history(&id(800), 1_000).unwrap().is_empty());
    assert_eq!(store.history(&twice, 1_000).unwrap(), left);
    assert_client_events_match(&path);
}
