//! The indexed search and the capped counts: every backend (memory, SQLite with its FTS5
//! trigram index, PostgreSQL with its `pg_trgm` index when `RKMS_TEST_POSTGRES` is set)
//! answers a search exactly as the reference semantics ([`Search::matches`]) do, whether the
//! search is answered from the index or by reading the records; the index follows renames,
//! new addresses and deletions but not plain renewals; counts of filtered lists stop at
//! [`MATCH_COUNT_LIMIT`]; and a schema-4 database is migrated keeping every record,
//! searchable.

mod common;

use common::{activation, id, PgSchema, TempDir};
use rkms_store::{
    address_host, Activation, ClientFilter, ClientRecord, ClientSort, ClientStore, MemoryStore,
    PgStore, Search, SqliteStore, MATCH_COUNT_LIMIT,
};
use rusqlite::Connection;
use uuid::Uuid;

const DAY: i64 = 1_799_971_200;

fn search(text: &str) -> ClientFilter {
    ClientFilter {
        search: Some(Search {
            text: text.into(),
            ..Search::default()
        }),
        ..ClientFilter::default()
    }
}

/// Records with every kind of searched text: IPv4 and IPv6 addresses with ports, addresses
/// without, ePIDs, names in several cases and scripts, LIKE wildcards, quotes.
fn varied() -> Vec<Activation> {
    let names = [
        "PC-0123456",
        "pc-0123999",
        "Office-Laptop",
        "WS_100%",
        "o\"quote\"x",
        "ОФИС-1",
        "build-01234",
        "ab",
    ];
    let addresses = [
        "192.0.2.7:50123",
        "[2001:db8::7]:50123",
        "10.1.2.3",
        "2001:db8::1",
        "198.51.100.12:1688",
        "",
    ];
    let epids = [
        "06401-00206-551-070254-03-1033-20348.0000-1202026",
        "03612-00206-471-000000-03-1049-9600.0000-0012020",
        "",
    ];
    (0..120u128)
        .map(|n| Activation {
            workstation: names[n as usize % names.len()].into(),
            address: addresses[n as usize % addresses.len()].into(),
            epid: epids[n as usize % epids.len()].into(),
            ..activation(
                Uuid::from_u128(n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)),
                id(0xa + n % 3),
                DAY + n as i64 * 60,
            )
        })
        .collect()
}

/// Searches covering index answers, scans, CMID prefixes and short texts.
fn texts(records: &[ClientRecord]) -> Vec<String> {
    let mut out: Vec<String> = [
        "pc-0123",
        "PC-0123",
        "0123",
        "laptop",
        "office",
        "192.0.2",
        "2.7",
        ":50123",
        "50123",
        "2001:db8::7",
        "db8",
        "10.1.2.3",
        "06401-00206",
        "1049",
        "_100%",
        "100%",
        "\"quote\"",
        "офис",
        "ОФИС",
        "ab",
        "a",
        "zz",
        "nothing-matches-this",
        "-",
        // Hostile texts: quotes, a NUL, wildcards, blanks, FTS5 query syntax.
        "\"\"\"",
        "a\u{0}bcd",
        "%%%",
        "   ",
        "pc* OR NEAR(x)",
        "(((",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // CMID prefixes: 1, 2, 7 digits, one with hyphens, a whole CMID.
    let cmid = records[5].cmid.simple().to_string();
    let hyphenated = records[5].cmid.hyphenated().to_string();
    out.extend([
        cmid[..1].to_owned(),
        cmid[..2].to_owned(),
        cmid[..7].to_owned(),
        hyphenated[..13].to_owned(),
        hyphenated.to_uppercase(),
        cmid[10..16].to_owned(),
    ]);
    out
}

/// The records of `all` matching `filter`, in its order and page (the reference).
fn reference(all: &[ClientRecord], filter: &ClientFilter) -> Vec<ClientRecord> {
    let mut out: Vec<ClientRecord> = all.iter().filter(|r| filter.matches(r)).cloned().collect();
    out.sort_by(|a, b| filter.compare(a, b));
    let offset = filter.offset.unwrap_or(0) as usize;
    let limit = filter.limit.map_or(usize::MAX, |l| l as usize);
    out.into_iter().skip(offset).take(limit).collect()
}

/// Every search of [`texts`], with several sorts and pages, gives the reference's records
/// and count in `store`.
fn assert_searches_match(store: &dyn ClientStore, label: &str) {
    let all = store.list(&ClientFilter::default()).unwrap();
    assert!(!all.is_empty());
    for text in texts(&all) {
        for sort in [
            ClientSort::LastSeen,
            ClientSort::Workstation,
            ClientSort::Cmid,
        ] {
            for (offset, limit) in [(None, None), (Some(2), Some(5))] {
                let f = ClientFilter {
                    sort: sort.clone(),
                    offset,
                    limit,
                    ..search(&text)
                };
                assert_eq!(
                    store.list(&f).unwrap(),
                    reference(&all, &f),
                    "{label}: {text:?} {sort:?}"
                );
            }
        }
        let f = search(&text);
        let expected = reference(&all, &f);
        let count = store.count_matching(&f).unwrap();
        assert_eq!(
            store.list_and_count(&f).unwrap(),
            (expected.clone(), count),
            "{label}: list_and_count of {text:?}"
        );
        assert_eq!(
            count.records,
            expected.len() as u64,
            "{label}: count of {text:?}"
        );
        assert!(!count.records_capped);
    }
}

#[test]
fn address_host_drops_the_port_only() {
    assert_eq!(address_host("192.0.2.7:50123"), "192.0.2.7");
    assert_eq!(address_host("[2001:db8::7]:50123"), "2001:db8::7");
    assert_eq!(address_host("2001:db8::1"), "2001:db8::1");
    assert_eq!(address_host("10.1.2.3"), "10.1.2.3");
    assert_eq!(address_host("[2001:db8::1"), "[2001:db8::1");
    assert_eq!(address_host(""), "");
}

#[test]
fn cmid_prefixes_are_key_ranges() {
    let s = |t: &str| Search {
        text: t.into(),
        ..Search::default()
    };
    let (from, to) = s("0a1").cmid_range().unwrap();
    assert_eq!(from[..2], [0x0a, 0x10]);
    assert_eq!(to.unwrap()[..2], [0x0a, 0x20]);
    let (from, to) = s("FF").cmid_range().unwrap();
    assert_eq!((from[0], to), (0xff, None));
    let (_, to) = s("1f").cmid_range().unwrap();
    assert_eq!(to.unwrap()[0], 0x20);
    assert!(s("xyz").cmid_range().is_none());
    assert!(s("--").cmid_range().is_none());
    assert_eq!(s("AB-CD").cmid_prefix().as_deref(), Some("abcd"));
}

#[test]
fn sqlite_and_memory_searches_match_the_reference() {
    let dir = TempDir::new("search-equal");
    let sqlite = SqliteStore::open(&dir.join("clients.db")).unwrap();
    let memory = MemoryStore::new();
    for store in [&sqlite as &dyn ClientStore, &memory] {
        store.record_batch(&varied()).unwrap();
    }
    assert_searches_match(&memory, "memory");
    // Before the index catches up (every record listed), half-way, and after.
    assert_searches_match(&sqlite, "sqlite, not indexed yet");
    let varied = varied();
    let (first, second) = varied.split_at(varied.len() / 2);
    let half = SqliteStore::open(&dir.join("half.db")).unwrap();
    half.record_batch(first).unwrap();
    catch_up(&half);
    half.record_batch(second).unwrap();
    assert_searches_match(&half, "sqlite, half indexed");
    catch_up(&sqlite);
    assert_searches_match(&sqlite, "sqlite");
    assert_eq!(
        sqlite.list(&ClientFilter::default()).unwrap(),
        memory.list(&ClientFilter::default()).unwrap()
    );
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn postgres_searches_match_the_reference_and_sqlite() {
    let Some(schema) = PgSchema::new("search") else {
        return;
    };
    let pg = PgStore::open(schema.url()).unwrap();
    assert!(pg.notices().is_empty(), "{:?}", pg.notices());
    let dir = TempDir::new("search-pg");
    let sqlite = SqliteStore::open(&dir.join("clients.db")).unwrap();
    for store in [&sqlite as &dyn ClientStore, &pg] {
        store.record_batch(&varied()).unwrap();
    }
    assert_searches_match(&pg, "postgres");
    for text in texts(&sqlite.list(&ClientFilter::default()).unwrap()) {
        assert_eq!(
            pg.list(&search(&text)).unwrap(),
            sqlite.list(&search(&text)).unwrap(),
            "{text:?}"
        );
    }
    assert_index_follows_changes(&pg, "postgres");
    assert_eq!(pg.count().unwrap(), sqlite.count().unwrap());
}

/// The index follows a rename, a new host and a deletion, and a search still finds a
/// record whose port alone changed.
fn assert_index_follows_changes(store: &dyn ClientStore, label: &str) {
    let cmid = Uuid::from_u128(0xfeed);
    let base = Activation {
        workstation: "RENAME-ME".into(),
        address: "203.0.113.5:40000".into(),
        ..activation(cmid, id(0xa), DAY + 100_000)
    };
    store.record(&base).unwrap();
    let found = |text: &str| store.list(&search(text)).unwrap().len();
    assert_eq!(found("rename-me"), 1, "{label}");
    assert_eq!(found("203.0.113.5"), 1, "{label}");
    // A renewal from another port: same host, still found.
    store
        .record(&Activation {
            address: "203.0.113.5:40001".into(),
            time: DAY + 100_001,
            ..base.clone()
        })
        .unwrap();
    assert_eq!(found("203.0.113.5"), 1, "{label}");
    // Renamed, moved: found by the new name and host only.
    store
        .record(&Activation {
            workstation: "NEW-NAME".into(),
            address: "[2001:db8::99]:1".into(),
            time: DAY + 100_002,
            ..base.clone()
        })
        .unwrap();
    assert_eq!(found("rename-me"), 0, "{label}");
    assert_eq!(found("203.0.113"), 0, "{label}");
    assert_eq!(found("new-name"), 1, "{label}");
    assert_eq!(found("db8::99"), 1, "{label}");
    // Deleted: found no more.
    assert_eq!(store.prune_workstation("new-name").unwrap().0, 1);
    assert_eq!(found("new-name"), 0, "{label}");
}

/// Records listed for the search index (written, not indexed yet), read through a raw
/// connection.
fn unindexed(raw: &Connection) -> i64 {
    raw.query_row("SELECT COUNT(*) FROM search_pending", [], |r| r.get(0))
        .unwrap()
}

/// Runs the store's deferred work until none is left; returns the batches it took.
fn catch_up(store: &dyn ClientStore) -> usize {
    let mut batches = 1;
    while store.upkeep(true).unwrap() {
        batches += 1;
        assert!(batches < 10_000, "upkeep never ends");
    }
    batches
}

#[test]
fn sqlite_index_follows_changes_but_not_renewals() {
    let dir = TempDir::new("search-changes");
    let path = dir.join("clients.db");
    let sqlite = SqliteStore::open(&path).unwrap();
    // Every step is searched before the index catches up (the record is listed) and after.
    assert_index_follows_changes(&sqlite, "sqlite, not indexed yet");
    catch_up(&sqlite);
    assert_index_follows_changes(&sqlite, "sqlite");
    catch_up(&sqlite);
    // A renewal (same name, host and ePID) leaves the index untouched: nothing is listed for
    // it, and the index's data table (the segments and the totals record every index write
    // rewrites) stays byte for byte.
    sqlite
        .record(&Activation {
            address: "192.0.2.1:999".into(),
            ..activation(id(1), id(0xa), DAY)
        })
        .unwrap();
    catch_up(&sqlite);
    let raw = Connection::open(&path).unwrap();
    let index = || -> String {
        raw.query_row(
            "SELECT COUNT(*) || ':' || group_concat(id || '=' || hex(block), ',') \
             FROM (SELECT id, block FROM clients_search_data ORDER BY id)",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = index();
    for n in 1..50 {
        sqlite
            .record(&Activation {
                address: format!("192.0.2.1:{}", 1000 + n),
                ..activation(id(1), id(0xa), DAY + n)
            })
            .unwrap();
    }
    assert_eq!(unindexed(&raw), 0, "renewals listed for the search index");
    assert!(!sqlite.upkeep(true).unwrap());
    assert_eq!(index(), before, "renewals wrote the search index");
    sqlite
        .record(&Activation {
            workstation: "RENAMED".into(),
            ..activation(id(1), id(0xa), DAY + 100)
        })
        .unwrap();
    // Listed, not indexed yet: the index is as it was, and the search finds the new name.
    assert_eq!(unindexed(&raw), 1);
    assert_eq!(index(), before, "the write itself indexed");
    assert_eq!(sqlite.list(&search("renamed")).unwrap().len(), 1);
    catch_up(&sqlite);
    assert_eq!(unindexed(&raw), 0);
    assert_ne!(index(), before, "a rename did not reach the search index");
    assert_eq!(sqlite.list(&search("renamed")).unwrap().len(), 1);
}

/// The index catches up in batches: many new records are found while listed, the list
/// empties batch by batch, and afterwards every search gives the reference's answer from
/// the index alone. Records deleted while listed leave both.
#[test]
fn sqlite_index_catches_up_in_batches() {
    let dir = TempDir::new("search-upkeep");
    let path = dir.join("clients.db");
    let sqlite = SqliteStore::open(&path).unwrap();
    let raw = Connection::open(&path).unwrap();
    let batch: Vec<Activation> = (0..1_000u128)
        .map(|i| Activation {
            workstation: format!("HOST-{i:04}"),
            ..activation(Uuid::from_u128(0x5000 + i), id(0xa), DAY + i as i64)
        })
        .collect();
    sqlite.record_batch(&batch).unwrap();
    assert_eq!(unindexed(&raw), 1_000);
    assert_eq!(sqlite.list(&search("host-0777")).unwrap().len(), 1);
    // Busy (activations waiting): nothing is done below the backlog limit.
    assert!(sqlite.upkeep(false).unwrap());
    assert_eq!(unindexed(&raw), 1_000);
    // Deleted while listed: gone from the list, never indexed.
    assert_eq!(sqlite.prune_workstation("host-0500").unwrap().0, 1);
    assert_eq!(unindexed(&raw), 999);
    assert!(catch_up(&sqlite) > 1, "one batch did everything");
    assert_eq!(unindexed(&raw), 0);
    let indexed: i64 = raw
        .query_row(
            "SELECT COUNT(*) FROM clients_search WHERE clients_search MATCH '\"ost\"'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 999);
    assert_searches_match(&sqlite, "sqlite after catching up");
    assert_eq!(sqlite.list(&search("host-0500")).unwrap().len(), 0);
    assert_eq!(sqlite.list(&search("host-0777")).unwrap().len(), 1);
}

/// The writer does the index's upkeep when no activation waits: records written through it
/// are indexed soon after, without anybody asking.
#[test]
fn sqlite_writer_indexes_when_idle() {
    let dir = TempDir::new("search-writer");
    let path = dir.join("clients.db");
    let sqlite: std::sync::Arc<dyn ClientStore> =
        std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    let writer = rkms_store::Writer::new(std::sync::Arc::clone(&sqlite), Box::new(|_| {}));
    for i in 0..700u128 {
        assert!(writer.submit(Activation {
            workstation: format!("IDLE-{i}"),
            ..activation(Uuid::from_u128(0x9000 + i), id(0xa), DAY)
        }));
    }
    writer.flush();
    let raw = Connection::open(&path).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while unindexed(&raw) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} records still not indexed",
            unindexed(&raw)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(sqlite.list(&search("idle-699")).unwrap().len(), 1);
    drop(writer);
}

/// More matches than [`MATCH_COUNT_LIMIT`] (and than the index reads as candidates): the
/// count stops and says so, the list still pages through every match in order, and an
/// unfiltered count stays exact.
#[test]
fn counts_beyond_the_limit_are_capped_and_lists_are_not() {
    let dir = TempDir::new("search-capped");
    let sqlite = SqliteStore::open(&dir.join("clients.db")).unwrap();
    let n = 2 * MATCH_COUNT_LIMIT + 500;
    let records: Vec<ClientRecord> = (0..n)
        .map(|i| {
            ClientRecord::from_activation(&Activation {
                workstation: format!("HOST-{i:06}"),
                address: format!("10.0.{}.{}:5000", i / 256 % 256, i % 256),
                ..activation(
                    Uuid::from_u128(u128::from(i) << 64 | 7),
                    id(0xa),
                    DAY + i as i64,
                )
            })
        })
        .collect();
    sqlite.import(&records, &[]).unwrap();
    let all = sqlite.list(&ClientFilter::default()).unwrap();
    assert_eq!(all.len() as u64, n);

    let whole = sqlite.count_matching(&ClientFilter::default()).unwrap();
    assert_eq!((whole.records, whole.records_capped), (n, false));

    // Every record matches "host-": more candidates than the index reads, so a scan.
    let many = search("host-");
    let count = sqlite.count_matching(&many).unwrap();
    assert!(count.records_capped);
    assert_eq!(count.records, MATCH_COUNT_LIMIT + 1);
    let page = ClientFilter {
        offset: Some(n - 3),
        limit: Some(10),
        ..many.clone()
    };
    assert_eq!(sqlite.list(&page).unwrap(), reference(&all, &page));
    let sorted = ClientFilter {
        sort: ClientSort::Workstation,
        limit: Some(20),
        ..many.clone()
    };
    assert_eq!(sqlite.list(&sorted).unwrap(), reference(&all, &sorted));

    // A search matching a few: from the index, exact count.
    let few = search("host-01234");
    let count = sqlite.count_matching(&few).unwrap();
    assert_eq!((count.records, count.records_capped), (10, false));
    assert_eq!(sqlite.list(&few).unwrap(), reference(&all, &few));

    // Filters without a search are capped too.
    let since = ClientFilter {
        since: Some(DAY + 5),
        ..ClientFilter::default()
    };
    let count = sqlite.count_matching(&since).unwrap();
    assert!(count.records_capped);
    let small = ClientFilter {
        since: Some(DAY + n as i64 - 5),
        ..ClientFilter::default()
    };
    let count = sqlite.count_matching(&small).unwrap();
    assert_eq!((count.records, count.records_capped), (5, false));
}

/// A schema-4 database with 500 records at `path`, as rkms 4 wrote it.
fn v4_database(path: &std::path::Path) {
    let raw = Connection::open(path).unwrap();
    let v4: String = rkms_store::schema::MIGRATIONS
        .iter()
        .filter(|m| m.version <= 4)
        .map(|m| m.sql)
        .collect::<Vec<_>>()
        .join(";\n");
    raw.execute_batch(&v4).unwrap();
    raw.pragma_update(None, "user_version", 4).unwrap();
    raw.execute_batch(
        "INSERT INTO guids (id, guid) VALUES (1, x'0000000000000000000000000000000a');
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO clients (cmid, app, sku, kms, workstation, license_status, grace_minutes,
                              is_vm, protocol, first_seen, last_seen, requests, last_address,
                              last_epid, last_hresult)
         SELECT randomblob(16), 1, 1, 1, 'OLD-' || i, 1, 0, 0, '6.0', i, i, 1,
                '192.0.2.' || (i % 250) || ':1688', '06401-' || i, 0 FROM n;",
    )
    .unwrap();
}

/// A schema-4 database with records (as rkms 4 wrote it) is migrated keeping every record,
/// and its records are found by the indexed search at once.
#[test]
fn sqlite_v4_database_is_migrated_and_searchable() {
    let dir = TempDir::new("search-v4");
    let path = dir.join("clients.db");
    v4_database(&path);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), 4);
    assert_eq!(store.count().unwrap(), 500);
    let all = store.list(&ClientFilter::default()).unwrap();
    for text in ["old-42", "192.0.2.17", "06401-49", "old-"] {
        let f = search(text);
        assert_eq!(store.list(&f).unwrap(), reference(&all, &f), "{text}");
    }
    assert_eq!(store.list(&search("old-42")).unwrap().len(), 11);
}

/// Whether the database at `path` holds the search index's table, and whether its trigger
/// of deleted records deletes from it (that of a build with FTS5) or lists them.
fn index_state(path: &std::path::Path) -> (bool, bool) {
    let raw = Connection::open(path).unwrap();
    raw.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'clients_search'),
                (SELECT instr(sql, 'DELETE FROM clients_search') > 0 FROM sqlite_schema
                 WHERE type = 'trigger' AND name = 'clients_search_delete')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// Index entries holding the trigram `piece`, through a raw connection.
fn indexed(path: &std::path::Path, piece: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM clients_search WHERE clients_search MATCH ?1",
            [format!("\"{piece}\"")],
            |r| r.get(0),
        )
        .unwrap()
}

/// A build whose SQLite has no FTS5 (the lean release binary) keeps no search index: it
/// makes databases without one, and uses one made by a build with FTS5 without touching
/// the index, listing what it changes (deletions too). A build with FTS5 that opens either
/// makes or restores what it needs, and its searches give the reference's answers before
/// its index has caught up and after; the index then holds nothing of a record deleted
/// meanwhile.
#[test]
fn sqlite_databases_move_between_builds_with_and_without_the_search_index() {
    let dir = TempDir::new("search-no-fts5");
    let path = dir.join("clients.db");
    // Made without the index: searches read the records.
    {
        let lean = SqliteStore::open_without_search_index(&path).unwrap();
        for a in varied() {
            lean.record(&a).unwrap();
        }
        assert_index_follows_changes(&lean, "without the index");
        assert!(!lean.upkeep(true).unwrap(), "nothing to index");
        assert_searches_match(&lean, "without the index");
    }
    assert_eq!(index_state(&path), (false, false));
    // With FTS5: the index is made and every record listed for it.
    {
        let full = SqliteStore::open(&path).unwrap();
        assert_eq!(index_state(&path), (true, true));
        let raw = Connection::open(&path).unwrap();
        assert_eq!(unindexed(&raw), full.count().unwrap() as i64);
        assert_searches_match(&full, "index just made");
        assert!(catch_up(&full) >= 1);
        assert_eq!(unindexed(&raw), 0);
        assert_searches_match(&full, "index made");
    }
    let laptops = indexed(&path, "lap");
    assert!(laptops > 0);
    // Without FTS5 again: the index stays, changes and deletions are listed.
    {
        let lean = SqliteStore::open_without_search_index(&path).unwrap();
        assert_eq!(index_state(&path), (true, false));
        assert_index_follows_changes(&lean, "without the index, indexed database");
        assert!(lean.prune_workstation("office-laptop").unwrap().0 > 0);
        lean.record(&Activation {
            workstation: "LEAN-NEW".into(),
            ..activation(Uuid::from_u128(0xbeef), id(0xa), DAY + 200_000)
        })
        .unwrap();
        assert_searches_match(&lean, "without the index, indexed database");
    }
    assert_eq!(indexed(&path, "lap"), laptops, "untouched without FTS5");
    // With FTS5 again: its trigger is back, the listed changes are indexed.
    let full = SqliteStore::open(&path).unwrap();
    assert_eq!(index_state(&path), (true, true));
    assert_searches_match(&full, "listed changes");
    assert_eq!(full.list(&search("office-laptop")).unwrap().len(), 0);
    assert_eq!(full.list(&search("lean-new")).unwrap().len(), 1);
    catch_up(&full);
    assert_eq!(unindexed(&Connection::open(&path).unwrap()), 0);
    assert_eq!(indexed(&path, "lap"), 0, "deleted texts left the index");
    assert_eq!(indexed(&path, "n-n"), 1);
    assert_searches_match(&full, "caught up");
}

/// A schema-4 database migrated by a build without FTS5 keeps every record, with no index;
/// a build with FTS5 then indexes them all.
#[test]
fn sqlite_v4_database_is_migrated_without_the_index_then_indexed() {
    let dir = TempDir::new("search-v4-no-fts5");
    let path = dir.join("clients.db");
    v4_database(&path);
    let lean = SqliteStore::open_without_search_index(&path).unwrap();
    assert_eq!(lean.migrated_from(), 4);
    assert_eq!(lean.count().unwrap(), 500);
    assert_eq!(lean.list(&search("old-42")).unwrap().len(), 11);
    assert_eq!(lean.prune_workstation("old-7").unwrap().0, 1);
    drop(lean);
    assert_eq!(index_state(&path), (false, false));
    let full = SqliteStore::open(&path).unwrap();
    assert_eq!(full.migrated_from(), rkms_store::SCHEMA_VERSION);
    assert_eq!(full.count().unwrap(), 499);
    catch_up(&full);
    assert_eq!(indexed(&path, "-42"), 11);
    // OLD-70 … OLD-79, not the pruned OLD-7.
    assert_eq!(indexed(&path, "d-7"), 10);
}

/// A schema-4 PostgreSQL database with records is migrated keeping every record: the
/// record count (now kept in `client_totals`) and every search answer as before.
#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn postgres_v4_database_is_migrated_and_searchable() {
    use rkms_store::pg_schema::{PG_MIGRATIONS, VERSION_TABLE};
    let Some(schema) = PgSchema::new("search-v4") else {
        return;
    };
    let dir = TempDir::new("search-pg-v4");
    let reference = SqliteStore::open(&dir.join("reference.db")).unwrap();
    reference.record_batch(&varied()).unwrap();
    let mut c = schema.client();
    c.batch_execute(&format!(
        "CREATE TABLE {VERSION_TABLE} (version integer PRIMARY KEY, description text NOT NULL,
                                       applied_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO {VERSION_TABLE} (version, description)
             VALUES (1, 'v1'), (2, 'v2'), (3, 'v3'), (4, 'v4');"
    ))
    .unwrap();
    for m in PG_MIGRATIONS.iter().filter(|m| m.version <= 4) {
        c.batch_execute(m.sql).unwrap();
    }
    let all = reference.list(&ClientFilter::default()).unwrap();
    for r in &all {
        common::insert_v3_client(&mut c, r);
    }
    let store = PgStore::open(schema.url()).unwrap();
    assert_eq!(store.migrated_from(), 4);
    assert!(store.notices().is_empty(), "{:?}", store.notices());
    assert_eq!(store.count().unwrap(), all.len() as u64);
    assert_eq!(store.list(&ClientFilter::default()).unwrap(), all);
    assert_searches_match(&store, "postgres migrated from 4");
    // The kept count follows new records and deletions.
    store.record(&activation(id(0xabc), id(0xa), DAY)).unwrap();
    assert_eq!(store.count().unwrap(), all.len() as u64 + 1);
    store.prune_older_than(DAY + 1).unwrap();
    assert_eq!(
        store.count().unwrap(),
        store.list(&ClientFilter::default()).unwrap().len() as u64
    );
    let whole = store.count_matching(&ClientFilter::default()).unwrap();
    assert_eq!(whole.records, store.count().unwrap());
}
