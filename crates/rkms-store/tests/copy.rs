//! `copy_all` between the SQLite and memory stores (PostgreSQL: tests/postgres.rs), and the
//! default implementations of the trait's newer methods.

mod common;

use common::{activation, assert_same, fill, id, TempDir};
use rkms_store::{
    copy_all, ActivationEvent, ClientFilter, ClientRecord, ClientStore, CopyReport, MemoryStore,
    SqliteStore, StoreError,
};

#[test]
fn sqlite_to_memory_to_sqlite_keeps_everything() {
    let dir = TempDir::new("copy");
    let source = SqliteStore::open(&dir.join("source.db")).unwrap();
    fill(&source);
    let memory = MemoryStore::new();
    let report = copy_all(&source, &memory).unwrap();
    assert_eq!(
        report,
        CopyReport {
            records: 400,
            events: 500
        }
    );
    assert_same(&source, &memory);
    let target = SqliteStore::open(&dir.join("target.db")).unwrap();
    assert_eq!(copy_all(&memory, &target).unwrap(), report);
    assert_same(&source, &target);
    // The copy is a file of its own that reopens the same.
    drop(target);
    assert_same(&source, &SqliteStore::open(&dir.join("target.db")).unwrap());
}

#[test]
fn empty_store_copies_nothing() {
    let report = copy_all(&MemoryStore::new(), &MemoryStore::new()).unwrap();
    assert_eq!(report, CopyReport::default());
}

#[test]
fn refuses_a_target_holding_data() {
    let source = MemoryStore::new();
    fill(&source);
    let target = MemoryStore::new();
    target.record(&activation(id(1), id(0xa), 5)).unwrap();
    let e = copy_all(&source, &target).unwrap_err();
    assert!(matches!(e, StoreError::Copy(_)), "{e:?}");
    assert!(e.to_string().contains("1 client records"), "{e}");
    assert_eq!(target.count().unwrap(), 1);

    // Events alone count too.
    let events_only = MemoryStore::new();
    events_only
        .import(
            &[],
            &[ActivationEvent::from_activation(&activation(
                id(1),
                id(0xa),
                5,
            ))],
        )
        .unwrap();
    assert!(copy_all(&source, &events_only).is_err());
}

#[test]
fn import_folds_records_into_existing_ones() {
    let dir = TempDir::new("import");
    let sqlite = SqliteStore::open(&dir.join("c.db")).unwrap();
    let memory = MemoryStore::new();
    let schema = common::PgSchema::new("import");
    let pg = schema
        .as_ref()
        .map(|s| rkms_store::PgStore::open(s.url()).unwrap());
    let mut stores: Vec<&dyn ClientStore> = vec![&sqlite, &memory];
    if let Some(pg) = &pg {
        stores.push(pg);
    }
    for store in stores {
        store.record(&activation(id(1), id(0xa), 100)).unwrap();
        let mut newer = ClientRecord::from_activation(&activation(id(1), id(0xb), 300));
        newer.requests = 5;
        newer.first_seen = 50;
        store.import(&[newer], &[]).unwrap();
        let r = &store.list(&ClientFilter::default()).unwrap()[0];
        assert_eq!(
            (r.requests, r.first_seen, r.last_seen, r.kms_id),
            (6, 50, 300, id(0xb))
        );
        let mut older = ClientRecord::from_activation(&activation(id(1), id(0xc), 200));
        older.workstation = "OLDER".into();
        store.import(&[older], &[]).unwrap();
        let r = &store.list(&ClientFilter::default()).unwrap()[0];
        assert_eq!((r.requests, r.last_seen, r.kms_id), (7, 300, id(0xb)));
        assert_ne!(r.workstation, "OLDER");
        assert_eq!(
            store.activations_since(i64::MIN).unwrap(),
            1,
            "no event added"
        );
    }
}

/// A store keeping the trait's default `client_counts_since`, `events_page` and `import`.
struct Plain(MemoryStore);

impl ClientStore for Plain {
    fn record(&self, a: &rkms_store::Activation) -> Result<(), StoreError> {
        self.0.record(a)
    }
    fn record_batch(&self, batch: &[rkms_store::Activation]) -> Result<(), StoreError> {
        self.0.record_batch(batch)
    }
    common::pass_reads_to!(0);
}

#[test]
fn default_methods_agree_with_the_native_ones() {
    let dir = TempDir::new("defaults");
    let plain = Plain(MemoryStore::new());
    fill(&plain);
    let sqlite = SqliteStore::open(&dir.join("c.db")).unwrap();
    fill(&sqlite);
    for since in [i64::MIN, 1_799_971_200 + 1_000, i64::MAX] {
        assert_eq!(
            plain.client_counts_since(since).unwrap(),
            sqlite.client_counts_since(since).unwrap()
        );
        assert_eq!(
            plain.client_counts_since(since).unwrap(),
            plain.0.client_counts_since(since).unwrap()
        );
    }
    for (offset, limit) in [(0, 7), (3, 100), (495, 10), (500, 1), (0, u64::MAX)] {
        let page = plain.events_page(offset, limit).unwrap();
        assert_eq!(page, sqlite.events_page(offset, limit).unwrap());
        assert_eq!(page, plain.0.events_page(offset, limit).unwrap());
    }
    // Counts per KMS ID are distinct_clients_since for each.
    for (kms, n) in sqlite.client_counts_since(0).unwrap() {
        assert_eq!(sqlite.distinct_clients_since(&kms, 0).unwrap(), n);
    }
    // Copying out of it works; into it is unsupported.
    let copy = MemoryStore::new();
    copy_all(&plain, &copy).unwrap();
    assert_same(&plain, &copy);
    let e = copy_all(&sqlite, &Plain(MemoryStore::new())).unwrap_err();
    assert!(matches!(e, StoreError::Unsupported(_)), "{e:?}");
}
