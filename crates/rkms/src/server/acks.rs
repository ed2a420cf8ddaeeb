//! Hands the store writer's acknowledgements to the connections waiting for them with one
//! wake-up of the runtime per transaction.
//!
//! With a durable store every answer waits until its record is committed. The writer thread
//! acknowledges each record; if each acknowledgement woke its connection's task directly,
//! each would be a wake-up of the runtime from another thread (a system call, and on a host
//! with one CPU a switch between the two threads per record). Here an acknowledgement only
//! queues the result; once the writer has acknowledged a whole transaction it wakes one
//! task on the runtime ([`AckQueue::deliver`]), which passes every queued result on: waking
//! tasks from the runtime's own thread costs no system call.

use std::sync::{Arc, Mutex, PoisonError};

use rkms_store::{Ack, Writer};
use tokio::sync::{oneshot, Notify};

/// Results acknowledged by the writer thread and not yet passed on to their connections.
#[derive(Debug, Default)]
pub(crate) struct AckQueue {
    done: Mutex<Vec<(oneshot::Sender<bool>, bool)>>,
    wake: Notify,
}

impl AckQueue {
    /// A queue fed by `writer`'s acknowledgements, or `None` when the writer already hands
    /// its acknowledgements to another queue (connections then get them one by one).
    pub(crate) fn attach(writer: &Writer) -> Option<Arc<Self>> {
        let queue = Arc::new(Self::default());
        let woken = Arc::clone(&queue);
        writer
            .set_after_acks(Box::new(move || woken.wake.notify_one()))
            .then_some(queue)
    }

    /// An acknowledgement that queues its result for `tx` (passed on by [`Self::deliver`]).
    pub(crate) fn ack(self: &Arc<Self>, tx: oneshot::Sender<bool>) -> Ack {
        let queue = Arc::clone(self);
        Box::new(move |written| {
            queue
                .done
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((tx, written));
        })
    }

    /// Passes queued results on after every transaction, until the task is dropped.
    pub(crate) async fn deliver(self: Arc<Self>) {
        let mut batch = Vec::new();
        loop {
            self.wake.notified().await;
            std::mem::swap(
                &mut batch,
                &mut *self.done.lock().unwrap_or_else(PoisonError::into_inner),
            );
            for (tx, written) in batch.drain(..) {
                // The connection may have stopped waiting (timeout, closed).
                let _ = tx.send(written);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkms_store::{Activation, ClientStore, MemoryStore};
    use uuid::Uuid;

    fn activation() -> Activation {
        Activation {
            cmid: Uuid::new_v4(),
            application_id: Uuid::from_u128(1),
            sku_id: Uuid::from_u128(2),
            kms_id: Uuid::from_u128(3),
            workstation: "pc".into(),
            license_status: 2,
            grace_minutes: 0,
            is_vm: false,
            protocol: "6.0".into(),
            time: 1_700_000_000,
            address: "127.0.0.1".into(),
            epid: String::new(),
            hresult: 0,
        }
    }

    #[tokio::test]
    async fn acknowledgements_reach_their_waiters_through_one_delivery_task() {
        let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
        let writer = Writer::new(store.clone(), Box::new(|_| {}));
        let queue = AckQueue::attach(&writer).expect("first queue attaches");
        // A second queue cannot take over the same writer.
        assert!(AckQueue::attach(&writer).is_none());
        let delivery = tokio::spawn(queue.clone().deliver());
        let mut waiting = Vec::new();
        for _ in 0..50 {
            let (tx, rx) = oneshot::channel();
            assert!(writer.submit_with_ack(activation(), queue.ack(tx)));
            waiting.push(rx);
        }
        for rx in waiting {
            let written = tokio::time::timeout(std::time::Duration::from_secs(5), rx)
                .await
                .expect("acknowledged in time")
                .expect("result delivered");
            assert!(written);
        }
        assert_eq!(store.count().unwrap(), 50);
        delivery.abort();
    }

    #[tokio::test]
    async fn without_the_delivery_task_nothing_is_passed_on() {
        let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
        let writer = Writer::new(store, Box::new(|_| {}));
        let queue = AckQueue::attach(&writer).unwrap();
        let (tx, rx) = oneshot::channel();
        assert!(writer.submit_with_ack(activation(), queue.ack(tx)));
        writer.flush();
        // Queued, not delivered: the results wait for the delivery task.
        assert_eq!(queue.done.lock().unwrap().len(), 1);
        tokio::spawn(queue.clone().deliver());
        assert!(rx.await.unwrap());
    }
}
