//! The simulated hosts' pending wake-ups: every timer and sleep of the simulated code registers
//! when it is due, so that the world can step over stretches in which nothing is due and no
//! message is on its way, rather than tick through them a millisecond at a time.
//!
//! A stretch is stepped over only up to the tick before the earliest wake-up, which then fires in
//! an ordinary tick, on time: stepping over changes the cost of a run, not when things happen
//! (tokio's scheduler does draw its order among tasks ready at once per step, so ties may fall
//! otherwise than in a run ticked through).
//! Times are simulated time since the start of the simulation (each host's tokio clock has an
//! epoch of its own).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use erlboot::net::{Clock, Timer, TokioTimer};
use erlboot::time::Instant;

/// Every pending wake-up of a simulation.
#[derive(Debug, Default)]
pub struct Wakeups {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    due: BTreeSet<(Duration, u64)>,
    by_id: BTreeMap<u64, Duration>,
}

impl Wakeups {
    /// No wake-ups yet.
    pub fn new() -> Arc<Wakeups> {
        Arc::default()
    }

    /// The earliest wake-up due after `after`.
    ///
    /// A world that has ticked to `now` asks for those after the start of its last tick: tokio
    /// fires a timer at the first millisecond at or after its deadline, and a tick ends as its
    /// own timer fires, so a task woken at the end of the last tick may not have run yet; one
    /// woken earlier has (a host runs every task it can before its clock moves on). Older ones
    /// have fired, and a timer that has fired may keep its registration until it is reset.
    pub fn next_after(&self, after: Duration) -> Option<Duration> {
        let inner = self.inner.lock().expect("wakeups lock");
        // Ids are below u64::MAX: every wake-up at `after` sorts before the bound.
        inner
            .due
            .range((after, u64::MAX)..)
            .next()
            .map(|&(at, _)| at)
    }

    /// Registers a wake-up at `at`, withdrawn when the registration is dropped.
    pub fn register(self: &Arc<Wakeups>, at: Duration) -> Registration {
        let id = {
            let mut inner = self.inner.lock().expect("wakeups lock");
            inner.next_id += 1;
            inner.next_id
        };
        let registration = Registration {
            wakeups: Arc::clone(self),
            id,
        };
        registration.move_to(at);
        registration
    }
}

/// One timer's or sleep's place in [`Wakeups`].
#[derive(Debug)]
pub struct Registration {
    wakeups: Arc<Wakeups>,
    id: u64,
}

impl Registration {
    /// The wake-up is now due at `at`.
    pub fn move_to(&self, at: Duration) {
        let mut inner = self.wakeups.inner.lock().expect("wakeups lock");
        if let Some(old) = inner.by_id.insert(self.id, at) {
            inner.due.remove(&(old, self.id));
        }
        inner.due.insert((at, self.id));
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self
            .wakeups
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(at) = inner.by_id.remove(&self.id) {
            inner.due.remove(&(at, self.id));
        }
    }
}

/// The simulated time of tokio instant `at` on the current host.
fn sim_time(at: tokio::time::Instant) -> Duration {
    let now = tokio::time::Instant::now();
    crate::world::now() + at.saturating_duration_since(now)
}

/// Sleeps `duration` of simulated time, registered in `wakeups` if given.
pub(crate) async fn sleep(wakeups: Option<&Arc<Wakeups>>, duration: Duration) {
    sleep_until(wakeups, tokio::time::Instant::now() + duration).await;
}

/// Sleeps until tokio instant `at`, registered in `wakeups` if given.
pub(crate) async fn sleep_until(wakeups: Option<&Arc<Wakeups>>, at: tokio::time::Instant) {
    let _registration = wakeups.map(|w| w.register(sim_time(at)));
    tokio::time::sleep_until(at).await;
}

/// A driver's timer on the simulated clock, its deadline registered in [`Wakeups`] when the
/// runtime has them.
#[derive(Debug)]
pub struct SimTimer {
    timer: TokioTimer,
    clock: Clock,
    at: Instant,
    registration: Option<Registration>,
}

impl SimTimer {
    pub(crate) fn new(clock: Clock, at: Instant, wakeups: Option<&Arc<Wakeups>>) -> SimTimer {
        SimTimer {
            timer: clock.timer(at),
            clock,
            at,
            registration: wakeups.map(|w| w.register(sim_time(clock.to_tokio(at)))),
        }
    }
}

impl Future for SimTimer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.timer).poll(cx)
    }
}

impl Timer for SimTimer {
    fn reset(&mut self, at: Instant) {
        if at == self.at {
            return;
        }
        self.at = at;
        self.timer.reset(at);
        if let Some(registration) = &self.registration {
            registration.move_to(sim_time(self.clock.to_tokio(at)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_next_wake_up_is_the_earliest_still_to_come() {
        let wakeups = Wakeups::new();
        assert_eq!(wakeups.next_after(ms(0)), None);
        let late = wakeups.register(ms(50));
        let early = wakeups.register(ms(20));
        let _past = wakeups.register(ms(5));
        assert_eq!(wakeups.next_after(ms(10)), Some(ms(20)));
        assert_eq!(wakeups.next_after(ms(19)), Some(ms(20)));
        assert_eq!(wakeups.next_after(ms(20)), Some(ms(50)));
        early.move_to(ms(70));
        assert_eq!(wakeups.next_after(ms(10)), Some(ms(50)));
        drop(late);
        assert_eq!(wakeups.next_after(ms(10)), Some(ms(70)));
        drop(early);
        assert_eq!(wakeups.next_after(ms(10)), None);
        assert_eq!(wakeups.next_after(ms(0)), Some(ms(5)));
    }

    #[test]
    fn wake_ups_at_the_same_time_are_kept_apart() {
        let wakeups = Wakeups::new();
        let a = wakeups.register(ms(30));
        let b = wakeups.register(ms(30));
        drop(a);
        assert_eq!(wakeups.next_after(ms(0)), Some(ms(30)));
        drop(b);
        assert_eq!(wakeups.next_after(ms(0)), None);
    }
}
