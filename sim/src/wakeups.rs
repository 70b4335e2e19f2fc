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

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
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

/// A heap of wake-ups that are never taken out when they move or are withdrawn, only marked
/// stale (their slot's generation has moved on) and dropped when they come to the top: moving
/// a timer, which the drivers do for every request, is one push. Past wake-ups are dropped
/// too, as the world never asks about the past again.
#[derive(Debug, Default)]
struct Inner {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Each registration's generation, by slot; a slot is reused once its registration is
    /// dropped, under a new generation.
    slots: Vec<u64>,
    free: Vec<usize>,
    live: usize,
    /// The latest time asked after: later questions may not ask about an earlier one.
    asked: Duration,
}

/// A wake-up: when, and whose (slot and generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Duration,
    slot: usize,
    generation: u64,
}

impl Entry {
    /// Whether the entry is its slot's current wake-up, not one moved on or withdrawn since.
    fn is_current(&self, slots: &[u64]) -> bool {
        slots[self.slot] == self.generation
    }
}

impl Inner {
    /// Moves `slot` to a new generation, its wake-up (if any) at `at`.
    fn place(&mut self, slot: usize, at: Option<Duration>) {
        self.slots[slot] += 1;
        let generation = self.slots[slot];
        if let Some(at) = at {
            self.heap.push(Reverse(Entry {
                at,
                slot,
                generation,
            }));
        }
        // Stale entries far in the future (a reply timeout moved on by every request) would
        // pile up before they come to the top: drop them once they outnumber the live ones.
        if self.heap.len() > 2 * self.live + 64 {
            let Inner { heap, slots, .. } = self;
            heap.retain(|Reverse(entry)| entry.is_current(slots));
        }
    }
}

impl Wakeups {
    /// No wake-ups yet.
    pub fn new() -> Arc<Wakeups> {
        Arc::default()
    }

    /// The earliest wake-up due after `after`. `after` never goes back from one question to
    /// the next (the world asks as its time goes on).
    ///
    /// A world that has ticked to `now` asks for those after the start of its last tick: tokio
    /// fires a timer at the first millisecond at or after its deadline, and a tick ends as its
    /// own timer fires, so a task woken at the end of the last tick may not have run yet; one
    /// woken earlier has (a host runs every task it can before its clock moves on). Older ones
    /// have fired, and a timer that has fired may keep its registration until it is reset.
    pub fn next_after(&self, after: Duration) -> Option<Duration> {
        let mut inner = self.inner.lock().expect("wakeups lock");
        debug_assert!(after >= inner.asked, "asked about the past");
        inner.asked = inner.asked.max(after);
        while let Some(&Reverse(entry)) = inner.heap.peek() {
            if entry.at > after && entry.is_current(&inner.slots) {
                return Some(entry.at);
            }
            inner.heap.pop();
        }
        None
    }

    /// Registers a wake-up at `at`, withdrawn when the registration is dropped.
    pub fn register(self: &Arc<Wakeups>, at: Duration) -> Registration {
        let slot = {
            let mut inner = self.inner.lock().expect("wakeups lock");
            inner.live += 1;
            let slot = inner.free.pop().unwrap_or_else(|| {
                inner.slots.push(0);
                inner.slots.len() - 1
            });
            inner.place(slot, Some(at));
            slot
        };
        Registration {
            wakeups: Arc::clone(self),
            slot,
        }
    }
}

/// One timer's or sleep's place in [`Wakeups`].
#[derive(Debug)]
pub struct Registration {
    wakeups: Arc<Wakeups>,
    slot: usize,
}

impl Registration {
    /// The wake-up is now due at `at`.
    pub fn move_to(&self, at: Duration) {
        let mut inner = self.wakeups.inner.lock().expect("wakeups lock");
        inner.place(self.slot, Some(at));
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self
            .wakeups
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.live -= 1;
        inner.place(self.slot, None);
        inner.free.push(self.slot);
    }
}

thread_local! {
    /// When the step the simulation is taking ends, in simulated time, while a world runs on
    /// this thread: no timer due after it can fire during the step.
    static STEP_END: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// Tells this thread's timers when the step being taken ends (`None` outside a run).
pub(crate) fn set_step_end(end: Option<Duration>) {
    STEP_END.with(|cell| cell.set(end));
}

/// The simulated time of tokio instant `at` on the current host.
fn sim_time(at: tokio::time::Instant) -> Duration {
    let now = tokio::time::Instant::now();
    crate::world::now() + at.saturating_duration_since(now)
}

/// In a simulation, `due` is `at`'s simulated time as the current host tells it.
fn debug_check(due: Duration, clock: Clock, at: Instant) {
    if cfg!(debug_assertions) && turmoil::sim_elapsed().is_some() {
        assert_eq!(
            due,
            sim_time(clock.to_tokio(at)),
            "a host's clock and the simulation's apart"
        );
    }
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
    /// The simulated time of the clock's epoch: a host's clock and the simulation's advance
    /// together, by the same ticks, so a deadline's simulated time is this far from its own
    /// (read once, as the simulation's time is found through the current host each time).
    epoch: Duration,
    at: Instant,
    /// `at` in simulated time.
    due: Duration,
    registration: Option<Registration>,
}

impl SimTimer {
    /// Outside a simulation, simulated time is counted from the clock's epoch.
    pub(crate) fn new(clock: Clock, at: Instant, wakeups: Option<&Arc<Wakeups>>) -> SimTimer {
        let now = clock.now();
        let epoch = crate::world::now().saturating_sub(now.since_epoch());
        let due = epoch + at.max(now).since_epoch();
        debug_check(due, clock, at);
        SimTimer {
            timer: clock.timer(at),
            clock,
            epoch,
            at,
            due,
            registration: wakeups.map(|w| w.register(due)),
        }
    }
}

impl Future for SimTimer {
    type Output = ();

    /// A timer polled again by the task it is registered with, due after the step under way
    /// ends, answers `Pending` without reading tokio's sleep: a driver polls its timer at
    /// every wake-up, and the sleep, in memory of its own, is a cache miss each time once
    /// there are thousands of them.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let later = STEP_END.with(Cell::get).is_some_and(|end| end < self.due);
        if later && self.timer.waits_for(cx.waker()) {
            return Poll::Pending;
        }
        Pin::new(&mut self.timer).poll(cx)
    }
}

impl SimTimer {
    /// The timer kept in `slot`, due at `at` (`now` just read from its clock): made by `make`
    /// at the first wait, moved for each later one.
    pub(crate) fn arm(
        slot: &mut Option<SimTimer>,
        at: Instant,
        now: Instant,
        make: impl FnOnce() -> SimTimer,
    ) -> &mut SimTimer {
        if let Some(timer) = slot {
            timer.reset_at(at, now);
        }
        slot.get_or_insert_with(make)
    }

    /// [`Timer::reset`] by a caller that has just read the timer's clock: `now`.
    pub(crate) fn reset_at(&mut self, at: Instant, now: Instant) {
        if at == self.at {
            return;
        }
        self.at = at;
        // A deadline already passed is due now, as tokio fires it.
        self.due = self.epoch + at.max(now).since_epoch();
        debug_check(self.due, self.clock, at);
        self.timer.reset(at);
        if let Some(registration) = &self.registration {
            registration.move_to(self.due);
        }
    }
}

impl Timer for SimTimer {
    fn reset(&mut self, at: Instant) {
        if at != self.at {
            self.reset_at(at, self.clock.now());
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
        early.move_to(ms(70));
        assert_eq!(wakeups.next_after(ms(19)), Some(ms(50)));
        drop(late);
        assert_eq!(wakeups.next_after(ms(19)), Some(ms(70)));
        assert_eq!(wakeups.next_after(ms(70)), None);
        early.move_to(ms(90));
        assert_eq!(wakeups.next_after(ms(70)), Some(ms(90)));
        drop(early);
        assert_eq!(wakeups.next_after(ms(70)), None);
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

    #[test]
    fn a_reused_slot_does_not_revive_its_old_wake_ups() {
        let wakeups = Wakeups::new();
        let first = wakeups.register(ms(10));
        drop(first);
        let second = wakeups.register(ms(40));
        assert_eq!(wakeups.next_after(ms(0)), Some(ms(40)));
        second.move_to(ms(60));
        assert_eq!(wakeups.next_after(ms(0)), Some(ms(60)));
    }

    #[test]
    fn withdrawn_wake_ups_do_not_pile_up() {
        let wakeups = Wakeups::new();
        let gone: Vec<_> = (0..1000).map(|i| wakeups.register(ms(i))).collect();
        drop(gone);
        let timer = wakeups.register(ms(5000));
        for n in 0..10_000 {
            timer.move_to(ms(6000 + n));
        }
        assert!(wakeups.inner.lock().unwrap().heap.len() <= 2 + 64);
        assert_eq!(wakeups.next_after(ms(0)), Some(ms(6000 + 9999)));
    }

    #[test]
    fn moved_wake_ups_do_not_pile_up() {
        let wakeups = Wakeups::new();
        let timers: Vec<_> = (0..10).map(|i| wakeups.register(ms(1000 + i))).collect();
        for n in 0..10_000 {
            timers[n % 10].move_to(ms(2000 + n as u64));
        }
        assert!(wakeups.inner.lock().unwrap().heap.len() <= 2 * 10 + 64);
        assert_eq!(wakeups.next_after(ms(0)), Some(ms(2000 + 9990)));
    }

    /// Polls `timer` with `waker`: whether it fired.
    fn fired(timer: &mut SimTimer, waker: &std::task::Waker) -> bool {
        Pin::new(timer)
            .poll(&mut Context::from_waker(waker))
            .is_ready()
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_timer_due_after_the_step_is_not_read_and_one_due_by_its_end_is() {
        // Outside a simulation, a deadline in simulated time is the time left until it, as
        // of when it was set.
        let clock = Clock::start();
        let at = |n| Instant::from_epoch(ms(n));
        // Wakers of a task of their own: `Waker::noop`'s clones need not tell themselves
        // the same (`will_wake`) in every build.
        let waker = &std::sync::Arc::new(Nothing).into();
        let mut timer = SimTimer::new(clock, at(10), None);
        set_step_end(Some(ms(10)));
        assert!(!fired(&mut timer, waker));
        tokio::time::advance(ms(10)).await;
        // Due at the very end of the step: it fires in it.
        assert!(
            fired(&mut timer, waker),
            "a timer due at the step's end was skipped"
        );

        // A step said to end before the deadline: the timer is taken at its word and not
        // read, by the task it waits for, even once tokio's sleep has passed.
        timer.reset(at(20));
        assert!(!fired(&mut timer, waker));
        tokio::time::advance(ms(10)).await;
        set_step_end(Some(ms(9)));
        assert!(
            !fired(&mut timer, waker),
            "a timer due after the step was read"
        );
        // Another task's poll, or no step under way, reads it.
        let other = std::sync::Arc::new(Nothing).into();
        assert!(fired(&mut timer, &other));
        timer.reset(at(30));
        assert!(!fired(&mut timer, waker));
        tokio::time::advance(ms(10)).await;
        set_step_end(None);
        assert!(fired(&mut timer, waker));
    }

    #[cfg(debug_assertions)]
    #[test]
    fn a_due_apart_from_the_hosts_simulated_time_is_caught_in_debug_builds() {
        let mut sim = turmoil::Builder::new().build();
        sim.client("node", async {
            tokio::time::sleep(ms(30)).await;
            let clock = Clock::start();
            let at = Instant::from_epoch(ms(1000));
            // 30 ms into the simulation, a clock started now: `at` is due at 1,030 ms.
            debug_check(ms(1030), clock, at);
            let apart = std::panic::catch_unwind(|| debug_check(ms(1000), clock, at));
            assert!(apart.is_err(), "a due 30 ms off passed");
            Ok(())
        });
        sim.run().unwrap();
    }

    struct Nothing;

    impl std::task::Wake for Nothing {
        fn wake(self: std::sync::Arc<Self>) {}
    }
}
