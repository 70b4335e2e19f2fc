//! The drivers' clock: tokio's time (real, or simulated under turmoil) read as core
//! [`Instant`]s since the driver started, and timers on it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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
}

impl Future for TokioTimer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.sleep.as_mut().poll(cx)
    }
}

impl Timer for TokioTimer {
    fn reset(&mut self, at: Instant) {
        let at = self.clock.to_tokio(at);
        // A driver resets its timer on every turn of its loop, mostly to where it is.
        if self.sleep.deadline() != at {
            self.sleep.as_mut().reset(at);
        }
    }
}
