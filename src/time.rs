//! Time as the sans-IO core sees it: a point on the driver's clock, handed in by the driver.
//!
//! The core never reads a clock. Each driver picks an epoch (tokio: when it started; the
//! simulator: virtual time zero; replay: the capture's first packet) and passes `now` as the time
//! since then, so the same inputs always give the same outputs.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time: the time since the driver's epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The last instant there is: a deadline that never comes.
    pub const MAX: Instant = Instant(Duration::MAX);

    /// The instant `since` after the epoch.
    pub const fn from_epoch(since: Duration) -> Instant {
        Instant(since)
    }

    /// The time since the epoch.
    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Instant::from_epoch(Duration::from_secs(5));
        assert_eq!(t + Duration::from_secs(1) - t, Duration::from_secs(1));
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(
            (Instant::from_epoch(Duration::MAX) + Duration::from_secs(1)).since_epoch(),
            Duration::MAX
        );
    }
}
