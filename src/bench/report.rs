//! What a bench run reports: per server and concurrency a row (boots/s, MB/s, latency
//! percentiles, CPU per boot, peak RSS), the ratios erlboot/OTP and erlboot/ceiling, and the
//! herd's boot times; as a table for people and as JSON for programs.

use std::collections::BTreeMap;
use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Request latency percentiles, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> LatencySummary {
        LatencySummary {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.50),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
        }
    }
}

/// The median; `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The median of the round-by-round ratios `a[i] / b[i]`: each round measured both servers
/// back to back, so a ratio within a round cancels drift that a ratio of medians would not.
/// Rounds where `b` did nothing are left out.
pub fn median_ratio(a: &[f64], b: &[f64]) -> Option<f64> {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, &b)| b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    median(&ratios)
}

/// One server at one concurrency, as `--json` writes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub target: String,
    pub concurrency: usize,
    pub boots_per_s: f64,
    pub mb_per_s: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    /// `None` for a server the bench did not start (`--target`).
    pub cpu_ms_per_boot: Option<f64>,
    pub peak_rss_mb: Option<f64>,
}

/// Ratios of boots per second, keyed by concurrency.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ratios {
    #[serde(rename = "erlboot/otp")]
    pub erlboot_otp: BTreeMap<usize, f64>,
    #[serde(rename = "erlboot/ceiling")]
    pub erlboot_ceiling: BTreeMap<usize, f64>,
}

/// A throughput run's results, the document `--json` writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub results: Vec<Row>,
    pub ratios: Ratios,
}

/// What the table shows beyond a row: the spread of boots/s over the rounds, to judge the
/// noise, and the load generator's own CPU per boot, to judge whether it was the bottleneck.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detail {
    pub min: f64,
    pub max: f64,
    pub client_cpu_ms_per_boot: Option<f64>,
}

impl Detail {
    pub fn of(values: &[f64], client_cpu_ms_per_boot: Option<f64>) -> Detail {
        Detail {
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(0.0, f64::max),
            client_cpu_ms_per_boot,
        }
    }

    /// (max - min) / median, in percent.
    pub fn percent_of(&self, median: f64) -> f64 {
        if median > 0.0 {
            (self.max - self.min) / median * 100.0
        } else {
            0.0
        }
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// The table: one line per row, then the ratios and the goals of issue 12.
pub fn table(report: &Report, details: &[Detail]) -> String {
    let mut out = String::new();
    let width = report
        .results
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .max(8);
    let _ = writeln!(
        out,
        "{:<width$} {:>5} {:>9} {:>13} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9} {:>8}",
        "server",
        "conns",
        "boots/s",
        "(rounds)",
        "MB/s",
        "p50 µs",
        "p99 µs",
        "p999 µs",
        "CPU ms/boot",
        "peak RSS",
        "(client)"
    );
    for (row, detail) in report.results.iter().zip(details) {
        let _ = writeln!(
            out,
            "{:<width$} {:>5} {:>9.1} {:>13} {:>8.1} {:>8} {:>8} {:>8} {:>11} {:>9} {:>8}",
            row.target,
            row.concurrency,
            row.boots_per_s,
            format!("{:.0}-{:.0}", detail.min, detail.max),
            row.mb_per_s,
            row.p50_us,
            row.p99_us,
            row.p999_us,
            opt(row.cpu_ms_per_boot, 2),
            row.peak_rss_mb
                .map_or("-".into(), |mb| format!("{mb:.1} MB")),
            opt(detail.client_cpu_ms_per_boot, 2),
        );
    }
    let ratio_line = |name: &str, ratios: &BTreeMap<usize, f64>| {
        let cells: Vec<String> = ratios
            .iter()
            .map(|(conc, r)| format!("{r:.2} at {conc}"))
            .collect();
        format!("{name:<16} {}\n", cells.join(", "))
    };
    if !report.ratios.erlboot_otp.is_empty() {
        out.push_str(&ratio_line("erlboot/otp", &report.ratios.erlboot_otp));
    }
    if !report.ratios.erlboot_ceiling.is_empty() {
        out.push_str(&ratio_line(
            "erlboot/ceiling",
            &report.ratios.erlboot_ceiling,
        ));
    }
    out
}

/// The goals of issue 12, checked on this run: ≥ 2× OTP's boots/s at 8 and 64 connections,
/// ≥ 0.9× the ceiling, p99 at 64 connections ≤ OTP's. Only what was measured is checked.
pub fn goals(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    for conc in [8, 64] {
        if let Some(r) = report.ratios.erlboot_otp.get(&conc) {
            lines.push(format!(
                "boots/s at {conc} conns: erlboot/otp {r:.2} (goal >= 2): {}",
                verdict(*r >= 2.0)
            ));
        }
    }
    for (conc, r) in &report.ratios.erlboot_ceiling {
        lines.push(format!(
            "boots/s at {conc} conns: erlboot/ceiling {r:.2} (goal >= 0.9): {}",
            verdict(*r >= 0.9)
        ));
    }
    let p99 = |target: &str| {
        report
            .results
            .iter()
            .find(|r| r.target == target && r.concurrency == 64)
            .map(|r| r.p99_us)
    };
    if let (Some(e), Some(o)) = (p99("erlboot"), p99("otp")) {
        lines.push(format!(
            "p99 at 64 conns: erlboot {e} µs, otp {o} µs (goal: erlboot <= otp): {}",
            verdict(e <= o)
        ));
    }
    lines
}

/// One herd: N nodes booting at once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HerdRow {
    pub target: String,
    pub nodes: usize,
    pub booted: usize,
    /// From the start until the last node booted; `None` if some never did.
    pub all_booted_s: Option<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// SYNs the namespace dropped on a full accept queue during the herd.
    pub syn_drops: Option<u64>,
    /// CPU time the server spent on the whole herd.
    pub server_cpu_s: Option<f64>,
    /// CPU time of the nodes (this process): when it nears the herd's duration times the
    /// cores, the nodes, not the server, set the pace.
    pub client_cpu_s: Option<f64>,
    /// Discovery rounds that found no server, over all nodes.
    pub empty_discovery_rounds: u64,
    /// Requests sent again after a lost connection, over all nodes.
    pub resends: u64,
}

/// The herd document `--json` writes in herd mode.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HerdReport {
    pub herd: Vec<HerdRow>,
}

pub fn herd_table(report: &HerdReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:>6} {:>7} {:>16} {:>10} {:>10} {:>10} {:>11} {:>11} {:>9} {:>12} {:>8}",
        "server",
        "nodes",
        "booted",
        "all booted in",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU",
        "nodes' CPU",
        "SYN drops",
        "empty rounds",
        "resends"
    );
    for row in &report.herd {
        let _ = writeln!(
            out,
            "{:<8} {:>6} {:>7} {:>16} {:>10.0} {:>10.0} {:>10.0} {:>11} {:>11} {:>9} {:>12} {:>8}",
            row.target,
            row.nodes,
            row.booted,
            row.all_booted_s
                .map_or("never".into(), |s| format!("{s:.2} s")),
            row.p50_ms,
            row.p99_ms,
            row.max_ms,
            row.server_cpu_s.map_or("-".into(), |s| format!("{s:.2} s")),
            row.client_cpu_s.map_or("-".into(), |s| format!("{s:.2} s")),
            row.syn_drops.map_or("-".into(), |n| n.to_string()),
            row.empty_discovery_rounds,
            row.resends
        );
    }
    out
}

/// One server holding many idle connections.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IdleRow {
    pub target: String,
    pub connections: usize,
    pub answered: usize,
    pub failed: usize,
    /// From the first connect until the last answer; `None` if some failed.
    pub all_answered_s: Option<f64>,
    pub rss_before_mb: Option<f64>,
    pub rss_open_mb: Option<f64>,
    pub syn_drops: Option<u64>,
}

/// The idle document `--json` writes in idle mode.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IdleReport {
    pub idle: Vec<IdleRow>,
}

pub fn idle_table(report: &IdleReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:>11} {:>9} {:>7} {:>16} {:>11} {:>11} {:>9}",
        "server",
        "connections",
        "answered",
        "failed",
        "all answered in",
        "RSS before",
        "RSS open",
        "SYN drops"
    );
    let mb = |v: Option<f64>| v.map_or("-".into(), |mb| format!("{mb:.1} MB"));
    for row in &report.idle {
        let _ = writeln!(
            out,
            "{:<8} {:>11} {:>9} {:>7} {:>16} {:>11} {:>11} {:>9}",
            row.target,
            row.connections,
            row.answered,
            row.failed,
            row.all_answered_s
                .map_or("never".into(), |s| format!("{s:.2} s")),
            mb(row.rss_before_mb),
            mb(row.rss_open_mb),
            row.syn_drops.map_or("-".into(), |n| n.to_string()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, concurrency: usize, boots_per_s: f64, p99_us: u64) -> Row {
        Row {
            target: target.into(),
            concurrency,
            boots_per_s,
            mb_per_s: 1.5,
            p50_us: 10,
            p99_us,
            p999_us: p99_us * 2,
            cpu_ms_per_boot: Some(0.5),
            peak_rss_mb: None,
        }
    }

    #[test]
    fn medians_and_round_by_round_ratios() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        // Per round 2, 4, 3: the median ratio is 3, not 200/100 of the medians of each.
        assert_eq!(
            median_ratio(&[200.0, 400.0, 150.0], &[100.0, 100.0, 50.0]),
            Some(3.0)
        );
        assert_eq!(median_ratio(&[1.0, 9.0], &[0.0, 3.0]), Some(3.0));
        assert_eq!(median_ratio(&[1.0], &[0.0]), None);
    }

    #[test]
    fn histogram_summary_reads_the_percentiles() {
        let mut h = crate::bench::load::latency_histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p99_us, 990);
        assert_eq!(s.p999_us, 999);
    }

    #[test]
    fn json_has_exactly_the_names_of_the_issue() {
        let mut report = Report {
            results: vec![row("erlboot", 8, 100.0, 50)],
            ..Report::default()
        };
        report.ratios.erlboot_otp.insert(8, 2.5);
        report.ratios.erlboot_otp.insert(64, 3.0);
        let json = serde_json::to_value(&report).unwrap();
        let top: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(top, ["ratios", "results"]);
        let fields: Vec<&String> = json["results"][0].as_object().unwrap().keys().collect();
        let mut expected = [
            "target",
            "concurrency",
            "boots_per_s",
            "mb_per_s",
            "p50_us",
            "p99_us",
            "p999_us",
            "cpu_ms_per_boot",
            "peak_rss_mb",
        ];
        expected.sort();
        assert_eq!(fields, expected);
        assert_eq!(json["results"][0]["target"], "erlboot");
        assert_eq!(json["results"][0]["peak_rss_mb"], serde_json::Value::Null);
        assert_eq!(json["ratios"]["erlboot/otp"]["64"], 3.0);
        assert_eq!(json["ratios"]["erlboot/otp"]["8"], 2.5);
        assert_eq!(json["ratios"]["erlboot/ceiling"], serde_json::json!({}));
    }

    #[test]
    fn goals_are_checked_only_where_measured() {
        let mut report = Report {
            results: vec![row("erlboot", 64, 300.0, 900), row("otp", 64, 100.0, 800)],
            ..Report::default()
        };
        report.ratios.erlboot_otp.insert(64, 3.0);
        report.ratios.erlboot_ceiling.insert(64, 0.8);
        let goals = goals(&report);
        assert_eq!(goals.len(), 3, "{goals:?}");
        assert!(goals[0].contains("erlboot/otp 3.00") && goals[0].ends_with(": met"));
        assert!(goals[1].contains("erlboot/ceiling 0.80") && goals[1].ends_with("NOT met"));
        assert!(goals[2].contains("erlboot 900 µs, otp 800 µs") && goals[2].ends_with("NOT met"));
    }

    #[test]
    fn the_table_has_a_line_per_row_and_the_ratios() {
        let mut report = Report {
            results: vec![row("erlboot", 1, 10.0, 5), row("ceiling", 1, 11.0, 4)],
            ..Report::default()
        };
        report.ratios.erlboot_ceiling.insert(1, 10.0 / 11.0);
        let details = [
            Detail::of(&[9.0, 11.0], Some(1.5)),
            Detail::of(&[11.0], None),
        ];
        let text = table(&report, &details);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("9-11"), "{text}");
        assert!(text.contains("erlboot/ceiling  0.91 at 1"), "{text}");
        assert!((details[0].percent_of(10.0) - 20.0).abs() < 1e-9);
    }
}
