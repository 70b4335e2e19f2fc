//! The drivers' clock: tokio's time (real, or simulated under turmoil) read as core
//! [`Instant`]s since the driver started, and timers on it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::time::Instant;

use super::runtime::Timer;

/// A driver's clock, counting from its epoch.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: tokio::time::Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn start() -> Clock {
        Clock {
            epoch: tokio::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        Instant::from_epoch(self.epoch.elapsed())
    }

    /// A timer firing at `at`.
    pub fn timer(&self, at: Instant) -> TokioTimer {
        TokioTimer {
            sleep: Box::pin(tokio::time::sleep_until(self.to_tokio(at))),
            clock: *self,
            waiting: None,
        }
    }

    /// The tokio instant for a core instant.
    pub fn to_tokio(&self, at: Instant) -> tokio::time::Instant {
        self.epoch + at.since_epoch()
    }
}

/// A tokio `Sleep` on a [`Clock`]: real time, or turmoil's simulated time.
#[derive(Debug)]
pub struct TokioTimer {
    sleep: Pin<Box<tokio::time::Sleep>>,
    clock: Clock,
    /// The waker the sleep holds, once a poll has left it waiting at its deadline.
    waiting: Option<Waker>,
}

impl Future for TokioTimer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A driver polls its timer every time anything wakes it, and nearly always the timer
        // is where it was: still due, holding this very waker. Polling the sleep again would
        // only register the same waker once more.
        let same_waker = self
            .waiting
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if same_waker && !self.sleep.is_elapsed() {
            return Poll::Pending;
        }
        let poll = self.sleep.as_mut().poll(cx);
        self.waiting = poll.is_pending().then(|| cx.waker().clone());
        poll
    }
}

impl TokioTimer {
    /// Whether the timer's last poll left it waiting, registered with a waker that wakes the
    /// same task as `waker`, and it has not been moved since: until its deadline, polling it
    /// again with `waker` can only answer `Pending`.
    pub fn waits_for(&self, waker: &Waker) -> bool {
        self.waiting.as_ref().is_some_and(|w| w.will_wake(waker))
    }
}

impl Timer for TokioTimer {
    fn reset(&mut self, at: Instant) {
        let at = self.clock.to_tokio(at);
        // A driver resets its timer on every turn of its loop, mostly to where it is.
        if self.sleep.deadline() != at {
            self.sleep.as_mut().reset(at);
            self.waiting = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Polls `timer` once: whether it has fired.
    fn fired(timer: &mut TokioTimer) -> bool {
        let waker = std::task::Waker::noop();
        Pin::new(timer)
            .poll(&mut Context::from_waker(waker))
            .is_ready()
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_timer_fires_at_its_deadline_and_a_reset_moves_it() {
        let clock = Clock::start();
        let ms = |n| Instant::from_epoch(Duration::from_millis(n));
        let mut timer = clock.timer(ms(100));
        assert!(!fired(&mut timer));
        tokio::time::advance(Duration::from_millis(99)).await;
        assert!(!fired(&mut timer), "fired early");
        timer.reset(ms(300));
        tokio::time::advance(Duration::from_millis(2)).await;
        assert!(!fired(&mut timer), "the reset did not move it");
        // Reset to where it is: still due at 300.
        timer.reset(ms(300));
        tokio::time::advance(Duration::from_millis(199)).await;
        assert!(fired(&mut timer));
        // A fired timer reset to a later deadline waits again.
        timer.reset(ms(400));
        assert!(!fired(&mut timer));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(fired(&mut timer));
    }

    /// Counts its wake-ups.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_timer_wakes_the_waker_it_was_polled_with_last() {
        let clock = Clock::start();
        let mut timer = clock.timer(Instant::from_epoch(Duration::from_millis(100)));
        let (first, second) = (
            std::sync::Arc::new(Count(Default::default())),
            std::sync::Arc::new(Count(Default::default())),
        );
        let mut poll = |count: &std::sync::Arc<Count>| {
            let waker = Waker::from(std::sync::Arc::clone(count));
            Pin::new(&mut timer).poll(&mut Context::from_waker(&waker))
        };
        assert!(poll(&first).is_pending());
        assert!(poll(&first).is_pending());
        // Another task polls it now: the new waker is the one to wake.
        assert!(poll(&second).is_pending());
        tokio::time::advance(Duration::from_millis(100)).await;
        let woken = |count: &Count| count.0.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!((woken(&first), woken(&second)), (0, 1));
        assert!(poll(&second).is_ready());
    }
}
