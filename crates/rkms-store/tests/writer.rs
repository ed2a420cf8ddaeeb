//! The background `Writer`: concurrent submission, flush, back-pressure and error reporting.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{activation, id, TempDir};
use rkms_store::{
    Activation, ActivationEvent, ClientFilter, ClientRecord, ClientStore, DailyCount, MemoryStore,
    SqliteStore, StoreError, Writer,
};
use uuid::Uuid;

fn no_errors() -> rkms_store::ErrorCallback {
    Box::new(|e: &StoreError| panic!("unexpected write error: {e}"))
}

/// 200 activations from 8 threads (25 each, every client twice for Windows-then-Office
/// variety) through one writer: after `flush` every record is there with the right fields.
fn concurrent_submissions(store: Arc<dyn ClientStore>) {
    let writer = Writer::new(store.clone(), no_errors());
    let expected: Mutex<HashMap<(Uuid, Uuid), Activation>> = Mutex::new(HashMap::new());
    std::thread::scope(|scope| {
        for t in 0..8u128 {
            let (writer, expected) = (&writer, &expected);
            scope.spawn(move || {
                for n in 0..25u128 {
                    let a = Activation {
                        application_id: if n % 2 == 0 {
                            common::windows_app()
                        } else {
                            common::office_app()
                        },
                        workstation: format!("T{t}-N{n}"),
                        is_vm: n % 3 == 0,
                        hresult: if n % 5 == 0 { 0xC004_F038 } else { 0 },
                        address: format!("10.0.{t}.{n}:1688"),
                        ..activation(id(t * 100 + n), id(0xa + t % 2), 1_000 + n as i64)
                    };
                    expected
                        .lock()
                        .unwrap()
                        .insert((a.cmid, a.application_id), a.clone());
                    assert!(writer.submit(a));
                }
            });
        }
    });
    writer.flush();
    assert_eq!(writer.written(), 200);
    assert_eq!((writer.dropped(), writer.errors()), (0, 0));
    assert_eq!(store.count().unwrap(), 200);
    let expected = expected.into_inner().unwrap();
    let records = writer.store().list(&ClientFilter::default()).unwrap();
    assert_eq!(records.len(), 200);
    for r in records {
        let a = &expected[&(r.cmid, r.application_id)];
        assert_eq!(r, ClientRecord::from_activation(a));
    }
    // 8 threads × 25 clients, 4 threads per KMS ID, 5 of each 25 refused.
    assert_eq!(store.distinct_clients_since(&id(0xa), 0).unwrap(), 80);
    assert_eq!(store.distinct_clients_since(&id(0xb), 0).unwrap(), 80);
    writer.shutdown();
}

#[test]
fn concurrent_submissions_memory() {
    concurrent_submissions(Arc::new(MemoryStore::new()));
}

#[test]
fn concurrent_submissions_sqlite() {
    let dir = TempDir::new("writer");
    concurrent_submissions(Arc::new(
        SqliteStore::open(&dir.join("clients.db")).unwrap(),
    ));
}

#[test]
fn shutdown_and_drop_write_everything() {
    let dir = TempDir::new("writer-shutdown");
    let path = dir.join("clients.db");
    let writer = Writer::new(Arc::new(SqliteStore::open(&path).unwrap()), no_errors());
    for n in 0..1_000 {
        assert!(writer.submit(activation(id(n), id(0xa), n as i64)));
    }
    writer.shutdown();
    assert_eq!(SqliteStore::open(&path).unwrap().count().unwrap(), 1_000);

    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    {
        let writer = Writer::new(store.clone(), no_errors());
        for n in 0..10 {
            writer.submit(activation(id(n), id(0xa), 0));
        }
    }
    assert_eq!(store.count().unwrap(), 10);
}

/// A store whose writes count themselves in `entered`, then wait while the test holds `gate`,
/// and fail for workstation "BAD".
struct GatedStore {
    inner: MemoryStore,
    gate: Mutex<()>,
    entered: AtomicUsize,
}

impl ClientStore for GatedStore {
    fn record(&self, a: &Activation) -> Result<(), StoreError> {
        self.record_batch(std::slice::from_ref(a))
    }
    fn record_batch(&self, batch: &[Activation]) -> Result<(), StoreError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let _open = self.gate.lock().unwrap();
        if batch.iter().any(|a| a.workstation == "BAD") {
            return Err(StoreError::Corrupt("refused by the test store".into()));
        }
        self.inner.record_batch(batch)
    }
    fn distinct_clients_since(&self, kms_id: &Uuid, since: i64) -> Result<u64, StoreError> {
        self.inner.distinct_clients_since(kms_id, since)
    }
    fn list(&self, filter: &ClientFilter) -> Result<Vec<ClientRecord>, StoreError> {
        self.inner.list(filter)
    }
    fn prune_older_than(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.inner.prune_older_than(cutoff)
    }
    fn count(&self) -> Result<u64, StoreError> {
        self.inner.count()
    }
    fn history(&self, cmid: &Uuid, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        self.inner.history(cmid, limit)
    }
    fn recent_activations(&self, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        self.inner.recent_activations(limit)
    }
    fn activations_since(&self, since: i64) -> Result<u64, StoreError> {
        self.inner.activations_since(since)
    }
    fn daily_counts(&self, since: i64) -> Result<Vec<DailyCount>, StoreError> {
        self.inner.daily_counts(since)
    }
    fn probe_writable(&self) -> Result<(), StoreError> {
        self.inner.probe_writable()
    }
}

fn gated() -> Arc<GatedStore> {
    Arc::new(GatedStore {
        inner: MemoryStore::new(),
        gate: Mutex::new(()),
        entered: AtomicUsize::new(0),
    })
}

#[test]
fn full_queue_drops_without_blocking() {
    let store = gated();
    let writer = Writer::with_capacity(store.clone(), 4, no_errors());
    {
        let _closed = store.gate.lock().unwrap();
        assert!(writer.submit(activation(id(100), id(0xa), 0)));
        // Wait until the thread holds that one activation and is stuck on the gate.
        while store.entered.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let accepted: Vec<bool> = (0..20)
            .map(|n| writer.submit(activation(id(n), id(0xa), 0)))
            .collect();
        assert_eq!(accepted.iter().filter(|&&ok| ok).count(), 4, "{accepted:?}");
        assert!(accepted[..4].iter().all(|&ok| ok));
        assert_eq!(writer.dropped(), 16);
    }
    writer.flush();
    assert_eq!(
        (writer.written(), writer.dropped(), writer.errors()),
        (5, 16, 0)
    );
    assert_eq!(store.count().unwrap(), 5);
    // Room again once drained.
    assert!(writer.submit(activation(id(99), id(0xa), 0)));
    writer.shutdown();
    assert_eq!(store.count().unwrap(), 6);
}

#[test]
fn write_errors_are_reported_and_counted() {
    let store = gated();
    let reported = Arc::new(Mutex::new(Vec::new()));
    let on_error = {
        let reported = reported.clone();
        Box::new(move |e: &StoreError| reported.lock().unwrap().push(e.to_string()))
    };
    let writer = Writer::new(store.clone(), on_error);
    {
        let _closed = store.gate.lock().unwrap();
        assert!(writer.submit(Activation {
            workstation: "BAD".into(),
            ..activation(id(1), id(0xa), 0)
        }));
        assert!(writer.submit(activation(id(2), id(0xa), 0)));
    }
    writer.flush();
    // The bad activation's batch is lost (it may or may not have carried the good one).
    assert!(writer.errors() >= 1);
    assert_eq!(writer.errors() + writer.written(), 2);
    assert!(reported.lock().unwrap()[0].contains("refused by the test store"));
    // The writer keeps going.
    assert!(writer.submit(activation(id(3), id(0xa), 0)));
    writer.flush();
    assert_eq!(writer.errors() + writer.written(), 3);
    assert_eq!(
        store
            .list(&ClientFilter {
                cmid: Some(id(3)),
                ..Default::default()
            })
            .unwrap()
            .len(),
        1
    );
    // Only the one batch holding the bad activation failed.
    assert_eq!(reported.lock().unwrap().len(), 1);
    writer.shutdown();
}

#[test]
fn flush_on_idle_writer_returns() {
    let writer = Writer::new(Arc::new(MemoryStore::new()), no_errors());
    writer.flush();
    writer.flush();
    assert_eq!(writer.written(), 0);
}

#[test]
fn acks_fire_after_commit_with_the_outcome() {
    use std::sync::mpsc;
    let store: std::sync::Arc<dyn rkms_store::ClientStore> =
        std::sync::Arc::new(rkms_store::MemoryStore::new());
    let writer = rkms_store::Writer::new(store.clone(), Box::new(|_| {}));
    let (tx, rx) = mpsc::channel();
    for i in 0..5u128 {
        let tx = tx.clone();
        let a = common::activation(
            uuid::Uuid::from_u128(i + 1),
            uuid::Uuid::from_u128(99),
            1_700_000_000,
        );
        assert!(writer.submit_with_ack(a, Box::new(move |ok| tx.send(ok).unwrap())));
    }
    for _ in 0..5 {
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)), Ok(true));
    }
    // Every acknowledged activation is readable.
    assert_eq!(store.count().unwrap(), 5);
}

#[test]
fn inline_writer_writes_at_once_and_acks() {
    let store: std::sync::Arc<dyn rkms_store::ClientStore> =
        std::sync::Arc::new(rkms_store::MemoryStore::new());
    let writer = rkms_store::Writer::inline(store.clone(), Box::new(|_| {}));
    assert!(writer.submit(common::activation(
        uuid::Uuid::from_u128(1),
        uuid::Uuid::from_u128(9),
        1_700_000_000
    )));
    assert_eq!(store.count().unwrap(), 1, "written before submit returns");
    let (tx, rx) = std::sync::mpsc::channel();
    let a = common::activation(
        uuid::Uuid::from_u128(2),
        uuid::Uuid::from_u128(9),
        1_700_000_000,
    );
    assert!(writer.submit_with_ack(a, Box::new(move |ok| tx.send(ok).unwrap())));
    assert_eq!(rx.try_recv(), Ok(true));
    assert_eq!(writer.written(), 2);
    writer.flush();
}
