//! The background `Writer`: concurrent submission, flush, back-pressure and error reporting.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{activation, id, TempDir};
use rkms_store::{
    Activation, ClientFilter, ClientRecord, ClientStore, MemoryStore, SqliteStore, StoreError,
    Writer, WriterOptions,
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
    common::pass_reads_to!(inner);
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
fn a_refused_activation_does_not_take_its_batch_down() {
    let store = gated();
    let reported = Arc::new(Mutex::new(0));
    let on_error = {
        let reported = reported.clone();
        Box::new(move |_: &StoreError| *reported.lock().unwrap() += 1)
    };
    let writer = Writer::new(store.clone(), on_error);
    {
        let _closed = store.gate.lock().unwrap();
        assert!(writer.submit(activation(id(100), id(0xa), 0)));
        while store.entered.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // These three queue up behind the gate and are written as one batch.
        assert!(writer.submit(activation(id(1), id(0xa), 0)));
        assert!(writer.submit(Activation {
            workstation: "BAD".into(),
            ..activation(id(2), id(0xa), 0)
        }));
        assert!(writer.submit(activation(id(3), id(0xa), 0)));
    }
    writer.flush();
    assert_eq!((writer.written(), writer.errors()), (3, 1));
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(*reported.lock().unwrap(), 1);
    // A permanent error is not an outage: nothing buffered.
    assert_eq!((writer.buffered(), writer.failing()), (0, false));
    writer.shutdown();
}

#[test]
fn write_status_names_the_latest_failure_until_a_write_succeeds() {
    let store = gated();
    let writer = Writer::new(store.clone(), Box::new(|_| {}));
    assert_eq!(writer.write_status(), rkms_store::WriteStatus::default());
    assert!(writer.submit(activation(id(1), id(0xa), 0)));
    writer.flush();
    let ok = writer.write_status();
    assert!(!ok.latest_failed && ok.last_success.is_some() && ok.last_failure.is_none());
    assert!(writer.submit(Activation {
        workstation: "BAD".into(),
        ..activation(id(2), id(0xa), 0)
    }));
    writer.flush();
    let failed = writer.write_status();
    assert!(failed.latest_failed, "{failed:?}");
    let (when, why) = failed.last_failure.clone().unwrap();
    assert!(when >= ok.last_success.unwrap());
    assert!(
        why.contains(&id(2).to_string())
            && why.contains("\"BAD\"")
            && why.contains("refused by the test store"),
        "{why}"
    );
    // The failure stays known; the latest write decides.
    assert!(writer.submit(activation(id(3), id(0xa), 0)));
    writer.flush();
    let again = writer.write_status();
    assert!(!again.latest_failed);
    assert_eq!(again.last_failure, failed.last_failure);
    assert!(again.failed_attempts >= 1);
    // Inline writers (memory stores) report the same way.
    let inline = Writer::inline(store.clone(), Box::new(|_| {}));
    inline.submit(Activation {
        workstation: "BAD".into(),
        ..activation(id(4), id(0xa), 0)
    });
    assert!(inline.write_status().latest_failed);
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

// ---------------------------------------------------------------------------------------------
// Outages: the retry buffer

/// A store whose writes fail with a transient error (database unreachable) while `down` is
/// set, counting every write attempt.
struct FlakyStore {
    inner: MemoryStore,
    down: std::sync::atomic::AtomicBool,
    attempts: AtomicUsize,
}

impl FlakyStore {
    fn new(down: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            down: std::sync::atomic::AtomicBool::new(down),
            attempts: AtomicUsize::new(0),
        })
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

impl ClientStore for FlakyStore {
    fn record(&self, a: &Activation) -> Result<(), StoreError> {
        self.record_batch(std::slice::from_ref(a))
    }
    fn record_batch(&self, batch: &[Activation]) -> Result<(), StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                target: "postgres://test@db:5432/rkms".into(),
                message: "connection refused".into(),
            });
        }
        self.inner.record_batch(batch)
    }
    common::pass_reads_to!(inner);
}

/// What the callbacks were told.
#[derive(Default)]
struct Told {
    errors: Mutex<Vec<String>>,
    resumed: Mutex<Vec<rkms_store::Resumed>>,
}

fn options(told: &Arc<Told>, buffer: usize, initial_ms: u64, max_ms: u64) -> WriterOptions {
    WriterOptions {
        buffer_capacity: buffer,
        retry_initial: Duration::from_millis(initial_ms),
        retry_max: Duration::from_millis(max_ms),
        on_error: {
            let told = told.clone();
            Box::new(move |e| told.errors.lock().unwrap().push(e.to_string()))
        },
        on_resume: Some({
            let told = told.clone();
            Box::new(move |r| told.resumed.lock().unwrap().push(*r))
        }),
        ..WriterOptions::default()
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_outage_loses_nothing_the_buffer_holds() {
    // Fewer activations than the in-memory store behind keeps (MEMORY_CLIENT_LIMIT).
    let store = FlakyStore::new(true);
    let told = Arc::new(Told::default());
    let writer = Writer::with_options(store.clone(), options(&told, 10_000, 10, 50));
    let (acked_true, acked_false) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let submit = |n: u128| {
        let (t, f) = (acked_true.clone(), acked_false.clone());
        let ack = Box::new(move |ok: bool| {
            if ok { &t } else { &f }.fetch_add(1, Ordering::SeqCst);
        });
        assert!(writer.submit_with_ack(activation(id(n), id(0xa), n as i64), ack));
    };
    for n in 0..600 {
        submit(n);
    }
    let started = Instant::now();
    writer.flush();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "flush waited for the outage"
    );
    assert_eq!(writer.buffered(), 600);
    assert!(writer.failing());
    assert_eq!(
        (writer.written(), writer.errors(), writer.overflow()),
        (0, 0, 0)
    );
    // Every ack was called, at once, with false: the server answers anyway.
    assert_eq!(
        (
            acked_true.load(Ordering::SeqCst),
            acked_false.load(Ordering::SeqCst)
        ),
        (0, 600)
    );
    for n in 600..900 {
        submit(n);
    }
    writer.flush();
    assert_eq!(writer.buffered(), 900);
    assert_eq!(store.count().unwrap(), 0);
    // One report for the whole outage, however many retries.
    assert_eq!(told.errors.lock().unwrap().len(), 1);
    assert!(told.errors.lock().unwrap()[0].contains("unreachable"));
    assert!(told.resumed.lock().unwrap().is_empty());

    // The database comes back: the retry timer writes the buffer without a flush.
    store.set_down(false);
    wait_until("the buffer is written", || writer.buffered() == 0);
    writer.flush();
    assert!(!writer.failing());
    assert_eq!(writer.written(), 900);
    assert_eq!(store.count().unwrap(), 900);
    assert_eq!(store.activations_since(i64::MIN).unwrap(), 900);
    assert_eq!(told.errors.lock().unwrap().len(), 1);
    let resumed = told.resumed.lock().unwrap().clone();
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert!(resumed[0].failed_attempts >= 2, "{resumed:?}");
    assert_eq!(resumed[0].overflow, 0);

    // Writes go straight through again, acknowledged.
    submit(2_000);
    writer.flush();
    assert_eq!(acked_true.load(Ordering::SeqCst), 1);
    assert_eq!(store.count().unwrap(), 901);

    // A second outage is a second report.
    store.set_down(true);
    submit(2_001);
    writer.flush();
    assert_eq!(told.errors.lock().unwrap().len(), 2);
    store.set_down(false);
    writer.flush();
    assert_eq!(writer.buffered(), 0);
    assert_eq!(told.resumed.lock().unwrap().len(), 2);
    assert_eq!(store.count().unwrap(), 902);
    assert_eq!(writer.errors(), 0);
    writer.shutdown();
}

#[test]
fn buffer_overflow_is_dropped_and_counted() {
    let store = FlakyStore::new(true);
    let told = Arc::new(Told::default());
    let writer = Writer::with_options(store.clone(), options(&told, 100, 10_000, 10_000));
    for n in 0..250 {
        assert!(writer.submit(activation(id(n), id(0xa), n as i64)));
    }
    writer.flush();
    assert_eq!((writer.buffered(), writer.overflow()), (100, 150));
    store.set_down(false);
    writer.flush();
    assert_eq!((writer.buffered(), writer.written()), (0, 100));
    // The oldest were kept.
    assert_eq!(store.count().unwrap(), 100);
    assert_eq!(
        store
            .list(&ClientFilter {
                cmid: Some(id(99)),
                ..Default::default()
            })
            .unwrap()
            .len(),
        1
    );
    assert_eq!(told.resumed.lock().unwrap()[0].overflow, 150);
    assert_eq!(writer.overflow(), 150);
    writer.shutdown();
}

#[test]
fn retries_back_off_and_each_flush_tries_once() {
    let store = FlakyStore::new(true);
    let told = Arc::new(Told::default());
    let writer = Writer::with_options(store.clone(), options(&told, 1_000, 50, 200));
    assert!(writer.submit(activation(id(1), id(0xa), 0)));
    std::thread::sleep(Duration::from_millis(1_000));
    // First write, then retries after 50, 100, 200, 200 … ms: about 7 in a second.
    let attempts = store.attempts();
    assert!(
        (3..=10).contains(&attempts),
        "{attempts} attempts in a second"
    );
    drop(writer);

    // With a long backoff, only flushes retry: one attempt each.
    let store = FlakyStore::new(true);
    let writer = Writer::with_options(store.clone(), options(&told, 1_000, 60_000, 60_000));
    assert!(writer.submit(activation(id(1), id(0xa), 0)));
    writer.flush();
    assert_eq!(store.attempts(), 1);
    // New activations while failing are buffered without an attempt of their own.
    for n in 2..10 {
        assert!(writer.submit(activation(id(n), id(0xa), 0)));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(store.attempts(), 1);
    writer.flush();
    assert_eq!(store.attempts(), 2);
    writer.flush();
    assert_eq!(store.attempts(), 3);
    assert_eq!(writer.buffered(), 9);
}

#[test]
fn shutdown_makes_one_last_attempt() {
    // The store is back by shutdown: the buffer is written.
    let store = FlakyStore::new(true);
    let told = Arc::new(Told::default());
    let writer = Writer::with_options(store.clone(), options(&told, 1_000, 60_000, 60_000));
    for n in 0..10 {
        assert!(writer.submit(activation(id(n), id(0xa), 0)));
    }
    writer.flush();
    assert_eq!(writer.buffered(), 10);
    store.set_down(false);
    writer.shutdown();
    assert_eq!(store.count().unwrap(), 10);

    // Still down: one last attempt, then the buffer is given up.
    let store = FlakyStore::new(true);
    let writer = Writer::with_options(store.clone(), options(&told, 1_000, 60_000, 60_000));
    for n in 0..10 {
        assert!(writer.submit(activation(id(n), id(0xa), 0)));
    }
    writer.flush();
    let before = store.attempts();
    writer.shutdown();
    assert_eq!(store.attempts(), before + 1, "one last attempt");
    assert_eq!(store.count().unwrap(), 0);
}

/// Group commit: activations that arrive while a transaction is being written go together in
/// the next one, each acknowledged only once that transaction is committed; the writer counts
/// its transactions.
#[test]
fn records_queued_during_a_write_share_the_next_transaction_and_acks_follow_commits() {
    use std::sync::mpsc;
    let store = gated();
    let writer = Writer::new(store.clone(), no_errors());
    let (tx, rx) = mpsc::channel();
    let ack = |n: u128| {
        let (tx, store) = (tx.clone(), store.clone());
        Box::new(move |ok: bool| {
            // Called after the commit: the record is readable already.
            let there = store
                .list(&ClientFilter {
                    cmid: Some(id(n)),
                    ..ClientFilter::default()
                })
                .unwrap()
                .len();
            tx.send((n, ok, there)).unwrap();
        }) as rkms_store::Ack
    };
    {
        let _closed = store.gate.lock().unwrap();
        assert!(writer.submit_with_ack(activation(id(1), id(0xa), 0), ack(1)));
        while store.entered.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // The first transaction is under way (held at the gate): 40 more arrive meanwhile.
        for n in 2..=41 {
            assert!(writer.submit_with_ack(activation(id(n), id(0xa), 0), ack(n)));
        }
        // Nothing is acknowledged before its commit.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }
    let mut acked: Vec<(u128, bool, usize)> = (0..41)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    acked.sort();
    assert_eq!(
        acked,
        (1..=41).map(|n| (n, true, 1)).collect::<Vec<_>>(),
        "every ack says written, after its record is readable"
    );
    assert_eq!(writer.written(), 41);
    assert_eq!(
        writer.transactions(),
        2,
        "one for the first, one for the 40 queued"
    );
    assert_eq!(store.entered.load(Ordering::SeqCst), 2);
    writer.shutdown();
}

#[test]
fn an_inline_writer_counts_one_transaction_per_record() {
    let writer = Writer::inline(Arc::new(MemoryStore::new()), no_errors());
    for n in 0..3 {
        assert!(writer.submit(activation(id(n), id(0xa), 0)));
    }
    assert_eq!((writer.written(), writer.transactions()), (3, 3));
}

/// What the acknowledgements and the after-acks call saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Ack,
    After,
}

fn seen_log(writer: &Writer) -> Arc<Mutex<Vec<Seen>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let after = log.clone();
    assert!(writer.set_after_acks(Box::new(move || after.lock().unwrap().push(Seen::After))));
    // Only one call can be set.
    assert!(!writer.set_after_acks(Box::new(|| {})));
    log
}

#[test]
fn after_acks_is_called_once_per_transaction_after_its_acks() {
    let dir = TempDir::new("after-acks");
    let store: Arc<dyn ClientStore> = Arc::new(SqliteStore::open(&dir.join("c.db")).unwrap());
    let writer = Writer::new(store.clone(), no_errors());
    let log = seen_log(&writer);
    let acked = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for t in 0..4u128 {
            let (writer, log, acked) = (&writer, &log, &acked);
            scope.spawn(move || {
                for n in 0..50u128 {
                    let (log, acked) = (log.clone(), acked.clone());
                    let a = activation(id(t * 1000 + n + 1), common::windows_app(), 1_700_000_000);
                    assert!(writer.submit_with_ack(
                        a,
                        Box::new(move |ok| {
                            assert!(ok);
                            acked.fetch_add(1, Ordering::SeqCst);
                            log.lock().unwrap().push(Seen::Ack);
                        })
                    ));
                }
            });
        }
    });
    writer.flush();
    assert_eq!(acked.load(Ordering::SeqCst), 200);
    let log = log.lock().unwrap().clone();
    let afters = log.iter().filter(|t| **t == Seen::After).count() as u64;
    // At most one call per transaction, and at least one: records were grouped.
    assert!(
        afters >= 1 && afters <= writer.transactions(),
        "{afters} calls, {} transactions",
        writer.transactions()
    );
    // Every call follows acknowledgements, and every acknowledgement is followed by a call.
    assert_eq!(log.last(), Some(&Seen::After));
    assert!(
        log.windows(2).all(|w| w != [Seen::After, Seen::After]),
        "{log:?}"
    );
    assert_eq!(log.first(), Some(&Seen::Ack));
    assert_eq!(store.count().unwrap(), 200);
}

#[test]
fn after_acks_follows_each_acknowledgement_of_an_inline_writer() {
    let writer = Writer::inline(Arc::new(MemoryStore::new()), no_errors());
    let log = seen_log(&writer);
    for n in 0..3u128 {
        let log2 = log.clone();
        let a = activation(id(n + 1), common::windows_app(), 1_700_000_000);
        writer.submit_with_ack(a, Box::new(move |_| log2.lock().unwrap().push(Seen::Ack)));
    }
    // A record without an acknowledgement calls nothing.
    writer.submit(activation(id(9), common::windows_app(), 1_700_000_000));
    assert_eq!(
        *log.lock().unwrap(),
        [
            Seen::Ack,
            Seen::After,
            Seen::Ack,
            Seen::After,
            Seen::Ack,
            Seen::After
        ]
    );
}
