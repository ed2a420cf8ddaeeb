//! [`Writer`]: a background thread that writes reported activations to a store in batches,
//! so the server's request path never waits on the disk or the database.
//!
//! When a write fails with a transient error ([`StoreError::is_transient`]: database
//! unreachable, busy, restarting …), its activations are kept in a bounded retry buffer and
//! written once the store works again: an outage loses nothing as long as the buffer holds.
//! While the store fails, new activations go straight to the buffer (no write is attempted
//! for them, so nothing waits on a dead database), and the buffer is retried with exponential
//! backoff ([`WriterOptions::retry_initial`] doubling up to [`WriterOptions::retry_max`]) and
//! at every [`Writer::flush`]. Activations that do not fit in the buffer are dropped and
//! counted in [`Writer::overflow`]. A write failing with a permanent error (a record the store
//! refuses) is not retried: its activations are written one by one so that only the refused
//! ones are lost (counted in [`Writer::errors`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{Activation, ClientStore, StoreError};

/// Default number of activations the queue holds before [`Writer::submit`] drops.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// Default number of activations the retry buffer holds while the store fails.
pub const DEFAULT_BUFFER_CAPACITY: usize = 100_000;

/// Default wait before the first retry of a failed write (doubled after each failure).
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_secs(1);

/// Default longest wait between two retries.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);

/// Most activations written in one transaction.
pub const MAX_BATCH: usize = 512;

/// Times the writer lets submitters run to add to a transaction before writing it (it stops
/// as soon as one such turn brings nothing new).
const GATHER_YIELDS: usize = 8;

/// How long the queue must stay empty before the writer does a batch of the store's
/// deferred work ([`ClientStore::upkeep`]).
const UPKEEP_IDLE: Duration = Duration::from_millis(5);

/// Batches of the retry buffer written in a row before the writer takes new activations
/// again (while the buffer drains after an outage).
const DRAIN_BATCHES: usize = 16;

/// Called on the writer thread when writing fails: once when the store starts failing with a
/// transient error (an outage; not again for each retry until writing resumes), and for every
/// write failing with a permanent error (its activations are lost).
pub type ErrorCallback = Box<dyn Fn(&StoreError) + Send>;

/// Called on the writer thread once writing works again after an outage reported to the
/// [`ErrorCallback`].
pub type ResumeCallback = Box<dyn Fn(&Resumed) + Send>;

/// Called once an activation's batch is committed (`true`) or failed (`false`).
pub type Ack = Box<dyn FnOnce(bool) + Send>;

/// Called on the writer thread after the [`Ack`]s of one write (a committed transaction, a
/// failed one, or activations buffered while the store fails) have all been called; see
/// [`Writer::set_after_acks`].
pub type AfterAcks = Box<dyn Fn() + Send + Sync>;

/// What [`ResumeCallback`] is told when writing works again after an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumed {
    /// How long writes failed (from the first failure to the first success).
    pub outage: Duration,
    /// Write attempts that failed during the outage.
    pub failed_attempts: u64,
    /// Activations still in the retry buffer, to be written next.
    pub buffered: u64,
    /// Activations dropped during the outage because the buffer was full.
    pub overflow: u64,
}

/// How a [`Writer`] queues, buffers and retries, and whom it tells (see
/// [`Writer::with_options`]).
pub struct WriterOptions {
    /// Activations the queue holds before [`Writer::submit`] drops (at least 1).
    pub queue_capacity: usize,
    /// Activations the retry buffer holds while the store fails (0: no buffering, a failed
    /// write's activations overflow at once).
    pub buffer_capacity: usize,
    /// Wait before the first retry after a failure.
    pub retry_initial: Duration,
    /// Longest wait between retries (the wait doubles after each failure up to this).
    pub retry_max: Duration,
    /// See [`ErrorCallback`].
    pub on_error: ErrorCallback,
    /// See [`ResumeCallback`]; `None`: not told.
    pub on_resume: Option<ResumeCallback>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            buffer_capacity: DEFAULT_BUFFER_CAPACITY,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
            on_error: Box::new(|_| {}),
            on_resume: None,
        }
    }
}

impl fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterOptions")
            .field("queue_capacity", &self.queue_capacity)
            .field("buffer_capacity", &self.buffer_capacity)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .finish_non_exhaustive()
    }
}

/// The outcome of the latest write attempts (see [`Writer::write_status`]), for readiness
/// checks: a store can take its write lock and still fail to write records (a corrupted page,
/// a constraint, a full disk).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStatus {
    /// Whether the latest write attempt failed (`false` before the first attempt).
    pub latest_failed: bool,
    /// Unix time (seconds) of the latest successful write.
    pub last_success: Option<i64>,
    /// The latest failed write: its unix time (seconds), and what failed and why.
    pub last_failure: Option<(i64, String)>,
    /// Write attempts that failed since the start (batches and single records).
    pub failed_attempts: u64,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What a failed write was, for [`WriteStatus::last_failure`].
fn describe(batch: &[Activation]) -> String {
    match batch {
        [a] => format!(
            "the record of client {} (workstation {:?})",
            a.cmid, a.workstation
        ),
        _ => format!("a batch of {} client records", batch.len()),
    }
}

enum Message {
    Record(Activation, Option<Ack>),
    Flush(SyncSender<()>),
}

#[derive(Debug, Default)]
struct Stats {
    written: AtomicU64,
    /// Transactions that wrote activations (batches committed).
    transactions: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
    overflow: AtomicU64,
    buffered: AtomicU64,
    failing: AtomicBool,
    /// Activations submitted and not yet taken by the writer thread.
    queued: AtomicUsize,
    status: Mutex<WriteStatus>,
}

impl Stats {
    fn status(&self) -> std::sync::MutexGuard<'_, WriteStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_succeeded(&self) {
        let mut s = self.status();
        s.latest_failed = false;
        s.last_success = Some(unix_now());
    }

    fn write_failed(&self, what: &[Activation], e: &StoreError) {
        let mut s = self.status();
        s.latest_failed = true;
        s.failed_attempts += 1;
        s.last_failure = Some((unix_now(), format!("{}: {e}", describe(what))));
    }
}

/// Owns a store on a dedicated thread fed by a bounded queue. Share it by reference (it is
/// `Sync`); dropping it behaves like [`Writer::shutdown`].
pub struct Writer {
    /// The queue: a channel that allocates as it fills (a preallocated one of
    /// [`DEFAULT_QUEUE_CAPACITY`] slots would hold megabytes for nothing), bounded by
    /// `capacity` through [`Stats::queued`].
    sender: Option<Sender<Message>>,
    capacity: usize,
    thread: Option<JoinHandle<()>>,
    store: Arc<dyn ClientStore>,
    stats: Arc<Stats>,
    /// Inline mode: write on the caller's thread (for in-memory stores, which never block).
    inline: Option<std::sync::Mutex<ErrorCallback>>,
    /// See [`Writer::set_after_acks`].
    after_acks: Arc<OnceLock<AfterAcks>>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .field("errors", &self.errors())
            .field("overflow", &self.overflow())
            .field("buffered", &self.buffered())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer thread with the default [`WriterOptions`] (queue of
    /// [`DEFAULT_QUEUE_CAPACITY`], retry buffer of [`DEFAULT_BUFFER_CAPACITY`]) and `on_error`
    /// (see [`ErrorCallback`]); the writer keeps going after failures.
    pub fn new(store: Arc<dyn ClientStore>, on_error: ErrorCallback) -> Self {
        Self::with_capacity(store, DEFAULT_QUEUE_CAPACITY, on_error)
    }

    /// A writer without a thread: every activation is written on the caller's thread at once.
    /// For stores that never touch a disk ([`crate::MemoryStore`]), where handing each record
    /// to another thread would cost more than writing it. No retry buffer: a failed write is
    /// reported to `on_error` and lost.
    pub fn inline(store: Arc<dyn ClientStore>, on_error: ErrorCallback) -> Self {
        Self {
            sender: None,
            capacity: 0,
            thread: None,
            store,
            stats: Arc::new(Stats::default()),
            inline: Some(std::sync::Mutex::new(on_error)),
            after_acks: Arc::new(OnceLock::new()),
        }
    }

    /// Like [`Writer::new`] with a queue of `capacity` activations (at least 1).
    ///
    /// # Panics
    /// If the operating system cannot start a thread.
    pub fn with_capacity(
        store: Arc<dyn ClientStore>,
        capacity: usize,
        on_error: ErrorCallback,
    ) -> Self {
        Self::with_options(
            store,
            WriterOptions {
                queue_capacity: capacity,
                on_error,
                ..WriterOptions::default()
            },
        )
    }

    /// Starts the writer thread with `options` (queue and retry buffer sizes, retry backoff,
    /// error and resume callbacks).
    ///
    /// # Panics
    /// If the operating system cannot start a thread.
    pub fn with_options(store: Arc<dyn ClientStore>, options: WriterOptions) -> Self {
        let capacity = options.queue_capacity.max(1);
        let (sender, receiver) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let after_acks = Arc::new(OnceLock::new());
        let thread = {
            let store = Arc::clone(&store);
            let stats = Arc::clone(&stats);
            let after_acks = Arc::clone(&after_acks);
            std::thread::Builder::new()
                .name("rkms-store-writer".into())
                .spawn(move || {
                    Worker {
                        store: &*store,
                        stats: &stats,
                        after_acks: &after_acks,
                        options,
                        buffer: VecDeque::new(),
                        outage: None,
                        backoff: Duration::ZERO,
                        next_attempt: Instant::now(),
                        // Work may have been left by an earlier run (or an import).
                        upkeep_left: true,
                    }
                    .run(&receiver);
                })
                .expect("cannot start the client store writer thread")
        };
        Self {
            sender: Some(sender),
            capacity,
            thread: Some(thread),
            store,
            stats,
            inline: None,
            after_acks,
        }
    }

    /// Queues `a` for writing without blocking. Returns `false` (and counts it in
    /// [`Writer::dropped`]) when the queue is full or the writer thread is gone.
    pub fn submit(&self, a: Activation) -> bool {
        self.send(a, None)
    }

    /// Like [`Writer::submit`], and calls `ack` on the writer thread once the transaction
    /// holding `a` is committed (`true`) or has failed (`false`; also at once, without a write
    /// attempt, while the store is failing or the retry buffer is still being written after
    /// an outage). An activation acknowledged with `false` after a
    /// transient failure is still in the retry buffer and written later unless it overflows.
    /// When the activation is not queued (`false` returned), `ack` is dropped uncalled.
    pub fn submit_with_ack(&self, a: Activation, ack: Ack) -> bool {
        self.send(a, Some(ack))
    }

    /// Sets the call made on the writer thread after the acks of each write have been called
    /// (once per transaction, not once per activation). An ack that hands its result to
    /// another thread can queue it there and leave the wake-up to this call: one wake-up per
    /// transaction instead of one per waiting activation. Returns `false` (and leaves the
    /// writer as it was) when a call is already set.
    pub fn set_after_acks(&self, after: AfterAcks) -> bool {
        self.after_acks.set(after).is_ok()
    }

    fn send(&self, a: Activation, ack: Option<Ack>) -> bool {
        if let Some(on_error) = &self.inline {
            let ok = match self.store.record(&a) {
                Ok(()) => {
                    self.stats.written.fetch_add(1, Ordering::Relaxed);
                    self.stats.write_succeeded();
                    self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    self.stats.write_failed(std::slice::from_ref(&a), &e);
                    (on_error.lock().unwrap_or_else(|p| p.into_inner()))(&e);
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    false
                }
            };
            if let Some(done) = ack {
                done(ok);
                if let Some(after) = self.after_acks.get() {
                    after();
                }
            }
            return true;
        }
        let Some(sender) = &self.sender else {
            return false;
        };
        // Reserve a place in the queue first; the writer thread frees it when it takes the record.
        let queued = &self.stats.queued;
        let full = queued.fetch_add(1, Ordering::AcqRel) >= self.capacity;
        if full || sender.send(Message::Record(a, ack)).is_err() {
            queued.fetch_sub(1, Ordering::AcqRel);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Blocks until every activation submitted before the call has been written, or has
    /// failed and been reported. When the store fails, the retry buffer and the queued
    /// activations get one write attempt (whatever the backoff) and flush returns, what
    /// failed staying buffered: it never waits for an outage to end.
    pub fn flush(&self) {
        let Some(sender) = &self.sender else {
            return;
        };
        let (ack, done) = mpsc::sync_channel(1);
        if sender.send(Message::Flush(ack)).is_ok() {
            // An error means the thread died; nothing more will be written either way.
            let _ = done.recv();
        }
    }

    /// Flushes, stops the thread and waits for it. The retry buffer gets one last write
    /// attempt; what is still in it then is lost (counted in [`Writer::errors`]).
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// The store the writer writes to, for reads (`list`, `distinct_clients_since` …).
    pub fn store(&self) -> &Arc<dyn ClientStore> {
        &self.store
    }

    /// Activations written successfully so far (including those written late, from the retry
    /// buffer).
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Transactions committed so far: with [`Writer::written`], how well records are
    /// grouped (each transaction costs far more than a record in it).
    pub fn transactions(&self) -> u64 {
        self.stats.transactions.load(Ordering::Relaxed)
    }

    /// Activations refused by [`Writer::submit`] because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Activations lost to write failures: refused by the store (a permanent error), or still
    /// in the retry buffer when the writer shut down.
    pub fn errors(&self) -> u64 {
        self.stats.errors.load(Ordering::Relaxed)
    }

    /// Activations dropped because the retry buffer was full while the store failed.
    pub fn overflow(&self) -> u64 {
        self.stats.overflow.load(Ordering::Relaxed)
    }

    /// Activations in the retry buffer now, waiting for the store to work again.
    pub fn buffered(&self) -> u64 {
        self.stats.buffered.load(Ordering::Relaxed)
    }

    /// The outcome of the latest write attempts: whether the latest failed, when writes last
    /// succeeded and failed, and what failed and why.
    pub fn write_status(&self) -> WriteStatus {
        self.stats.status().clone()
    }

    /// Whether the store is failing now: the last write attempt failed with a transient error
    /// (from the [`ErrorCallback`] of an outage until its [`ResumeCallback`]).
    pub fn failing(&self) -> bool {
        self.stats.failing.load(Ordering::Relaxed)
    }

    fn stop(&mut self) {
        // Closing the queue makes the thread write what is left and exit.
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            // A panic in the store has already been reported by the panic hook.
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An outage: writes have failed since `started`.
struct Outage {
    started: Instant,
    failed_attempts: u64,
    overflow_before: u64,
}

/// The writer thread's state.
struct Worker<'a> {
    store: &'a dyn ClientStore,
    stats: &'a Stats,
    after_acks: &'a OnceLock<AfterAcks>,
    options: WriterOptions,
    /// Activations whose write failed transiently, oldest first (their acks already called).
    buffer: VecDeque<Activation>,
    outage: Option<Outage>,
    /// Wait after the latest failure.
    backoff: Duration,
    /// When the buffer may be written next.
    next_attempt: Instant,
    /// Whether the store may have deferred work left ([`ClientStore::upkeep`]).
    upkeep_left: bool,
}

impl Worker<'_> {
    /// Take one message (blocking, or until the next retry is due), then whatever else is
    /// queued up to [`MAX_BATCH`] or the next flush request; retry the buffer when due; write
    /// the batch (or buffer it while the store fails); acknowledge the flush.
    fn run(mut self, receiver: &Receiver<Message>) {
        // The activations taken from the queue and, at the same index, their acks.
        let mut batch: Vec<Activation> = Vec::with_capacity(MAX_BATCH);
        let mut acks: Vec<Option<Ack>> = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = if self.buffer.is_empty() && self.upkeep_left {
                match receiver.recv_timeout(UPKEEP_IDLE) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => {
                        self.upkeep(true);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else if self.buffer.is_empty() {
                match receiver.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                }
            } else {
                let wait = self.next_attempt.saturating_duration_since(Instant::now());
                match receiver.recv_timeout(wait) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            let mut flush = None;
            let mut next = first;
            let mut yields = 0;
            loop {
                while let Some(message) = next.take() {
                    match message {
                        Message::Record(a, done) => {
                            self.stats.queued.fetch_sub(1, Ordering::AcqRel);
                            batch.push(a);
                            acks.push(done);
                        }
                        Message::Flush(sender) => {
                            flush = Some(sender);
                            break;
                        }
                    }
                    if batch.len() < MAX_BATCH {
                        next = receiver.try_recv().ok();
                    }
                }
                // Group commit: before writing, let the threads that submit (woken, like
                // this one, by the records' arrival) add theirs to this transaction. On a
                // host with one free CPU the writer would otherwise run as soon as the first
                // record wakes it and commit records one by one, each commit costing far
                // more than a record. Where submitters run on other CPUs this costs one
                // system call per transaction.
                if flush.is_some()
                    || batch.is_empty()
                    || batch.len() >= MAX_BATCH
                    || yields == GATHER_YIELDS
                {
                    break;
                }
                std::thread::yield_now();
                yields += 1;
                next = receiver.try_recv().ok();
                if next.is_none() {
                    break;
                }
            }
            let acked = acks.iter().any(Option::is_some);
            let forced = flush.is_some();
            if self.outage.is_none() || forced || Instant::now() >= self.next_attempt {
                let limit = if forced { usize::MAX } else { DRAIN_BATCHES };
                if self.drain(limit) {
                    self.write(&mut batch, &mut acks);
                }
            }
            // Not written (store failing, or the buffer not drained yet): after the buffer.
            for (a, done) in batch.drain(..).zip(acks.drain(..)) {
                self.push(a);
                if let Some(done) = done {
                    done(false);
                }
            }
            if acked {
                if let Some(after) = self.after_acks.get() {
                    after();
                }
            }
            if self.outage.is_none() {
                self.upkeep(false);
            }
            self.stats
                .buffered
                .store(self.buffer.len() as u64, Ordering::Relaxed);
            if let Some(flush) = flush {
                let _ = flush.send(());
            }
        }
        // The queue is closed: one last attempt, then what is left is lost.
        self.drain(usize::MAX);
        self.stats
            .errors
            .fetch_add(self.buffer.len() as u64, Ordering::Relaxed);
        self.buffer.clear();
        self.stats.buffered.store(0, Ordering::Relaxed);
    }

    /// A batch of the store's deferred work, if it wants one now (`idle`: nothing waits).
    /// A failure (the database busy or failing) leaves the work for after the next write
    /// (write failures themselves are reported by the writes).
    fn upkeep(&mut self, idle: bool) {
        self.upkeep_left = self.store.upkeep(idle).unwrap_or(false);
    }

    /// Writes the buffer, oldest first, in batches of [`MAX_BATCH`], at most `limit` of them.
    /// Returns whether the buffer is empty (and the store working) afterwards.
    fn drain(&mut self, limit: usize) -> bool {
        let mut batches = 0;
        while !self.buffer.is_empty() {
            if batches == limit {
                // More next round, after taking new activations (they queue behind).
                self.next_attempt = Instant::now();
                return false;
            }
            batches += 1;
            let n = self.buffer.len().min(MAX_BATCH);
            let result = self.store.record_batch(&self.buffer.make_contiguous()[..n]);
            match result {
                Ok(()) => {
                    self.buffer.drain(..n);
                    self.succeeded(n);
                }
                Err(e) if e.is_transient() => {
                    self.stats
                        .write_failed(&self.buffer.make_contiguous()[..n], &e);
                    self.failed(&e);
                    return false;
                }
                Err(e) => {
                    self.stats
                        .write_failed(&self.buffer.make_contiguous()[..n], &e);
                    let chunk: Vec<Activation> = self.buffer.drain(..n).collect();
                    let no_acks = (0..n).map(|_| None).collect();
                    let left = self.salvage(chunk, no_acks, &e);
                    if !left.is_empty() {
                        for a in left.into_iter().rev() {
                            self.buffer.push_front(a);
                        }
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Writes a new batch (the buffer is empty) and calls its acks, emptying both vectors;
    /// on a transient failure the batch goes to the buffer.
    fn write(&mut self, batch: &mut Vec<Activation>, acks: &mut Vec<Option<Ack>>) {
        if batch.is_empty() {
            return;
        }
        match self.store.record_batch(batch) {
            Ok(()) => {
                self.succeeded(batch.len());
                batch.clear();
                for done in acks.drain(..).flatten() {
                    done(true);
                }
            }
            Err(e) if e.is_transient() => {
                self.stats.write_failed(batch, &e);
                self.failed(&e);
                // The caller buffers the batch and calls its acks with `false`.
            }
            Err(e) => {
                self.stats.write_failed(batch, &e);
                let left = self.salvage(std::mem::take(batch), std::mem::take(acks), &e);
                for a in left {
                    self.push(a);
                }
            }
        }
    }

    /// After `batch` failed with the permanent error `e` (reported here): writes its
    /// activations one at a time, so that only those the store refuses are lost. Returns
    /// those not attempted because the store started failing transiently meanwhile (their
    /// acks called with `false`), in order.
    fn salvage(
        &mut self,
        batch: Vec<Activation>,
        acks: Vec<Option<Ack>>,
        e: &StoreError,
    ) -> Vec<Activation> {
        (self.options.on_error)(e);
        let mut left = Vec::new();
        for (a, done) in batch.into_iter().zip(acks) {
            let ok = if self.outage.is_some() {
                left.push(a);
                false
            } else {
                match self.store.record(&a) {
                    Ok(()) => {
                        self.succeeded(1);
                        true
                    }
                    Err(e) if e.is_transient() => {
                        self.stats.write_failed(std::slice::from_ref(&a), &e);
                        self.failed(&e);
                        left.push(a);
                        false
                    }
                    Err(e) => {
                        self.stats.write_failed(std::slice::from_ref(&a), &e);
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                }
            };
            if let Some(done) = done {
                done(ok);
            }
        }
        left
    }

    /// Adds `a` to the retry buffer, or drops and counts it when the buffer is full.
    fn push(&mut self, a: Activation) {
        if self.buffer.len() < self.options.buffer_capacity {
            self.buffer.push_back(a);
        } else {
            self.stats.overflow.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn succeeded(&mut self, n: usize) {
        self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
        self.stats.write_succeeded();
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        self.backoff = Duration::ZERO;
        if let Some(outage) = self.outage.take() {
            self.stats.failing.store(false, Ordering::Relaxed);
            if let Some(on_resume) = &self.options.on_resume {
                on_resume(&Resumed {
                    outage: outage.started.elapsed(),
                    failed_attempts: outage.failed_attempts,
                    buffered: self.buffer.len() as u64,
                    overflow: self.stats.overflow.load(Ordering::Relaxed) - outage.overflow_before,
                });
            }
        }
    }

    fn failed(&mut self, e: &StoreError) {
        match &mut self.outage {
            Some(outage) => outage.failed_attempts += 1,
            None => {
                self.outage = Some(Outage {
                    started: Instant::now(),
                    failed_attempts: 1,
                    overflow_before: self.stats.overflow.load(Ordering::Relaxed),
                });
                self.stats.failing.store(true, Ordering::Relaxed);
                (self.options.on_error)(e);
            }
        }
        self.backoff = if self.backoff.is_zero() {
            self.options.retry_initial
        } else {
            (self.backoff * 2).min(self.options.retry_max)
        };
        self.next_attempt = Instant::now() + self.backoff;
    }
}
