//! The plain-text report for a terminal: the tally, a count per capture and kind, the
//! documented differences grouped, and every failing case in full.
//!
//! It stays readable at thousands of cases: passing cases are only counted unless every case
//! is asked for ([`Listing::Every`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{hex_window, tallies, targets, HexLine};
use crate::case::{tally, Exchange, Outcome, Verdict};

/// Which cases the table names one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Only those that did not pass: non-strict ones grouped by their difference,
    /// unsupported ones one per line, failures in full.
    Problems,
    /// Also every case on a line of its own.
    Every,
}

/// The report as text, ending in a newline.
pub fn render(verdicts: &[Verdict], listing: Listing) -> String {
    let mut out = String::new();
    let targets = targets(verdicts);
    let _ = writeln!(
        out,
        "{} {} against {}: {}",
        verdicts.len(),
        if verdicts.len() == 1 {
            "verdict"
        } else {
            "verdicts"
        },
        if targets.is_empty() {
            "no target".to_string()
        } else {
            targets.join(", ")
        },
        totals(verdicts)
    );
    if verdicts.is_empty() {
        return out;
    }

    out.push('\n');
    counts(&mut out, verdicts, &targets);

    if listing == Listing::Every {
        out.push('\n');
        for v in verdicts {
            let _ = writeln!(
                out,
                "{:<11} {} [{}] {}",
                v.outcome.name(),
                v.id,
                v.target,
                v.summary
            );
        }
    }

    let of = |outcome: Outcome| verdicts.iter().filter(move |v| v.outcome == outcome);

    grouped(
        &mut out,
        "non-strict (documented differences from OTP)",
        of(Outcome::NonStrict),
    );
    grouped(&mut out, "info (shown, not judged)", of(Outcome::Info));

    if of(Outcome::Unsupported).next().is_some() {
        let _ = writeln!(out, "\nunsupported (cannot be judged from the capture):");
        for v in of(Outcome::Unsupported) {
            let _ = writeln!(
                out,
                "  {} [{}]: {}",
                v.id,
                v.target,
                or_unexplained(&v.detail)
            );
        }
    }

    if of(Outcome::Fail).next().is_some() {
        let _ = writeln!(out, "\nfailures:");
        for v in of(Outcome::Fail) {
            failure(&mut out, v);
        }
    }
    out
}

/// Verdicts under a heading, grouped by their detail (a documented difference, a note): each
/// detail once, with how many cases it covers and the first few of them.
fn grouped<'a>(out: &mut String, heading: &str, verdicts: impl Iterator<Item = &'a Verdict>) {
    let mut groups: BTreeMap<&str, Vec<&Verdict>> = BTreeMap::new();
    for v in verdicts {
        groups.entry(&v.detail).or_default().push(v);
    }
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{heading}:");
    for (detail, cases) in &groups {
        let names: Vec<String> = cases.iter().take(3).map(|v| v.name()).collect();
        let more = cases.len().saturating_sub(names.len());
        let _ = writeln!(
            out,
            "  {}: {} {} ({}{})",
            or_unexplained(detail),
            cases.len(),
            if cases.len() == 1 { "case" } else { "cases" },
            names.join(", "),
            if more > 0 {
                format!(", {more} more")
            } else {
                String::new()
            }
        );
    }
}

/// `1980 pass, 12 non-strict, 2 fail, 10 info, 10 unsupported`, leaving out zeros but pass
/// and fail.
fn totals(verdicts: &[Verdict]) -> String {
    tally(verdicts)
        .iter()
        .filter(|&&(o, n)| n > 0 || matches!(o, Outcome::Pass | Outcome::Fail))
        .map(|(o, n)| format!("{n} {o}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn counts(out: &mut String, verdicts: &[Verdict], targets: &[&str]) {
    let tallies = tallies(verdicts);
    let capture_width = tallies
        .keys()
        .map(|(c, _, _)| c.len())
        .chain(["capture".len(), "total".len()])
        .max()
        .unwrap_or(0);
    let target_width = targets
        .iter()
        .map(|t| t.len())
        .chain(["target".len()])
        .max()
        .unwrap_or(0);
    let header: Vec<String> = Outcome::ALL
        .iter()
        .map(|o| format!("{:>12}", o.name()))
        .collect();
    let _ = writeln!(
        out,
        "{:<capture_width$}  {:<9}  {:<target_width$}  {:>6}{}",
        "capture",
        "kind",
        "target",
        "cases",
        header.join("")
    );
    let mut total = [0; 5];
    for ((capture, kind, target), counts) in &tallies {
        for (t, n) in total.iter_mut().zip(counts) {
            *t += n;
        }
        let _ = writeln!(
            out,
            "{capture:<capture_width$}  {:<9}  {:<target_width$}  {:>6}{}",
            kind.name(),
            targets[*target],
            counts.iter().sum::<usize>(),
            columns(counts)
        );
    }
    let _ = writeln!(
        out,
        "{:<capture_width$}  {:<9}  {:<target_width$}  {:>6}{}",
        "total",
        "",
        "",
        total.iter().sum::<usize>(),
        columns(&total)
    );
}

/// Counts under the outcome headers; zeros as `.` so the eye finds the others.
fn columns(counts: &[usize; 5]) -> String {
    counts
        .iter()
        .map(|&n| {
            if n == 0 {
                format!("{:>12}", ".")
            } else {
                format!("{n:>12}")
            }
        })
        .collect()
}

fn or_unexplained(detail: &str) -> &str {
    if detail.is_empty() {
        "(no detail given)"
    } else {
        detail
    }
}

fn failure(out: &mut String, v: &Verdict) {
    let _ = writeln!(out, "\nFAIL {} [{}] {}", v.id, v.target, v.summary);
    if !v.detail.is_empty() {
        for line in v.detail.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    let Some(exchange) = &v.exchange else {
        return;
    };
    let _ = writeln!(out, "  sent:     {}", exchange.sent_text());
    let _ = writeln!(out, "  expected: {}", exchange.expected_text());
    let _ = writeln!(out, "  actual:   {}", exchange.actual_text());
    if let Some(at) = exchange.first_difference() {
        hex(out, exchange, at);
    }
}

/// The two replies' bytes around their first difference, the differing byte in brackets.
fn hex(out: &mut String, exchange: &Exchange, at: usize) {
    let _ = writeln!(out, "  first difference at byte {at}:");
    for (name, bytes) in [
        ("expected", &exchange.expected),
        ("actual", &exchange.actual),
    ] {
        let Some(bytes) = bytes else {
            let _ = writeln!(out, "    {name:<8} none");
            continue;
        };
        let lines = hex_window(bytes, at);
        if lines.is_empty() {
            let _ = writeln!(
                out,
                "    {name:<8} ends at byte {} (of {})",
                bytes.len(),
                bytes.len()
            );
        }
        for (i, line) in lines.iter().enumerate() {
            let label = if i == 0 { name } else { "" };
            let _ = writeln!(out, "    {label:<8} {}", hex_line(line, at));
        }
    }
}

fn hex_line(line: &HexLine<'_>, at: usize) -> String {
    let mut text = format!("{:08x} ", line.offset);
    for (i, b) in line.bytes.iter().enumerate() {
        if line.offset + i == at {
            let _ = write!(text, "[{b:02x}]");
        } else if line.offset + i == at + 1 {
            let _ = write!(text, "{b:02x}");
        } else {
            let _ = write!(text, " {b:02x}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn problems_listing() {
        insta::assert_snapshot!(render(&sample::verdicts(), Listing::Problems));
    }

    #[test]
    fn every_case_listing_has_a_line_per_verdict() {
        let verdicts = sample::verdicts();
        let text = render(&verdicts, Listing::Every);
        for v in &verdicts {
            let line = format!("{:<11} {} [{}]", v.outcome.name(), v.id, v.target);
            assert!(text.contains(&line), "{line}");
        }
    }

    #[test]
    fn no_verdicts_is_one_line() {
        assert_eq!(
            render(&[], Listing::Problems),
            "0 verdicts against no target: 0 pass, 0 fail\n"
        );
    }
}
