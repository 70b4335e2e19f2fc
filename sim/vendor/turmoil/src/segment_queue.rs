//! A stream socket's queue of received segments, from the host (which delivers them in
//! order) to the socket's reader: the part of `tokio::sync::mpsc` turmoil uses, as a
//! `VecDeque` behind a lock. A simulation runs on one thread, so the lock is never contended,
//! and every segment delivered and read went through the channel's atomics and blocks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// A queue holding at most `capacity` values.
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Mutex::new(Shared {
        queue: VecDeque::new(),
        waker: None,
        sender: true,
        receiver: true,
    }));
    (
        Sender {
            shared: Arc::clone(&shared),
            capacity,
        },
        Receiver { shared },
    )
}

struct Shared<T> {
    queue: VecDeque<T>,
    /// The reader waiting for a value.
    waker: Option<Waker>,
    sender: bool,
    receiver: bool,
}

fn lock<T>(shared: &Mutex<Shared<T>>) -> MutexGuard<'_, Shared<T>> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why a value could not be sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError {
    /// The queue holds `capacity` values.
    Full,
    /// The receiver is gone.
    Closed,
}

/// The sending side.
pub(crate) struct Sender<T> {
    shared: Arc<Mutex<Shared<T>>>,
    capacity: usize,
}

impl<T> Sender<T> {
    /// Queues `value` if the receiver is there and the queue has room, and wakes the reader.
    /// `value` is made only then.
    pub(crate) fn try_send_with(&self, value: impl FnOnce() -> T) -> Result<(), TrySendError> {
        let mut shared = lock(&self.shared);
        if !shared.receiver {
            return Err(TrySendError::Closed);
        }
        if shared.queue.len() >= self.capacity {
            return Err(TrySendError::Full);
        }
        shared.queue.push_back(value());
        if let Some(waker) = shared.waker.take() {
            drop(shared);
            waker.wake();
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut shared = lock(&self.shared);
            shared.sender = false;
            shared.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The receiving side.
pub(crate) struct Receiver<T> {
    shared: Arc<Mutex<Shared<T>>>,
}

impl<T> Receiver<T> {
    /// The next value; `None` once the sender is gone and the queue is empty.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut shared = lock(&self.shared);
        if let Some(value) = shared.queue.pop_front() {
            return Poll::Ready(Some(value));
        }
        if !shared.sender {
            return Poll::Ready(None);
        }
        match &mut shared.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            waker => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next value, if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        lock(&self.shared).queue.pop_front()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut shared = lock(&self.shared);
        shared.receiver = false;
        shared.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll<T>(rx: &mut Receiver<T>) -> Poll<Option<T>> {
        rx.poll_recv(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn values_come_out_in_order_up_to_the_capacity() {
        let (tx, mut rx) = channel(2);
        assert_eq!(poll(&mut rx), Poll::Pending);
        assert_eq!(tx.try_send_with(|| 1), Ok(()));
        assert_eq!(tx.try_send_with(|| 2), Ok(()));
        assert_eq!(tx.try_send_with(|| 3), Err(TrySendError::Full));
        assert_eq!(poll(&mut rx), Poll::Ready(Some(1)));
        assert_eq!(tx.try_send_with(|| 3), Ok(()));
        assert_eq!(rx.try_recv(), Some(2));
        drop(tx);
        assert_eq!(poll(&mut rx), Poll::Ready(Some(3)));
        assert_eq!(poll(&mut rx), Poll::Ready(None));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn a_gone_receiver_closes_the_queue() {
        let (tx, rx) = channel::<u8>(2);
        drop(rx);
        assert_eq!(tx.try_send_with(|| unreachable!()), Err(TrySendError::Closed));
    }
}
