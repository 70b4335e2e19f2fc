//! The inet loader's timings: OTP's constants as one value, so that other values can be tried.
//!
//! Line numbers cite OTP 25.2.3: `erts-13.1.5/src/erl_prim_loader.erl` and
//! `kernel-8.5.3/src/inet_boot.hrl`. The constants are the same in every release from 2009 to
//! OTP 29.

use std::time::Duration;

/// How long the loader waits for what, and how often it asks.
///
/// [`LoaderTimings::otp`] (also the [`Default`]) is what `erl_prim_loader` does; set fields to
/// try others, e.g. `LoaderTimings { collect_window: Duration::from_millis(50),
/// ..LoaderTimings::otp() }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LoaderTimings {
    /// How long to wait for answers after a query; the wait starts over whenever any datagram
    /// arrives, garbage included, because each one re-enters the `receive … after Delay`.
    /// OTP: `EBOOT_REQUEST_DELAY`, 500 ms (inet_boot.hrl:30; `find_collect`,
    /// erl_prim_loader.erl:682–694).
    pub collect_window: Duration,
    /// Queries per discovery round; a round ends early after a window in which an answer of
    /// priority 0 had been collected. OTP: `EBOOT_RETRY`, 3 (inet_boot.hrl:29; `find_loop/5`,
    /// erl_prim_loader.erl:676–680, and `keymember(0, 1, Acc)` at 696).
    pub sends_per_round: u32,
    /// Sleep after a round with no answer, for the first [`LoaderTimings::short_sleeps`]
    /// consecutive such rounds. OTP: `EBOOT_SHORT_RETRY_SLEEP`, 10 s (inet_boot.hrl:31;
    /// `find_loop/8`, erl_prim_loader.erl:663–664).
    pub short_sleep: Duration,
    /// How many consecutive empty rounds sleep [`LoaderTimings::short_sleep`]; the count starts
    /// over whenever a round gets an answer. OTP: `EBOOT_UNSUCCESSFUL_TRIES`, 10
    /// (inet_boot.hrl:32; erl_prim_loader.erl:663–669, reset by `find_master` at 629–643).
    pub short_sleeps: u32,
    /// Sleep after each later empty round. OTP: `EBOOT_LONG_RETRY_SLEEP`, 60 s
    /// (inet_boot.hrl:33; erl_prim_loader.erl:667).
    pub long_sleep: Duration,
    /// How long one TCP connect may take before the next server is tried. OTP: `tcp_timeout()`,
    /// 15 s (erl_prim_loader.erl:810, used at 823).
    pub connect_timeout: Duration,
    /// How long to wait for a reply before closing, rediscovering and resending. OTP: the
    /// state's `timeout`, which is `INET_IDLE_TIMEOUT` whenever a connection is open, 60 s
    /// (erl_prim_loader.erl:77, set at 149 and 748, used at 774).
    pub reply_timeout: Duration,
    /// How long a connection may stay unused before the loader closes it. OTP: the main loop's
    /// `after St0#state.timeout`, `INET_IDLE_TIMEOUT`, 60 s (erl_prim_loader.erl:77, 347;
    /// `inet_timeout_handler` at 712).
    pub idle_timeout: Duration,
}

impl LoaderTimings {
    /// OTP's values.
    pub const fn otp() -> LoaderTimings {
        LoaderTimings {
            collect_window: Duration::from_millis(500),
            sends_per_round: 3,
            short_sleep: Duration::from_secs(10),
            short_sleeps: 10,
            long_sleep: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            reply_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl Default for LoaderTimings {
    fn default() -> LoaderTimings {
        LoaderTimings::otp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_values() {
        let t = LoaderTimings::default();
        assert_eq!(t, LoaderTimings::otp());
        assert_eq!(t.collect_window, Duration::from_millis(500));
        assert_eq!(t.sends_per_round, 3);
        assert_eq!(
            (t.short_sleep, t.short_sleeps),
            (Duration::from_secs(10), 10)
        );
        assert_eq!(t.long_sleep, Duration::from_secs(60));
        assert_eq!(t.connect_timeout, Duration::from_secs(15));
        assert_eq!(t.reply_timeout, Duration::from_secs(60));
        assert_eq!(t.idle_timeout, Duration::from_secs(60));
    }
}
