//! Reports of a conformance run: its verdicts as a table for a terminal, JSON, JUnit XML or a
//! self-contained HTML page.
//!
//! Every format takes the run's verdicts as they are, `&[Verdict]`, and returns the report's
//! text; writing it out is the caller's business.
//!
//! - [`table`]: plain text for standard output, a tally per capture and kind, then the cases
//!   that did not pass, the failures in full;
//! - [`json`]: `{"summary": ..., "cases": [...]}`;
//! - [`junit`]: one `testsuite` per capture, one `testcase` per verdict;
//! - [`html`]: a matrix of cases and targets, coloured by outcome, each cell opening the
//!   request, the expected and the actual reply.

pub mod html;
pub mod json;
pub mod junit;
pub mod table;

use std::collections::BTreeMap;

use crate::case::{CaseId, Kind, Outcome, Verdict};

/// The targets of a run, in the order they first appear.
fn targets(verdicts: &[Verdict]) -> Vec<&str> {
    let mut targets: Vec<&str> = Vec::new();
    for v in verdicts {
        if !targets.contains(&v.target.as_str()) {
            targets.push(&v.target);
        }
    }
    targets
}

/// One case across the targets: `cells[i]` is its verdict against `targets[i]`.
struct Row<'a> {
    id: &'a CaseId,
    cells: Vec<Option<&'a Verdict>>,
}

impl<'a> Row<'a> {
    /// The case's summary, from the first target that judged it.
    fn summary(&self) -> &'a str {
        self.cells
            .iter()
            .flatten()
            .next()
            .map_or("", |v| &v.summary)
    }

    /// The worst outcome across the targets (see [`severity`]).
    fn worst(&self) -> Outcome {
        self.cells
            .iter()
            .flatten()
            .map(|v| v.outcome)
            .max_by_key(|&o| severity(o))
            .unwrap_or(Outcome::Pass)
    }
}

/// Verdicts as a matrix: cases down (in id order: capture, kind, number), targets across.
struct Matrix<'a> {
    targets: Vec<&'a str>,
    rows: Vec<Row<'a>>,
}

impl<'a> Matrix<'a> {
    fn of(verdicts: &'a [Verdict]) -> Matrix<'a> {
        let targets = targets(verdicts);
        let mut rows: BTreeMap<&CaseId, Vec<Option<&Verdict>>> = BTreeMap::new();
        for v in verdicts {
            let column = targets.iter().position(|&t| t == v.target).unwrap_or(0);
            rows.entry(&v.id)
                .or_insert_with(|| vec![None; targets.len()])[column] = Some(v);
        }
        Matrix {
            targets,
            rows: rows
                .into_iter()
                .map(|(id, cells)| Row { id, cells })
                .collect(),
        }
    }

    /// The rows grouped by capture, captures in name order.
    fn by_capture(&self) -> Vec<(&'a str, Vec<&Row<'a>>)> {
        let mut groups: Vec<(&str, Vec<&Row>)> = Vec::new();
        for row in &self.rows {
            match groups.last_mut() {
                Some((capture, rows)) if *capture == row.id.capture => rows.push(row),
                _ => groups.push((&row.id.capture, vec![row])),
            }
        }
        groups
    }
}

/// How much an outcome needs a reader's attention: Fail most, Pass least.
fn severity(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Pass => 0,
        Outcome::Info => 1,
        Outcome::NonStrict => 2,
        Outcome::Unsupported => 3,
        Outcome::Fail => 4,
    }
}

/// Counts per outcome, in [`Outcome::ALL`]'s order.
fn count(outcomes: impl IntoIterator<Item = Outcome>) -> [usize; 5] {
    let mut counts = [0; 5];
    for o in outcomes {
        counts[Outcome::ALL.iter().position(|&x| x == o).unwrap_or(0)] += 1;
    }
    counts
}

/// Verdicts counted per capture, kind and target, in that order.
fn tallies(verdicts: &[Verdict]) -> BTreeMap<(&str, Kind, usize), [usize; 5]> {
    let targets = targets(verdicts);
    let mut tallies: BTreeMap<(&str, Kind, usize), [usize; 5]> = BTreeMap::new();
    for v in verdicts {
        let column = targets.iter().position(|&t| t == v.target).unwrap_or(0);
        let counts = tallies
            .entry((v.id.capture.as_str(), v.id.kind, column))
            .or_default();
        counts[Outcome::ALL
            .iter()
            .position(|&o| o == v.outcome)
            .unwrap_or(0)] += 1;
    }
    tallies
}

/// Bytes a hex view shows before the first difference.
const HEX_BEFORE: usize = 16;
/// Bytes a hex view shows from the first difference on.
const HEX_AFTER: usize = 32;

/// One line of a hex view: 16 bytes (fewer at the end) from `offset`.
struct HexLine<'a> {
    offset: usize,
    bytes: &'a [u8],
}

/// The 16-byte lines of `bytes` around offset `at`: [`HEX_BEFORE`] bytes before it and
/// [`HEX_AFTER`] from it, on whole lines.
fn hex_window(bytes: &[u8], at: usize) -> Vec<HexLine<'_>> {
    let start = at.saturating_sub(HEX_BEFORE) / 16 * 16;
    let end = (at + HEX_AFTER).min(bytes.len());
    (start..end)
        .step_by(16)
        .map(|offset| HexLine {
            offset,
            bytes: &bytes[offset..(offset + 16).min(end)],
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod sample {
    //! Made-up verdicts the format tests share.

    use crate::case::{CaseId, Exchange, Kind, Outcome, Verdict};

    fn verdict(capture: &str, kind: Kind, number: u32, target: &str, outcome: Outcome) -> Verdict {
        Verdict {
            id: CaseId {
                capture: capture.into(),
                kind,
                number,
            },
            target: target.into(),
            outcome,
            summary: String::new(),
            detail: String::new(),
            exchange: None,
        }
    }

    /// `{get,"/a"}` as the external term format.
    pub fn get_a() -> Vec<u8> {
        b"\x83h\x02d\x00\x03getk\x00\x02/a".to_vec()
    }

    /// `{get,{ok,<<"hello">>}}`, and with `other` for the binary.
    pub fn reply(body: &[u8; 5]) -> Vec<u8> {
        let mut bytes = b"\x83h\x02d\x00\x03geth\x02d\x00\x02okm\x00\x00\x00\x05".to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    /// Two captures, every kind and outcome, two targets.
    pub fn verdicts() -> Vec<Verdict> {
        let mut pass = verdict("otp25-boot", Kind::Server, 1, "in-process", Outcome::Pass);
        pass.summary = "{get,\"/a\"}".into();
        pass.exchange = Some(Exchange {
            sent: get_a(),
            expected: Some(reply(b"hello")),
            actual: Some(reply(b"hello")),
        });
        let mut fail = verdict("otp25-boot", Kind::Server, 2, "in-process", Outcome::Fail);
        fail.summary = "{get,\"/a\"}".into();
        fail.detail = "the reply differs from OTP's at byte 24".into();
        fail.exchange = Some(Exchange {
            sent: get_a(),
            expected: Some(reply(b"hello")),
            actual: Some(reply(b"help!")),
        });
        let mut strict = verdict(
            "otp25-boot",
            Kind::Server,
            3,
            "in-process",
            Outcome::NonStrict,
        );
        strict.summary = "{get,\"/a\"}".into();
        strict.detail = "no stack trace in error replies".into();
        let mut silent = verdict(
            "otp27-requests",
            Kind::Discovery,
            1,
            "in-process",
            Outcome::Fail,
        );
        silent.summary = "EBOOTQ15.2.7".into();
        silent.detail = "OTP answered; the target stayed silent".into();
        silent.exchange = Some(Exchange {
            sent: b"EBOOTQ15.2.7".to_vec(),
            expected: Some(b"EBOOTR\x00\x8d\x2315.2.7".to_vec()),
            actual: None,
        });
        let mut lost = verdict(
            "otp27-requests",
            Kind::Client,
            1,
            "in-process",
            Outcome::Unsupported,
        );
        lost.summary = "{get,\"/b\"}".into();
        lost.detail = "the reply was lost in a capture gap of 1448 bytes".into();
        let mut info = verdict(
            "otp27-requests",
            Kind::Timing,
            1,
            "in-process",
            Outcome::Info,
        );
        info.summary = "collect window before connect: 501.6 ms".into();
        info.detail = "erlboot: 500.0 ms".into();
        let mut otp = pass.clone();
        otp.target = "otp".into();
        let mut otp_fail = fail.clone();
        otp_fail.target = "otp".into();
        otp_fail.outcome = Outcome::Pass;
        otp_fail.detail = String::new();
        otp_fail.exchange = pass.exchange.clone();
        vec![pass, fail, strict, silent, lost, info, otp, otp_fail]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_puts_each_target_in_its_column_and_cases_in_id_order() {
        let verdicts = sample::verdicts();
        let matrix = Matrix::of(&verdicts);
        assert_eq!(matrix.targets, ["in-process", "otp"]);
        let ids: Vec<String> = matrix.rows.iter().map(|r| r.id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "otp25-boot/server/0001",
                "otp25-boot/server/0002",
                "otp25-boot/server/0003",
                "otp27-requests/client/0001",
                "otp27-requests/discovery/0001",
                "otp27-requests/timing/0001",
            ]
        );
        let second = &matrix.rows[1];
        assert_eq!(second.cells[0].unwrap().outcome, Outcome::Fail);
        assert_eq!(second.cells[1].unwrap().outcome, Outcome::Pass);
        assert_eq!(second.worst(), Outcome::Fail);
        assert!(matrix.rows[2].cells[1].is_none());
        let groups: Vec<(&str, usize)> = matrix
            .by_capture()
            .iter()
            .map(|(c, rows)| (*c, rows.len()))
            .collect();
        assert_eq!(groups, [("otp25-boot", 3), ("otp27-requests", 3)]);
    }

    #[test]
    fn hex_window_covers_whole_lines_around_the_difference() {
        let bytes: Vec<u8> = (0..100).collect();
        let lines = hex_window(&bytes, 40);
        let offsets: Vec<usize> = lines.iter().map(|l| l.offset).collect();
        assert_eq!(offsets, [16, 32, 48, 64]);
        assert_eq!(lines.last().unwrap().bytes.len(), 8);
        assert_eq!(hex_window(&bytes, 3)[0].offset, 0);
        assert_eq!(hex_window(&bytes[..5], 5).len(), 1);
        assert!(hex_window(&[], 0).is_empty());
    }
}
