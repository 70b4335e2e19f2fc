//! What /proc says about a server process (CPU time, peak RSS) and about the network
//! namespace (SYNs dropped on a full accept queue).

use std::time::Duration;

/// User plus system CPU time of a process, all threads, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_time_of_stat(&stat)
}

/// Fields 14 (utime) and 15 (stime) of a `stat` line, in clock ticks. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted after its last `)`.
fn cpu_time_of_stat(stat: &str) -> Option<Duration> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// The peak resident set size in KiB (`VmHWM`), since start or since [`reset_peak_rss`].
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kb(&status, "VmHWM:")
}

/// The resident set size now, in KiB (`VmRSS`).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kb(&status, "VmRSS:")
}

fn status_field_kb(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the peak RSS over from the current RSS (`5` to `/proc/PID/clear_refs`, Linux 4.0+),
/// so that each concurrency gets its own peak.
pub fn reset_peak_rss(pid: u32) -> std::io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// `TcpExt: ListenOverflows` of this network namespace: SYNs dropped because a listener's
/// accept queue was full (each costs the client a 1 s, then 3 s, ... SYN retransmission).
pub fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    netstat_counter(&netstat, "TcpExt:", "ListenOverflows")
}

fn netstat_counter(netstat: &str, prefix: &str, name: &str) -> Option<u64> {
    let mut lines = netstat.lines().filter(|l| l.starts_with(prefix));
    let (names, values) = (lines.next()?, lines.next()?);
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_counts_user_and_system_ticks_after_the_name() {
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        // The name holds a space and a parenthesis; utime 150, stime 50.
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 5";
        assert_eq!(
            cpu_time_of_stat(stat),
            Some(Duration::from_nanos(200 * 1_000_000_000 / hz))
        );
        assert_eq!(cpu_time_of_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time_and_a_peak_rss() {
        let pid = std::process::id();
        assert!(cpu_time(pid).is_some());
        assert!(peak_rss_kb(pid).unwrap() > 0);
        assert_eq!(cpu_time(u32::MAX), None);
    }

    #[test]
    fn status_and_netstat_fields_are_found_by_name() {
        let status = "Name:\tx\nVmPeak:\t 900 kB\nVmHWM:\t  1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(status_field_kb(status, "VmHWM:"), Some(1234));
        let netstat = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                       TcpExt: 0 17 19\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(
            netstat_counter(netstat, "TcpExt:", "ListenOverflows"),
            Some(17)
        );
        assert_eq!(netstat_counter(netstat, "TcpExt:", "Nope"), None);
    }
}
