//! The drivers' clock: tokio's time (real, or simulated under turmoil) read as core
//! [`Instant`]s since the driver started.

use crate::time::Instant;

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

    /// The tokio instant for a core instant.
    pub fn to_tokio(&self, at: Instant) -> tokio::time::Instant {
        self.epoch + at.since_epoch()
    }
}
