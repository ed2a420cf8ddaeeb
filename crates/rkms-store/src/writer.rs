//! [`Writer`]: a background thread that writes reported activations to a store in batches,
//! so the server's request path never waits on the disk.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::{Activation, ClientStore, StoreError};

/// Default number of activations the queue holds before [`Writer::submit`] drops.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// Most activations written in one transaction.
pub const MAX_BATCH: usize = 512;

/// Called on the writer thread for every failed batch write.
pub type ErrorCallback = Box<dyn Fn(&StoreError) + Send>;

/// Called once an activation's batch is committed (`true`) or failed (`false`).
pub type Ack = Box<dyn FnOnce(bool) + Send>;

enum Message {
    Record(Activation, Option<Ack>),
    Flush(SyncSender<()>),
}

#[derive(Debug, Default)]
struct Stats {
    written: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
}

/// Owns a store on a dedicated thread fed by a bounded queue. Share it by reference (it is
/// `Sync`); dropping it behaves like [`Writer::shutdown`].
pub struct Writer {
    sender: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
    store: Arc<dyn ClientStore>,
    stats: Arc<Stats>,
    /// Inline mode: write on the caller's thread (for in-memory stores, which never block).
    inline: Option<std::sync::Mutex<ErrorCallback>>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .field("errors", &self.errors())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer thread with a queue of [`DEFAULT_QUEUE_CAPACITY`]. `on_error` is
    /// called (on the writer thread) with every write failure; the writer keeps going.
    pub fn new(store: Arc<dyn ClientStore>, on_error: ErrorCallback) -> Self {
        Self::with_capacity(store, DEFAULT_QUEUE_CAPACITY, on_error)
    }

    /// A writer without a thread: every activation is written on the caller's thread at once.
    /// For stores that never touch a disk ([`crate::MemoryStore`]), where handing each record
    /// to another thread would cost more than writing it.
    pub fn inline(store: Arc<dyn ClientStore>, on_error: ErrorCallback) -> Self {
        Self {
            sender: None,
            thread: None,
            store,
            stats: Arc::new(Stats::default()),
            inline: Some(std::sync::Mutex::new(on_error)),
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
        let (sender, receiver) = mpsc::sync_channel(capacity.max(1));
        let stats = Arc::new(Stats::default());
        let thread = {
            let store = Arc::clone(&store);
            let stats = Arc::clone(&stats);
            std::thread::Builder::new()
                .name("rkms-store-writer".into())
                .spawn(move || run(&*store, &receiver, &stats, &on_error))
                .expect("cannot start the client store writer thread")
        };
        Self {
            sender: Some(sender),
            thread: Some(thread),
            store,
            stats,
            inline: None,
        }
    }

    /// Queues `a` for writing without blocking. Returns `false` (and counts it in
    /// [`Writer::dropped`]) when the queue is full or the writer thread is gone.
    pub fn submit(&self, a: Activation) -> bool {
        self.send(a, None)
    }

    /// Like [`Writer::submit`], and calls `ack` on the writer thread once the transaction
    /// holding `a` is committed (`true`) or has failed (`false`). When the activation is not
    /// queued (`false` returned), `ack` is dropped uncalled.
    pub fn submit_with_ack(&self, a: Activation, ack: Ack) -> bool {
        self.send(a, Some(ack))
    }

    fn send(&self, a: Activation, ack: Option<Ack>) -> bool {
        if let Some(on_error) = &self.inline {
            let ok = match self.store.record(&a) {
                Ok(()) => {
                    self.stats.written.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    (on_error.lock().unwrap_or_else(|p| p.into_inner()))(&e);
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    false
                }
            };
            if let Some(done) = ack {
                done(ok);
            }
            return true;
        }
        let Some(sender) = &self.sender else {
            return false;
        };
        match sender.try_send(Message::Record(a, ack)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Blocks until every activation submitted before the call has been written (or has
    /// failed and been reported).
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

    /// Flushes, stops the thread and waits for it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// The store the writer writes to, for reads (`list`, `distinct_clients_since` …).
    pub fn store(&self) -> &Arc<dyn ClientStore> {
        &self.store
    }

    /// Activations written successfully so far.
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Activations refused by [`Writer::submit`] because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Activations lost because their batch failed to write.
    pub fn errors(&self) -> u64 {
        self.stats.errors.load(Ordering::Relaxed)
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

/// The writer thread: take one message (blocking), then whatever else is queued up to
/// [`MAX_BATCH`] or the next flush request, write it as one transaction, acknowledge flushes.
fn run(
    store: &dyn ClientStore,
    receiver: &Receiver<Message>,
    stats: &Stats,
    on_error: &(dyn Fn(&StoreError) + Send),
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut acks: Vec<Ack> = Vec::new();
    while let Ok(first) = receiver.recv() {
        let mut ack = None;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(a, done) => {
                    batch.push(a);
                    acks.extend(done);
                }
                Message::Flush(sender) => {
                    ack = Some(sender);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = receiver.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let ok = match store.record_batch(&batch) {
                Ok(()) => {
                    stats.written.fetch_add(n, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    on_error(&e);
                    stats.errors.fetch_add(n, Ordering::Relaxed);
                    false
                }
            };
            batch.clear();
            for done in acks.drain(..) {
                done(ok);
            }
        }
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }
}
